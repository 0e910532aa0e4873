/**
 * Every file the grafana host needs besides grafana.ini and its environment file: data
 * sources, the dashboard provider and its dashboards, and the alerting resources. Pure: the
 * same context and options always give the same files, and the set of paths does not depend
 * on the options (so the delivery stage never has to remove a file we stopped rendering).
 */
import { toYaml as sharedToYaml } from "../yaml";
import type { RenderedFile, TemplateContext } from "../types";
import {
  alertRulesFile,
  contactPointsFile,
  notificationPoliciesFile,
  notificationTemplatesFile,
  type AlertRuleChanges,
} from "./alerting";
import { DASHBOARDS_DIR, GRAFANA_PATHS } from "./constants";
import { buildDashboards } from "./dashboards";
import { withPipelineDashboard } from "./pipelineDashboard";
import { dashboardProvidersFile, dataSourcesFile } from "./datasources";
import type { Dashboard } from "./model";

export * from "./constants";
export {
  alertRule,
  alertRulesFile,
  assertRuleUid,
  type AlertRuleChanges,
  grafanaAnnotation,
  NOTIFICATION_TEMPLATE,
  REF,
  remediationContactPoints,
  remediationRoutes,
  retiredRemediationContactPointUids,
  RULE_UID_PATTERN,
  runbookUrl,
  VALUE_FORMAT,
} from "./alerting";
export { buildDashboards, DASHBOARD_SCHEMA_VERSION, type AlertPanel, type BuiltDashboards } from "./dashboards";
export type * from "./model";

export interface GrafanaRenderOptions {
  /** Whether the stack has a Slack webhook; its value reaches Grafana only through its environment. */
  readonly slackWebhookConfigured: boolean;
  /**
   * Public address of docs/runbooks.md (e.g. its page on the repository host). When given, each rule
   * links to its runbook section; rules always carry the runbook steps themselves.
   */
  readonly runbookBaseUrl?: string;
  /** Retired uids and extra rules; default: the table's (CI's second-push check sets its own). */
  readonly alertRuleChanges?: AlertRuleChanges;
}

export const GRAFANA_FILE_MODE = 0o640;
export const GRAFANA_FILE_OWNER = "root";
export const GRAFANA_FILE_GROUP = "grafana";

const HEADER = "# Rendered by templates/grafana (Pulumi); changes made on the host are overwritten.\n";

/** The shared YAML rendering, under a header (and an optional comment). */
export function toYaml(value: unknown, comment?: string): string {
  const note = comment ? comment.replace(/^/gm, "# ") + "\n" : "";
  return HEADER + note + sharedToYaml(value);
}

/** Dashboard JSON: key order as built, 2-space indent, final newline. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

/** Path of a dashboard's JSON file in the provider's directory. */
export function dashboardPath(dashboard: Pick<Dashboard, "uid">): string {
  return `${DASHBOARDS_DIR}/${dashboard.uid}.json`;
}

export function renderGrafanaFiles(ctx: TemplateContext, opts: GrafanaRenderOptions): RenderedFile[] {
  const file = (path: string, content: string): RenderedFile => ({
    path,
    content,
    mode: GRAFANA_FILE_MODE,
    owner: GRAFANA_FILE_OWNER,
    group: GRAFANA_FILE_GROUP,
  });
  const { dashboards, alertPanels } = withPipelineDashboard(ctx.config, buildDashboards(ctx.config));
  const slack = opts.slackWebhookConfigured;
  return [
    file(GRAFANA_PATHS.datasources, toYaml(dataSourcesFile(ctx))),
    file(GRAFANA_PATHS.dashboardProvider, toYaml(dashboardProvidersFile())),
    ...dashboards.map((d) => file(dashboardPath(d), toJson(d))),
    file(
      GRAFANA_PATHS.alertRules,
      toYaml(alertRulesFile(ctx.config, alertPanels, opts.runbookBaseUrl, opts.alertRuleChanges)),
    ),
    file(GRAFANA_PATHS.notificationTemplates, toYaml(notificationTemplatesFile())),
    file(
      GRAFANA_PATHS.contactPoints,
      toYaml(
        contactPointsFile(ctx, slack),
        [
          slack
            ? "The webhook URL comes from Grafana's environment; it is never written to this file."
            : "No Slack webhook is configured: remove the Slack contact point if an earlier deploy created it.",
          ctx.config.remediation === "off"
            ? "Remediation is off: remove every remediation contact point an earlier deploy created."
            : "The remediation agents' HMAC secret comes from Grafana's environment; it is never written to this file.",
        ].join("\n"),
      ),
    ),
    file(
      GRAFANA_PATHS.notificationPolicies,
      toYaml(
        notificationPoliciesFile(ctx, slack),
        slack
          ? "This replaces Grafana's whole notification policy tree."
          : "This replaces Grafana's whole notification policy tree. No Slack webhook is configured, so\nevery route ends at Grafana's built-in default contact point, the one receiver that always exists.",
      ),
    ),
  ];
}
