/**
 * What the running daemons on a booted host hold, asked over their own HTTP APIs from the
 * harness (the host's private IP, over the bridge), so a check sees a pushed change in effect
 * and not only a file that changed: the alert rules Grafana stores (its provisioning API) and
 * the config Loki runs with (its /config endpoint).
 *
 * On the fleet these answer from the stand-ins (tests/fleet/standins/standin.py), which mirror
 * the vendor's provisioning and response shapes; the same calls work against the real
 * daemons. Each function asks once: Grafana provisions at start, so a caller that restarts it
 * waits (exec.ts waitFor) until the answer shows the change. `port` is the service's port
 * (facts/topology.ts SERVICES) unless a test runs a stand-in elsewhere on loopback.
 */
import YAML from "yaml";
import type { StackConfig } from "../../../facts/config";
import { SERVICES } from "../../../facts/topology";
import type { ProvisionedFleet } from "../provision";
import type { CheckHost } from "./host";
import { oneLine } from "./result";

type Reachable = Pick<CheckHost, "name" | "privateIp">;

export interface GrafanaLogin {
  readonly user: string;
  readonly password: string;
}

/** The admin login the stack exports (it changes when the password is rotated: read it after each update). */
export function grafanaAdminLogin(pf: Pick<ProvisionedFleet, "plan">): GrafanaLogin {
  const get = (name: string): string => {
    const value = pf.plan.outputs[name]?.value;
    if (typeof value !== "string" || value === "") throw new Error(`the stack exports no ${name}`);
    return value;
  };
  return { user: get("grafanaAdminUser"), password: get("grafanaAdminPassword") };
}

/**
 * The fields of Grafana's ProvisionedAlertRule this module reads (grafana/grafana
 * pkg/services/ngalert/api/tooling/definitions/provisioning_alert_rules.go).
 */
