/**
 * The self-healing loop's fixed names: the config modes, the actions an alert may ask for (the
 * agent's allow-list), the alert label that names one, and how Grafana's signed webhook reaches
 * the agent on each web host. Grafana's contact points (templates/grafana/alerting.ts), the
 * agent's environment file (templates/host) and the alert table read them from here.
 */
import { SERVICES } from "./topology";

/** `remediation` config key: `on` acts, `dry-run` logs and counts only, `off` routes nothing to the agent. */
export const REMEDIATION_MODES = ["off", "dry-run", "on"] as const;
export type RemediationMode = (typeof REMEDIATION_MODES)[number];
export const DEFAULT_REMEDIATION_MODE: RemediationMode = "on";

/** What an alert may ask the agent to do; anything else is refused. */
export const REMEDIATION_ACTIONS = ["restart-app", "free-disk"] as const;
export type RemediationAction = (typeof REMEDIATION_ACTIONS)[number];

/** The alert label naming the action; Grafana routes every alert carrying it to the agent. */
export const REMEDIATION_LABEL = "remediation";

/**
 * Grafana's HMAC headers, always set explicitly: grafana/alerting http/hmac.go signs
 * hex(HMAC-SHA256(secret, "<unix seconds>:" + body)) when a timestamp header is configured, and
 * its default signature header name ("X-Grafana-Alert-Signature") differs from the one shown in
 * its UI (receivers/webhook/v1/config.go: placeholder "X-Grafana-Alerting-Signature").
 */
export const REMEDIATION_SIGNATURE_HEADER = "X-Grafana-Alerting-Signature";
export const REMEDIATION_TIMESTAMP_HEADER = "X-Grafana-Alerting-Timestamp";
export const REMEDIATION_HEADERS = {
  signature: REMEDIATION_SIGNATURE_HEADER,
  timestamp: REMEDIATION_TIMESTAMP_HEADER,
} as const;

/** The agent's webhook path on SERVICES.remediation's port. */
export const REMEDIATION_WEBHOOK_PATH = "/grafana";

/** The agent's decision counter, labelled {action, result}. */
export const REMEDIATION_METRIC = "titan_remediation_actions_total";
/** The `result` values the agent counts (one per decision). */
export const REMEDIATION_RESULTS = [
  "acted",
  "failed",
  "refused",
  "rate_limited",
  "dry_run",
  "duplicate",
  "disabled",
] as const;
export type RemediationResult = (typeof REMEDIATION_RESULTS)[number];

/** Where Grafana posts a web host's alerts: its agent, on the host's private address. */
export const remediationWebhookUrl = (privateIp: string): string =>
  `http://${privateIp}:${SERVICES.remediation.port}${REMEDIATION_WEBHOOK_PATH}`;
