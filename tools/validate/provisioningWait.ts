/**
 * Waits, with a deadline, until a Grafana shows through its HTTP API everything the rendered
 * provisioning declares (expectedProvisioning.ts).
 *
 * Why not /api/health: in Grafana 12 provisioning is a dskit background service
 * (grafana/grafana pkg/services/provisioning/provisioning.go: RunInitProvisioners does nothing,
 * "they need the /apis/* endpoints to be ready"; `starting` provisions data sources, then
 * alerting and dashboards concurrently), so the HTTP server answers first. Grafana exposes no
 * "provisioning done" state (grafana/grafana#85617, open: "there is not currently a good way to
 * know when the initial provisioning run completes"); the resources themselves are the signal.
 *
 * Response shapes (grafana/grafana): /api/datasources items and /api/search hits carry `uid`;
 * /api/v1/provisioning/alert-rules returns rules with `uid`; /api/v1/provisioning/contact-points
 * returns one EmbeddedContactPoint per integration, {uid, name, type, ...}
 * (pkg/services/ngalert/api/tooling/definitions/provisioning_contactpoints.go);
 * /api/v1/provisioning/policies returns the root Route, {receiver, routes: [...]}
 * (definitions/provisioning_policies.go).
 */
import type { Fetch } from "../../infra/verify/checks";
import type { ExpectedProvisioning } from "./expectedProvisioning";

export interface WaitOptions {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  /** For tests: the clock and the pause between polls. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface WaitResult {
  readonly seconds: number;
  readonly polls: number;
}

type Json = Record<string, unknown>;

async function get(fetcher: Fetch, url: string, headers: Record<string, string>): Promise<unknown> {
  const path = new URL(url).pathname;
  const response = await fetcher(url, { headers }).catch((err: Error & { cause?: { code?: string } }) => {
    throw new Error(`GET ${path}: ${err.cause?.code ?? err.message}`);
  });
  if (!response.ok) throw new Error(`GET ${path} answered ${response.status}`);
  return response.json();
}

/** A field that should be a string; anything else counts as absent. */
const str = (value: unknown): string => (typeof value === "string" ? value : "");

const uids = (body: unknown): string[] =>
  Array.isArray(body) ? body.map((item) => str((item as Json | null)?.uid)) : [];

const missing = (what: string, want: readonly string[], have: readonly string[]): string[] => {
  const absent = want.filter((w) => !have.includes(w));
  return absent.length ? [`${what} ${absent.join(", ")}`] : [];
};

/** One pass over the API: what is still missing (empty when everything is there). */
export async function missingProvisioning(
  fetcher: Fetch,
  baseUrl: string,
  headers: Record<string, string>,
  expected: ExpectedProvisioning,
): Promise<string[]> {
  const at = (path: string) => get(fetcher, `${baseUrl}${path}`, headers);
  // Each endpoint on its own: one that fails does not hide what the others show.
  const checks: (() => Promise<string[]>)[] = [
    async () => missing("data sources", expected.datasourceUids, uids(await at("/api/datasources"))),
    async () => missing("dashboards", expected.dashboardUids, uids(await at("/api/search?type=dash-db&limit=5000"))),
    async () => {
      const have = uids(await at("/api/v1/provisioning/alert-rules"));
      const stale = expected.deletedRuleUids.filter((uid) => have.includes(uid));
      return [
        ...missing("alert rules", expected.ruleUids, have),
        ...(stale.length ? [`deletion of alert rules ${stale.join(", ")}`] : []),
      ];
    },
    async () => {
      const body = await at("/api/v1/provisioning/contact-points");
      const have = Array.isArray(body) ? (body as Json[]) : [];
      const absent = expected.contactPoints.filter(
        (cp) => !have.some((h) => h.uid === cp.uid && h.name === cp.name && h.type === cp.type),
      );
      const stale = expected.deletedContactPointUids.filter((uid) => have.some((h) => h.uid === uid));
      return [
        ...(absent.length
          ? [`contact points ${absent.map((cp) => `${cp.name} (${cp.type}, uid ${cp.uid})`).join(", ")}`]
          : []),
        ...(stale.length ? [`deletion of contact points ${stale.join(", ")}`] : []),
      ];
    },
    async () => {
      const root = ((await at("/api/v1/provisioning/policies")) ?? {}) as Json;
      const routes = Array.isArray(root.routes) ? (root.routes as Json[]) : [];
      const have = [root.receiver, ...routes.map((r) => r.receiver)].map(str);
      return have.join(" ") === expected.policyReceivers.join(" ")
        ? []
        : [
            `notification policy tree with receivers [${expected.policyReceivers.join(", ")}] (Grafana has [${have.join(", ")}])`,
          ];
    },
  ];
  const results = await Promise.all(checks.map((check) => check().catch((err: Error) => [err.message])));
  return results.flat();
}

export function checkWaitOptions(options: WaitOptions): void {
  for (const key of ["timeoutMs", "intervalMs"] as const) {
    const value = options[key];
    if (!Number.isFinite(value) || value <= 0)
      throw new Error(`${key}=${String(value)}: expected a positive number of milliseconds`);
  }
  if (options.intervalMs > options.timeoutMs)
    throw new Error(`intervalMs=${options.intervalMs}: expected at most timeoutMs (${options.timeoutMs})`);
}

/**
 * Polls until nothing is missing; rejects at the deadline with what is still missing. A
 * Grafana that does not answer yet (connection refused) counts as everything still missing.
 */
export async function waitForProvisioning(
  fetcher: Fetch,
  baseUrl: string,
  headers: Record<string, string>,
  expected: ExpectedProvisioning,
  options: WaitOptions,
): Promise<WaitResult> {
  checkWaitOptions(options);
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const started = now();
  const deadline = started + options.timeoutMs;
  for (let polls = 1; ; polls++) {
    const left = await missingProvisioning(fetcher, baseUrl, headers, expected);
    const seconds = (now() - started) / 1000;
    if (left.length === 0) return { seconds, polls };
    if (now() + options.intervalMs > deadline) {
      throw new Error(
        `Grafana at ${baseUrl} had not provisioned everything after ${seconds.toFixed(1)}s (${polls} polls, deadline ${
          options.timeoutMs / 1000
        }s); still missing: ${left.join("; ")}`,
      );
    }
    await sleep(options.intervalMs);
  }
}
