/**
 * Every configuration file each host receives from the configuration push, by role. User data
 * (templates/host/userData.ts) is separate: it bootstraps once and never carries these.
 */
import type { HostSlot } from "../facts/addressing";
import { renderAlloyFiles } from "./alloy/config";
import { DASHBOARD_UIDS } from "./alerts";
import { dashboardPath, renderGrafanaFiles, type AlertRuleChanges } from "./grafana";
import { renderAmpRelayFiles } from "./host/ampRelay";
import { renderGrafanaServerFiles } from "./host/grafanaServer";
import { renderRemediationFiles } from "./host/remediation";
import { renderLokiFiles } from "./loki/config";
import { renderPrometheusFiles } from "./prometheus/config";
import type { RenderedFile, TemplateContext } from "./types";

export interface HostRenderOptions {
  readonly slackWebhookConfigured: boolean;
  /** Grafana's public URL, for links in notifications. */
  readonly grafanaRootUrl?: string;
  /** Grafana only: retired uids and extra rules besides the table's (CI's second-push check). */
  readonly alertRuleChanges?: AlertRuleChanges;
}

export function renderHostFiles(ctx: TemplateContext, host: HostSlot, options: HostRenderOptions): RenderedFile[] {
  switch (host.role) {
    case "web":
      return [...renderAlloyFiles(ctx, host), ...renderRemediationFiles(ctx, host)];
    case "prometheus":
      // With amp, the relay that signs its remote writes (none with local).
      return [...renderPrometheusFiles(ctx), ...renderAmpRelayFiles(ctx)];
    case "loki":
      return renderLokiFiles(ctx);
    case "grafana":
      return [
        ...renderGrafanaFiles(ctx, {
          slackWebhookConfigured: options.slackWebhookConfigured,
          runbookBaseUrl: ctx.config.runbookBaseUrl,
          alertRuleChanges: options.alertRuleChanges,
        }),
        ...renderGrafanaServerFiles(ctx, {
          rootUrl: options.grafanaRootUrl,
          homeDashboardPath: dashboardPath({ uid: DASHBOARD_UIDS.system }),
        }),
      ];
  }
}
