/**
 * Grafana-managed alerting, file-provisioned: the rule group rendered from the alert
 * definitions table (templates/alerts.ts), the Slack contact point, its notification
 * template, and the notification policy tree.
 *
 * With remediation on (or dry-run), also a signed webhook contact point per web host, to its
 * remediation agent, and a route per web host ahead of the severity routes.
 *
 * Interpolation rules that shape this file (Grafana provisioning): `$NAME` and `${NAME}` in
 * plain values (titles, labels, contact point settings, policies) are replaced from Grafana's
 * environment; query models and notification templates are read raw, and annotations expand
 * at most the braced `${NAME}` form (newer versions). Contact point settings are expanded at
 * every depth, nested ones such as `hmacConfig.secret` too (grafana/grafana pkg/services/
 * provisioning/values/values.go: JSONValue walks maps and lists, transformInterface, and
 * expands each string; alerting/contact_point_types.go ReceiverV1.mapToModel builds the
 * settings from that expanded value). So `$labels`/`$values` appear only in annotations and
 * templates, annotations never contain `${`, and the contact point settings carry no `$` except
 * the two environment references, the Slack URL and the remediation HMAC secret (the tests
 * check all three).
 */
import { addressPlan, MAX_WEB_HOSTS, type HostSlot } from "../../facts/addressing";
import type { StackConfig } from "../../facts/config";
import { physicalName } from "../../facts/naming";
import {
  REMEDIATION_LABEL,
  REMEDIATION_SIGNATURE_HEADER,
  REMEDIATION_TIMESTAMP_HEADER,
  remediationWebhookUrl,
} from "../../facts/remediation";
import type { TemplateContext } from "../types";
import {
  ALERT_GROUP,
  alertDefinitions,
  checkRetiredAlerts,
  RETIRED_ALERTS,
  type AlertDefinition,
  type RetiredAlert,
} from "../alerts";
import {
  DATASOURCE_UIDS,
  DEFAULT_RECEIVER,
  EXPRESSION_DS,
  GRAFANA_ORG_ID,
  LOKI_DS,
  NOTIFICATION_TEMPLATE_NAME,
  PROMETHEUS_DS,
  REMEDIATION_HMAC_SECRET_ENV,
  remediationContactPointUid,
  SLACK_CONTACT_POINT,
  SLACK_TEXT_TEMPLATE,
  SLACK_TITLE_TEMPLATE,
  SLACK_WEBHOOK_ENV,
} from "./constants";
import type { AlertPanel } from "./dashboards";
import type {
  AlertingFile,
  AlertQuery,
  AlertRule,
  AlertRuleGroup,
  ContactPoint,
  LokiAlertQueryModel,
  NotificationPolicy,
  PrometheusAlertQueryModel,
  NotificationTemplate,
  Route,
} from "./model";

/** Grafana's limit on rule uids. */
export const RULE_UID_PATTERN = /^[A-Za-z0-9_-]{1,40}$/;

/** refIds of the three steps: the PromQL query, its last value, and the threshold. */
export const REF = { query: "A", value: "B", condition: "C" } as const;

/** How far back the rule's query looks: enough for the 5m rate windows in the definitions. */
const QUERY_RANGE_SECONDS = 600;

export function assertRuleUid(uid: string): string {
  if (!RULE_UID_PATTERN.test(uid)) {
    throw new Error(`alert rule uid ${JSON.stringify(uid)} must be 1-40 letters, digits, '-' or '_'`);
  }
  return uid;
}

const VALUE = `$values.${REF.value}.Value`;

/** How Grafana's annotation templates print the reduced value in each unit (as the Prometheus rules do). */
export const VALUE_FORMAT: Readonly<Record<AlertDefinition["unit"], string>> = {
  percent: `{{ printf "%.1f" ${VALUE} }}%`,
  ratio: `{{ humanizePercentage ${VALUE} }}`,
  seconds: `{{ humanizeDuration ${VALUE} }}`,
  none: `{{ ${VALUE} }}`,
};

