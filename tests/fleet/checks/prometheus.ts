/**
 * Checks through Prometheus' HTTP API, queried from the harness over the bridge as Grafana or an
 * operator would: every target the pushed configuration should find is up, and the traffic
 * generator moves the app's request counter between two scrapes.
 */
import { SERVICES, type Role } from "../../../facts/topology";
import { SCRAPE_JOBS, SELF_JOB } from "../../../facts/scrapeJobs";
import { waitFor } from "../exec";
import { checked, fail, oneLine, pass, type CheckResult } from "./result";

export interface PlacedHost {
  readonly name: string;
  readonly role: Role;
  readonly privateIp: string;
}

export interface ExpectedTarget {
  readonly job: string;
  readonly host: string;
  readonly role: Role;
  /** The scrape address: the private IP and the service's port (EC2 discovery's __address__). */
  readonly address: string;
  /**
   * Debian's own packages (node_exporter, the app on Debian's Flask and gunicorn, Prometheus)
   * or the fleet's stand-ins for Grafana's packages (tests/fleet/standins), which serve only
   * health and /metrics: their target being up proves packaging, unit and port, not the daemon.
   */
  readonly packaging: "debian" | "stand-in";
}

const DEBIAN_JOBS = new Set(["node", "titan", SELF_JOB]);

/** The targets the pushed prometheus.yml must find among `hosts`, from the one scrape-job table. */
export function expectedTargets(hosts: readonly PlacedHost[]): ExpectedTarget[] {
  const targets: ExpectedTarget[] = [];
  for (const job of SCRAPE_JOBS) {
    for (const h of hosts) {
      if (!(job.roles as readonly Role[]).includes(h.role)) continue;
      targets.push({
        job: job.job,
        host: h.name,
        role: h.role,
        address: `${h.privateIp}:${SERVICES[job.service].port}`,
        packaging: DEBIAN_JOBS.has(job.job) ? "debian" : "stand-in",
      });
    }
  }
  const prom = hosts.find((h) => h.role === "prometheus");
  if (prom) {
    targets.push({
      job: SELF_JOB,
      host: prom.name,
      role: "prometheus",
      address: `localhost:${SERVICES.prometheus.port}`,
      packaging: "debian",
    });
  }
  return targets;
}

export interface ActiveTarget {
  readonly labels: Record<string, string>;
  readonly discoveredLabels: Record<string, string>;
  readonly health: string;
  readonly lastError: string;
  /** RFC 3339 time of the last scrape. */
  readonly lastScrape: string;
}

export async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!r.ok) throw new Error(`GET ${url} answered ${r.status}: ${oneLine(await r.text())}`);
  const body = (await r.json()) as { status: string; data: T; error?: string };
  if (body.status !== "success") throw new Error(`GET ${url}: ${body.error ?? body.status}`);
  return body.data;
}

export const activeTargets = async (prometheusUrl: string): Promise<ActiveTarget[]> =>
  (await getJson<{ activeTargets: ActiveTarget[] }>(`${prometheusUrl}/api/v1/targets?state=active`)).activeTargets;

/** The state of `want` among `active`: undefined when up with its labels, else what is wrong. */
export const findTarget = (want: ExpectedTarget, active: readonly ActiveTarget[]): ActiveTarget | undefined =>
  active.find((t) => t.labels.job === want.job && t.discoveredLabels.__address__ === want.address);

export function targetProblem(want: ExpectedTarget, active: readonly ActiveTarget[]): string | undefined {
  const found = findTarget(want, active);
  if (!found) return "not discovered";
  if (found.labels.role !== want.role) return `role label ${found.labels.role ?? "(none)"}, expected ${want.role}`;
  if (found.health !== "up") return `${found.health}${found.lastError ? `: ${found.lastError}` : ""}`;
  return undefined;
}

export interface TargetsOutcome {
  readonly results: CheckResult[];
  /** Per target (job@host), when it was first seen up, in ms since the epoch. */
  readonly firstUp: ReadonlyMap<string, number>;
}

export const targetKey = (t: ExpectedTarget) => `${t.job}@${t.host}`;

/**
 * Polls the targets API until every expected target is up or `timeoutMs` passes; one check per
 * target, with the first time each was seen up (for the measurements).
 */
export async function targetsUp(
  prometheusUrl: string,
  expected: readonly ExpectedTarget[],
  timeoutMs: number,
): Promise<TargetsOutcome> {
  const firstUp = new Map<string, number>();
  const last = new Map<string, string>();
  try {
    await waitFor(
      "every expected target up",
      async () => {
        const active = await activeTargets(prometheusUrl);
        for (const t of expected) {
          const problem = targetProblem(t, active);
          if (problem === undefined) {
            if (!firstUp.has(targetKey(t))) firstUp.set(targetKey(t), Date.now());
          } else last.set(targetKey(t), problem);
        }
        return expected.every((t) => targetProblem(t, active) === undefined) ? true : undefined;
      },
      { timeoutMs, intervalMs: 1000 },
    );
  } catch {
    // The per-target checks below say which ones never came up.
  }
  const active = await activeTargets(prometheusUrl).catch(() => undefined);
  const results = expected.map((t) => {
    const name = `target ${t.job} ${t.address} up (${t.packaging === "debian" ? "Debian package" : "stand-in"})`;
    const problem = active ? targetProblem(t, active) : "targets API unreachable";
    return problem === undefined
      ? pass(name, t.host, `up, role=${t.role}`)
      : fail(name, t.host, `${problem} (last seen: ${last.get(targetKey(t)) ?? "-"})`);
  });
  return { results, firstUp };
}

/** One instant query; the vector's samples as [labels, value, time in s]. */
export async function instantQuery(
  prometheusUrl: string,
  query: string,
  time?: number,
): Promise<{ metric: Record<string, string>; value: number; time: number }[]> {
  const q = new URLSearchParams({ query, ...(time === undefined ? {} : { time: String(time) }) });
  const data = await getJson<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
    `${prometheusUrl}/api/v1/query?${q.toString()}`,
  );
  return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]), time: r.value[0] }));
}

/**
 * The traffic generator moves the app's request counter: two different scrapes of
 * http_requests_total on the web host (told apart by the sample's own timestamp), the later
 * one larger. Waits for that real condition, never a fixed time.
 */
export function trafficMoves(prometheusUrl: string, web: PlacedHost, timeoutMs: number): Promise<CheckResult> {
  const selector = `http_requests_total{job="titan",role="web"}`;
  return checked(`traffic generator moves http_requests_total`, web.name, async () => {
    const scrape = async () => {
      const [count] = await instantQuery(prometheusUrl, `sum(${selector})`);
      const [stamp] = await instantQuery(prometheusUrl, `max(timestamp(${selector}))`);
      return count && stamp ? { value: count.value, at: stamp.value } : undefined;
    };
    const first = await waitFor("a first scrape of the app's request counter", scrape, { timeoutMs });
    const second = await waitFor(
      "a later scrape with more requests",
      async () => {
        const s = await scrape();
        if (!s || s.at <= first.at) return undefined;
        if (s.value > first.value) return s;
        throw new Error(`scrape at ${s.at} still ${s.value} requests`);
      },
      { timeoutMs, intervalMs: 2000 },
    );
    return {
      ok: true,
      detail: `${first.value} requests at ${first.at.toFixed(0)}, ${second.value} at ${second.at.toFixed(0)}`,
    };
  });
}
