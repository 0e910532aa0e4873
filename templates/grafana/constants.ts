/**
 * Names, UIDs and paths of the Grafana host's provisioning. Other stages read these (the
 * delivery stage writes the webhook into Grafana's environment under SLACK_WEBHOOK_ENV and
 * creates the dashboards directory; the verification stage looks data sources and
 * dashboards up by UID), so each lives here once.
 */
import { TITAN_JOB, TITAN_LOG_RULES, type LokiLabel } from "../alloy/config";
import type { DataSourceRef } from "./model";

/** Grafana interpolates `${NAME}` in provisioning files from its own environment. */
export const SLACK_WEBHOOK_ENV = "TITAN_SLACK_WEBHOOK_URL";
/**
 * The remediation agents' HMAC secret in Grafana's environment (the delivery stage writes it into
 * the secrets file); the webhook contact points sign with `${REMEDIATION_HMAC_SECRET_ENV}`.
 */
export const REMEDIATION_HMAC_SECRET_ENV = "TITAN_REMEDIATION_HMAC_SECRET";

export const GRAFANA_ORG_ID = 1;

export const PROVISIONING_DIR = "/etc/grafana/provisioning";
/**
 * Dashboard JSON files. Under /etc, not /var/lib/grafana: they are rendered configuration,
 * replaced on every push, while /var/lib/grafana is the data volume holding Grafana's database.
 */
export const DASHBOARDS_DIR = "/etc/grafana/dashboards/titan";

export const GRAFANA_PATHS = {
  datasources: `${PROVISIONING_DIR}/datasources/titan.yaml`,
  dashboardProvider: `${PROVISIONING_DIR}/dashboards/titan.yaml`,
  alertRules: `${PROVISIONING_DIR}/alerting/titan-rules.yaml`,
  notificationTemplates: `${PROVISIONING_DIR}/alerting/titan-templates.yaml`,
  contactPoints: `${PROVISIONING_DIR}/alerting/titan-contact-points.yaml`,
  notificationPolicies: `${PROVISIONING_DIR}/alerting/titan-policies.yaml`,
} as const;

export const DATASOURCE_UIDS = { prometheus: "titan-prometheus", loki: "titan-loki" } as const;

export const PROMETHEUS_DS: DataSourceRef = { type: "prometheus", uid: DATASOURCE_UIDS.prometheus };
export const LOKI_DS: DataSourceRef = { type: "loki", uid: DATASOURCE_UIDS.loki };
/** Server-side expressions (reduce, threshold) in alert rules. */
export const EXPRESSION_DS: DataSourceRef = { type: "__expr__", uid: "__expr__" };

/** Folder title shared by the dashboards and the alert rules (ALERT_GROUP.folder). */
export const DASHBOARD_FOLDER = "Titan";
export const DASHBOARD_TAG = "titan";

/** The Slack contact point; its uid is also listed for deletion when no webhook is set. */
export const SLACK_CONTACT_POINT = { name: "titan-slack", uid: "titan-slack" } as const;

/**
 * One webhook contact point per web host, to its remediation agent: uid and name
 * `titan-remediation-<slot>` (web-1 ... web-10).
 */
export const REMEDIATION_CONTACT_POINT_PREFIX = "titan-remediation-";
export const remediationContactPointUid = (slotName: string): string =>
  `${REMEDIATION_CONTACT_POINT_PREFIX}${slotName}`;

/**
 * Grafana's own default contact point, present in every new Grafana. Without a webhook the
 * policy tree routes here: provisioning a policy replaces the whole tree, so the receiver
 * must exist, and this is the only one that always does.
 */
export const DEFAULT_RECEIVER = "grafana-default-email";

export const NOTIFICATION_TEMPLATE_NAME = "titan";
export const SLACK_TITLE_TEMPLATE = "titan.slack.title";
export const SLACK_TEXT_TEMPLATE = "titan.slack.text";

/**
 * Loki stream labels the dashboards' LogQL uses. The Alloy pipeline must set each of them
 * (contract: job = "titan" for the app's files, host = the Prometheus `instance` value, i.e.
 * the Name tag, environment = the stack's environment, level = info|warning|error from the
 * logfmt `level` key).
 */
export const LOKI_QUERY_LABELS = ["job", "host", "environment", "level"] as const satisfies readonly LokiLabel[];

/** Values of the `level` label: the levels the Titan app writes, and what Alloy maps any other to. */
export const LOG_LEVELS = [...TITAN_LOG_RULES.levels, TITAN_LOG_RULES.otherLevel] as const;

/** Loki `job` of the app's log files. */
export const LOKI_APP_JOB = TITAN_JOB;