/**
 * Turns a definition's text into a Grafana annotation template: `{{ $value }}` becomes the
 * reduced value formatted in the definition's unit (Grafana's own `$value` is a string
 * listing every query's values); `{{ $labels.x }}` means the same in both.
 */
export function grafanaAnnotation(text: string, unit: AlertDefinition["unit"]): string {
  return text.replaceAll("{{ $value }}", VALUE_FORMAT[unit]);
}

/**
 * The runbook link, when docs/runbooks.md has a known public address: `<base>#<anchor>`. The stack
 * does not know its repository's URL, so by default rules carry the runbook steps themselves
 * (`runbook`) and no link.
 */
export function runbookUrl(runbookBaseUrl: string, alert: Pick<AlertDefinition, "runbook">): string {
  if (!/^https?:\/\/[^\s#]+$/.test(runbookBaseUrl)) {
    throw new Error(`runbookBaseUrl ${JSON.stringify(runbookBaseUrl)} must be an http(s) URL without a fragment`);
  }
  return `${runbookBaseUrl}#${alert.runbook}`;
}

/** The rule's first step: the definition's query on its data source, evaluated at one instant. */
function sourceQuery(alert: AlertDefinition): AlertQuery<PrometheusAlertQueryModel> | AlertQuery<LokiAlertQueryModel> {
  const common = { refId: REF.query, relativeTimeRange: { from: QUERY_RANGE_SECONDS, to: 0 } };
  const sizing = { intervalMs: 1000, maxDataPoints: 43200 };
  return alert.datasource === "loki"
    ? {
        ...common,
        datasourceUid: DATASOURCE_UIDS.loki,
        model: {
          refId: REF.query,
          datasource: LOKI_DS,
          expr: alert.expr,
          queryType: "instant",
          editorMode: "code",
          ...sizing,
        },
      }
    : {
        ...common,
        datasourceUid: DATASOURCE_UIDS.prometheus,
        model: {
          refId: REF.query,
          datasource: PROMETHEUS_DS,
          expr: alert.expr,
          instant: true,
          range: false,
          editorMode: "code",
          legendFormat: "__auto",
          ...sizing,
        },
      };
}

export function alertRule(alert: AlertDefinition, panel: AlertPanel, runbookBaseUrl?: string): AlertRule {
  return {
    uid: assertRuleUid(alert.uid),
    title: alert.name,
    condition: REF.condition,
    data: [
      sourceQuery(alert),
      {
        refId: REF.value,
        datasourceUid: EXPRESSION_DS.uid,
        model: { refId: REF.value, datasource: EXPRESSION_DS, type: "reduce", expression: REF.query, reducer: "last" },
      },
      {
        refId: REF.condition,
        datasourceUid: EXPRESSION_DS.uid,
        model: {
          refId: REF.condition,
          datasource: EXPRESSION_DS,
          type: "threshold",
          expression: REF.value,
          conditions: [{ evaluator: { type: alert.op === ">" ? "gt" : "lt", params: [alert.threshold] } }],
        },
      },
    ],
    dashboardUid: panel.dashboardUid,
    panelId: panel.panelId,
    noDataState: alert.noDataState,
    execErrState: alert.execErrState,
    for: alert.for,
    annotations: {
      summary: grafanaAnnotation(alert.summary, alert.unit),
      description: grafanaAnnotation(alert.description, alert.unit),
      value: VALUE_FORMAT[alert.unit],
      runbook: alert.runbookSteps,
      ...(runbookBaseUrl === undefined ? {} : { runbook_url: runbookUrl(runbookBaseUrl, alert) }),
      // Both or neither: Grafana links the rule to this dashboard panel.
      __dashboardUid__: panel.dashboardUid,
      __panelId__: String(panel.panelId),
    },
    labels: {
      severity: alert.severity,
      // Routes the alert to its host's remediation agent too (remediationRoutes).
      ...(alert.remediation === undefined ? {} : { [REMEDIATION_LABEL]: alert.remediation }),
    },
    isPaused: false,
  };
}

export function alertRuleGroup(
  config: StackConfig,
  alertPanels: ReadonlyMap<string, AlertPanel>,
  runbookBaseUrl?: string,
): AlertRuleGroup {
  return {
    orgId: GRAFANA_ORG_ID,
    name: ALERT_GROUP.name,
    folder: ALERT_GROUP.folder,
    interval: ALERT_GROUP.interval,
    rules: alertDefinitions(config).map((alert) => {
      const panel = alertPanels.get(alert.uid);
      if (!panel) throw new Error(`alert ${alert.uid} has no panel on dashboard ${alert.dashboardUid}`);
      return alertRule(alert, panel, runbookBaseUrl);
    }),
  };
}

/**
 * The Slack message. One notification holds a group of alerts (same alertname and host):
 * the title says firing or resolved with counts, the text lists every alert with severity,
 * host, summary, description, value, start (and end) time and links.
 */
export const NOTIFICATION_TEMPLATE = `{{ define "${SLACK_TITLE_TEMPLATE}" -}}
{{ if eq .Status "firing" }}:rotating_light: FIRING{{ else }}:white_check_mark: RESOLVED{{ end -}}
{{ if gt (len .Alerts.Firing) 0 }} ({{ len .Alerts.Firing }} firing{{ if gt (len .Alerts.Resolved) 0 }}, {{ len .Alerts.Resolved }} resolved{{ end }}){{ end -}}
{{ with .CommonLabels.severity }} [{{ toUpper . }}]{{ end }} {{ .CommonLabels.alertname -}}
{{ with or .CommonLabels.instance .CommonLabels.host }} on {{ . }}{{ end }}
{{- end }}

{{ define "titan.slack.alert" -}}
{{ if eq .Status "firing" }}:red_circle: *Firing*{{ else }}:large_green_circle: *Resolved*{{ end }} · *{{ .Labels.alertname }}* · severity *{{ .Labels.severity }}* · host \`{{ or .Labels.instance .Labels.host "n/a" }}\`
*Summary:* {{ .Annotations.summary }}
*Details:* {{ .Annotations.description }}
{{ with .Annotations.value }}*Value{{ if eq $.Status "resolved" }} (last evaluation){{ end }}:* {{ . }}
{{ end }}{{ if eq .Status "firing" }}{{ with .Annotations.runbook }}*What to do:* {{ . }}
{{ end }}{{ end }}*Since:* {{ .StartsAt.Format "2006-01-02 15:04:05 MST" }}{{ if eq .Status "resolved" }} · *Resolved:* {{ .EndsAt.Format "2006-01-02 15:04:05 MST" }}{{ end }}
{{ if .DashboardURL }}<{{ .DashboardURL }}|Dashboard>{{ end }}{{ if .PanelURL }} · <{{ .PanelURL }}|Panel>{{ end }}{{ with .Annotations.runbook_url }} · <{{ . }}|Runbook>{{ end }}{{ if and (eq .Status "firing") .SilenceURL }} · <{{ .SilenceURL }}|Silence>{{ end }}
{{- end }}

{{ define "${SLACK_TEXT_TEMPLATE}" -}}
{{ range .Alerts.Firing }}{{ template "titan.slack.alert" . }}

{{ end }}{{ range .Alerts.Resolved }}{{ template "titan.slack.alert" . }}

{{ end }}
{{- end }}
`;

export function notificationTemplate(): NotificationTemplate {
  return { orgId: GRAFANA_ORG_ID, name: NOTIFICATION_TEMPLATE_NAME, template: NOTIFICATION_TEMPLATE };
}

export function slackContactPoint(): ContactPoint {
  return {
    orgId: GRAFANA_ORG_ID,
    name: SLACK_CONTACT_POINT.name,
    receivers: [
      {
        uid: SLACK_CONTACT_POINT.uid,
        type: "slack",
        settings: {
          // Grafana reads the URL from its environment when it provisions; the secret is in
          // the environment file the delivery stage writes, never in this file.
          url: `\${${SLACK_WEBHOOK_ENV}}`,
          title: `{{ template "${SLACK_TITLE_TEMPLATE}" . }}`,
          text: `{{ template "${SLACK_TEXT_TEMPLATE}" . }}`,
        },
        // Resolved notifications on: the channel sees every incident close.
        disableResolveMessage: false,
      },
    ],
  };
}

/**
 * Web hosts with a remediation agent Grafana posts to: all of them unless remediation is off.
 * (dry-run too: the agent logs and counts what it would do.)
 */
function remediationHosts(ctx: TemplateContext): HostSlot[] {
  return ctx.config.remediation === "off" ? [] : ctx.plan.hosts.filter((h) => h.role === "web");
}

/**
 * A signed webhook to each web host's remediation agent. Resolved messages off: the agent acts
 * only on firing alerts, and with disableResolveMessage Grafana leaves resolved alerts out of
 * the request and sends none when only resolved ones are left (grafana/alerting
 * receivers/webhook/v1/webhook.go SendResolved returns !DisableResolveMessage; prometheus/
 * alertmanager notify/notify.go RetryStage.exec filters on it).
 */
export function remediationContactPoints(ctx: TemplateContext): ContactPoint[] {
  return remediationHosts(ctx).map((host) => ({
    orgId: GRAFANA_ORG_ID,
    name: remediationContactPointUid(host.name),
    receivers: [
      {
        uid: remediationContactPointUid(host.name),
        type: "webhook",
        settings: {
          url: remediationWebhookUrl(host.privateIp),
          httpMethod: "POST",
          // grafana/alerting receivers/webhook/v1/config.go: hmacConfig {secret, header,
          // timestampHeader}; the secret is a secure field, read from Grafana's environment here.
          hmacConfig: {
            secret: `\${${REMEDIATION_HMAC_SECRET_ENV}}`,
            header: REMEDIATION_SIGNATURE_HEADER,
            timestampHeader: REMEDIATION_TIMESTAMP_HEADER,
          },
        },
        disableResolveMessage: true,
      },
    ],
  }));
}

/**
 * Every remediation contact point uid the stack could have created (web-1 ... web-MAX) that this
 * configuration does not: all of them when remediation is off, those past webCount otherwise.
 * Deleting one Grafana never had is harmless (grafana/grafana pkg/services/ngalert/provisioning/
 * contactpoints.go DeleteContactPoint: no receiver matches, the configuration is saved as it was,
 * and no error), and deletions run after the new policy tree is in place (provisioning/alerting/
 * provisioner.go Provision: contact points, policies, then the policies' and contact points'
 * Unprovision), so no route refers to them any more.
 */
export function retiredRemediationContactPointUids(ctx: TemplateContext): string[] {
  const live = new Set(remediationHosts(ctx).map((h) => remediationContactPointUid(h.name)));
  return addressPlan(ctx.config.vpcCidr, MAX_WEB_HOSTS)
    .hosts.filter((h) => h.role === "web")
    .map((h) => remediationContactPointUid(h.name))
    .filter((uid) => !live.has(uid));
}

/**
 * One route per web host, first in the tree: alerts that name a fix (the `remediation` label)
 * and come from that host go to its agent at once, and `continue` lets the same alert go on to
 * the severity routes, so Slack (or the default receiver) still gets every alert.
 */
export function remediationRoutes(ctx: TemplateContext): Route[] {
  return remediationHosts(ctx).map((host) => ({
    receiver: remediationContactPointUid(host.name),
    object_matchers: [
      [REMEDIATION_LABEL, "=~", ".+"],
      ["instance", "=", physicalName(ctx.config, host.name)],
    ],
    group_wait: "5s",
    group_interval: "1m",
    repeat_interval: "1h",
    continue: true,
  }));
}

/**
 * The whole policy tree (provisioning replaces it). Alerts are grouped per alert and host, so
 * one notification speaks of one problem on one machine; critical alerts are announced
 * faster and repeated hourly, warnings every four hours. The remediation routes (if any) come
 * first and continue.
 *
 * Without a webhook every severity route ends at Grafana's built-in `grafana-default-email`
 * contact point: the tree must name a receiver that exists, no Slack contact point is
 * provisioned, and the default one is always there. Alerts still evaluate and show in Grafana's
 * alerting UI; with no SMTP configured nobody is notified (the README says so).
 */
export function notificationPolicy(
  slackWebhookConfigured: boolean,
  remediation: readonly Route[] = [],
): NotificationPolicy {
  const receiver = slackWebhookConfigured ? SLACK_CONTACT_POINT.name : DEFAULT_RECEIVER;
  const route = (severity: string, timing: Pick<Route, "group_wait" | "group_interval" | "repeat_interval">) => ({
    receiver,
    object_matchers: [["severity", "=", severity] as const],
    ...timing,
    continue: false,
  });
  return {
    orgId: GRAFANA_ORG_ID,
    receiver,
    // Loki streams name the host `host` (the log-based rule), Prometheus targets `instance`.
    group_by: ["grafana_folder", "alertname", "instance", "host"],
    group_wait: "30s",
    group_interval: "5m",
    repeat_interval: "4h",
    routes: [
      ...remediation,
      route("critical", { group_wait: "10s", group_interval: "1m", repeat_interval: "1h" }),
      route("warning", { group_wait: "30s", group_interval: "5m", repeat_interval: "4h" }),
    ],
  };
}

/**
 * The rule group, and a `deleteRules` entry for every retired uid (templates/alerts.ts
 * RETIRED_ALERTS): provisioning never removes a rule by itself. Shape from grafana/grafana
 * pkg/services/provisioning/alerting/rules_types.go RuleDeleteV1 {uid, orgId}; the provisioner
 * applies them after the groups (rules_provisioner.go Provision).
 */
export interface AlertRuleChanges {
  /** Default: RETIRED_ALERTS. */
  readonly retired?: readonly RetiredAlert[];
  /** Rules besides the table's (CI's second-push check ships one, then retires it). */
  readonly extra?: readonly AlertRule[];
}

export function alertRulesFile(
  config: StackConfig,
  alertPanels: ReadonlyMap<string, AlertPanel>,
  runbookBaseUrl?: string,
  changes: AlertRuleChanges = {},
): AlertingFile {
  const retired = changes.retired ?? RETIRED_ALERTS;
  const table = alertRuleGroup(config, alertPanels, runbookBaseUrl);
  const group = { ...table, rules: [...table.rules, ...(changes.extra ?? [])] };
  const uids = group.rules.map((r) => r.uid);
  const twice = uids.find((uid, i) => uids.indexOf(uid) !== i);
  if (twice !== undefined) throw new Error(`alert rule uid ${JSON.stringify(twice)} is used by two rules`);
  checkRetiredAlerts(group.rules, retired);
  const deleteRules = retired.map((r) => ({ orgId: GRAFANA_ORG_ID, uid: assertRuleUid(r.uid) }));
  return { apiVersion: 1, groups: [group], ...(deleteRules.length > 0 ? { deleteRules } : {}) };
}

export function notificationTemplatesFile(): AlertingFile {
  return { apiVersion: 1, templates: [notificationTemplate()] };
}

/**
 * With a webhook: the Slack contact point. Without: an instruction to delete it, so turning
 * the webhook off later removes the stored contact point (and its copy of the URL). Likewise
 * the remediation contact points: one per web host while remediation is not off, and a delete
 * for every other one the stack could have made. The policy tree is provisioned before
 * deletions run, so it no longer references them by then.
 */
export function contactPointsFile(ctx: TemplateContext, slackWebhookConfigured: boolean): AlertingFile {
  const deletes = [
    ...(slackWebhookConfigured ? [] : [SLACK_CONTACT_POINT.uid]),
    ...retiredRemediationContactPointUids(ctx),
  ].map((uid) => ({ orgId: GRAFANA_ORG_ID, uid }));
  const contactPoints = [...(slackWebhookConfigured ? [slackContactPoint()] : []), ...remediationContactPoints(ctx)];
  return {
    apiVersion: 1,
    ...(contactPoints.length > 0 ? { contactPoints } : {}),
    ...(deletes.length > 0 ? { deleteContactPoints: deletes } : {}),
  };
}

export function notificationPoliciesFile(ctx: TemplateContext, slackWebhookConfigured: boolean): AlertingFile {
  return { apiVersion: 1, policies: [notificationPolicy(slackWebhookConfigured, remediationRoutes(ctx))] };
}
