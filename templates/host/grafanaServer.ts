/**
 * Grafana server settings, as environment variables the packaged unit reads through a
 * drop-in: one plain file rendered here, and one secrets file the configuration push writes
 * (root-only, never rendered into a reviewable file). Grafana reads its admin password from a
 * file of its own (`GF_SECURITY_ADMIN_PASSWORD__FILE`), so the value never sits in an
 * environment block either.
 */
import { SERVICES } from "../../infra/topology";
import type { RenderedFile, TemplateContext } from "../types";
import { renderUnit } from "./systemd";

export const GRAFANA_ENV_PATH = "/etc/grafana/titan.env";
/** Written by the configuration push: TITAN_SLACK_WEBHOOK_URL=... (0600 root). */
export const GRAFANA_SECRETS_ENV_PATH = "/etc/grafana/secrets/titan.env";
/** Written by the configuration push (0400 grafana). */
export const GRAFANA_ADMIN_PASSWORD_PATH = "/etc/grafana/secrets/admin_password";
export const GRAFANA_DROP_IN_PATH = "/etc/systemd/system/grafana-server.service.d/titan.conf";

export interface GrafanaServerOptions {
  /** Public URL of Grafana, for links in notifications; known once the host has its address. */
  readonly rootUrl?: string;
  /** Dashboard shown on login (a provisioned dashboard's file path). */
  readonly homeDashboardPath?: string;
}

export function grafanaEnvironment(ctx: TemplateContext, options: GrafanaServerOptions = {}): Record<string, string> {
  return {
    GF_SERVER_HTTP_PORT: String(SERVICES.grafana.port),
    ...(options.rootUrl ? { GF_SERVER_ROOT_URL: options.rootUrl } : {}),
    GF_SECURITY_ADMIN_USER: ctx.config.grafanaAdminUser,
    GF_SECURITY_ADMIN_PASSWORD__FILE: GRAFANA_ADMIN_PASSWORD_PATH,
    GF_SECURITY_DISABLE_GRAVATAR: "true",
    GF_USERS_ALLOW_SIGN_UP: "false",
    GF_AUTH_ANONYMOUS_ENABLED: "false",
    GF_ANALYTICS_REPORTING_ENABLED: "false",
    GF_ANALYTICS_CHECK_FOR_UPDATES: "false",
    GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES: "false",
    GF_NEWS_NEWS_FEED_ENABLED: "false",
    // Prometheus scrapes /metrics from inside the VPC (the security group admits only it).
    GF_METRICS_ENABLED: "true",
    GF_UNIFIED_ALERTING_ENABLED: "true",
    ...(options.homeDashboardPath ? { GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: options.homeDashboardPath } : {}),
  };
}

const envLine = ([k, v]: [string, string]) => {
  if (/[\n"\\$`]/.test(v)) throw new Error(`${k}: value not allowed in an environment file`);
  return `${k}="${v}"`;
};

export function renderGrafanaServerFiles(ctx: TemplateContext, options: GrafanaServerOptions = {}): RenderedFile[] {
  const env = Object.entries(grafanaEnvironment(ctx, options)).map(envLine);
  return [
    {
      path: GRAFANA_ENV_PATH,
      content: `# Rendered by templates/host/grafanaServer.ts.\n${env.join("\n")}\n`,
      mode: 0o640,
      owner: "root",
      group: "grafana",
    },
    {
      path: GRAFANA_DROP_IN_PATH,
      content: renderUnit({
        Unit: {},
        Service: {
          // "-": Grafana starts (without Slack) when no webhook is configured.
          EnvironmentFile: [GRAFANA_ENV_PATH, `-${GRAFANA_SECRETS_ENV_PATH}`],
          Restart: "on-failure",
          RestartSec: 5,
        },
      }),
      mode: 0o644,
      owner: "root",
      group: "root",
    },
  ];
}