export interface ProvisionedAlertRule {
  readonly uid: string;
  readonly title: string;
  readonly folderUID: string;
  readonly ruleGroup: string;
  readonly condition: string;
  readonly data: readonly {
    readonly refId: string;
    readonly datasourceUid: string;
    readonly model: Readonly<Record<string, unknown>>;
  }[];
  readonly for: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * Which rule each threshold key of the stack config sets (templates/alerts.ts alertDefinitions:
 * `threshold: t.<key>`); tests/fleet/standins.test.ts renders each key changed and finds the
 * new value at exactly this uid.
 */
export const THRESHOLD_RULES: Readonly<Record<keyof StackConfig["thresholds"], string>> = {
  rootDiskCriticalPercent: "titan-root-disk-critical",
  cpuWarningPercent: "titan-cpu-high",
  memoryWarningPercent: "titan-memory-high",
  logErrorLinesPerMinute: "titan-app-error-log-lines",
};

/**
 * The threshold a rule compares against. Path (templates/grafana/alerting.ts alertRule): the
 * data entry whose refId is the rule's `condition` ("C"), a server-side expression whose model
 * has `type: "threshold"`, and its `conditions[0].evaluator.params[0]` (`type` "gt" or "lt").
 * Anything else is an error naming the rule and what was found, never a guess.
 */
export function ruleThreshold(rule: ProvisionedAlertRule): number {
  const step = rule.data.find((d) => d.refId === rule.condition);
  if (!step)
    throw new Error(`rule ${rule.uid}: no data entry has the condition's refId ${JSON.stringify(rule.condition)}`);
  const model = step.model;
  const conditions = model.conditions;
  const first: unknown = Array.isArray(conditions) ? conditions[0] : undefined;
  const evaluator = (first as { evaluator?: { type?: unknown; params?: unknown } } | undefined)?.evaluator;
  const params = evaluator?.params;
  const value: unknown = Array.isArray(params) ? params[0] : undefined;
  if (model.type !== "threshold" || !["gt", "lt"].includes(String(evaluator?.type)) || typeof value !== "number")
    throw new Error(
      `rule ${rule.uid}: condition ${rule.condition} is not a threshold expression with a number in conditions[0].evaluator.params[0]: ${oneLine(JSON.stringify(model), 300)}`,
    );
  return value;
}

/** GET `path` on the host's Grafana with basic auth as `login`. */
export async function grafanaGet(
  host: Reachable,
  path: string,
  login: GrafanaLogin,
  port: number = SERVICES.grafana.port,
): Promise<Response> {
  return fetch(`http://${host.privateIp}:${port}${path}`, {
    headers: { Authorization: `Basic ${Buffer.from(`${login.user}:${login.password}`).toString("base64")}` },
    signal: AbortSignal.timeout(10_000),
  });
}

/** GET /api/v1/provisioning/alert-rules/{uid}: the rule as the running Grafana stores it. */
export async function grafanaRule(
  host: Reachable,
  uid: string,
  login: GrafanaLogin,
  port: number = SERVICES.grafana.port,
): Promise<ProvisionedAlertRule> {
  const res = await grafanaGet(host, `/api/v1/provisioning/alert-rules/${encodeURIComponent(uid)}`, login, port);
  if (res.status === 404) throw new Error(`${host.name}: Grafana has no alert rule ${uid} (HTTP 404)`);
  if (res.status !== 200)
    throw new Error(`${host.name}: GET alert rule ${uid}: HTTP ${res.status} ${oneLine(await res.text(), 200)}`);
  return (await res.json()) as ProvisionedAlertRule;
}

/** The threshold the running Grafana holds for rule `uid` (see ruleThreshold for the path). */
export async function grafanaRuleThreshold(
  host: Reachable,
  uid: string,
  login: GrafanaLogin,
  port: number = SERVICES.grafana.port,
): Promise<number> {
  return ruleThreshold(await grafanaRule(host, uid, login, port));
}

/** GET /api/v1/provisioning/alert-rules: the uids of every rule the running Grafana stores, sorted. */
export async function grafanaRuleUids(
  host: Reachable,
  login: GrafanaLogin,
  port: number = SERVICES.grafana.port,
): Promise<string[]> {
  const res = await grafanaGet(host, "/api/v1/provisioning/alert-rules", login, port);
  if (res.status !== 200)
    throw new Error(`${host.name}: GET alert rules: HTTP ${res.status} ${oneLine(await res.text(), 200)}`);
  const rules = (await res.json()) as ProvisionedAlertRule[];
  return rules.map((r) => r.uid).sort();
}

/**
 * GET /config on Loki: the YAML config the running Loki answers with. Real Loki prints its
 * parsed config with every default and durations in Prometheus' form (168h reads 1w); the
 * stand-in prints the file it started with. Compare values, not text (retentionSeconds).
 */
export async function lokiRunningConfig(host: Reachable, port: number = SERVICES.loki.port): Promise<string> {
  const res = await fetch(`http://${host.privateIp}:${port}/config`, {
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${host.name}: GET Loki /config: HTTP ${res.status} ${oneLine(body, 200)}`);
  return body;
}

/** Prometheus' duration units (prometheus/common model/time.go ParseDuration), in seconds. */
const DURATION_SECONDS: Readonly<Record<string, number>> = {
  y: 365 * 86400,
  w: 7 * 86400,
  d: 86400,
  h: 3600,
  m: 60,
  s: 1,
  ms: 0.001,
};

/** A Prometheus duration ("168h", "1w", "7d12h") in seconds; an error names the text. */
export function durationSeconds(text: string): number {
  if (text === "0") return 0;
  const parts = [...text.matchAll(/(\d+)(ms|[ywdhms])/g)];
  const order = parts.map((p) => Object.keys(DURATION_SECONDS).indexOf(p[2]));
  // Whole text consumed, units from the biggest to the smallest, each once (as ParseDuration).
  if (text === "" || parts.map((p) => p[0]).join("") !== text || order.some((o, i) => i > 0 && o <= order[i - 1]))
    throw new Error(`${JSON.stringify(text)} is not a Prometheus duration (e.g. 168h, 7d)`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * DURATION_SECONDS[p[2]], 0);
}

/** limits_config.retention_period of a Loki config (as /config prints it), in seconds. */
export function retentionSeconds(configYaml: string): number {
  const config = YAML.parse(configYaml) as { limits_config?: { retention_period?: unknown } } | null;
  const value = config?.limits_config?.retention_period;
  if (typeof value !== "string")
    throw new Error(`limits_config.retention_period is ${JSON.stringify(value)}: expected a duration such as 168h`);
  return durationSeconds(value);
}
