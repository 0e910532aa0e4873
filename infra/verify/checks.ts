/**
 * The post-deploy verification: polls the live pipeline until every check holds or the
 * deadline passes, and reports what was checked and how long each took. It talks only to
 * the operator-facing ports (Prometheus :9090, Grafana :3000); Loki is queried through
 * Grafana's data source proxy, so no internal port is opened for it.
 */

export interface ExpectedTarget {
  readonly job: string;
  readonly instance: string;
  readonly role: string;
}

export interface VerificationSpec {
  readonly prometheusUrl: string;
  readonly grafanaUrl: string;
  readonly grafanaUser: string;
  readonly environment: string;
  readonly targets: readonly ExpectedTarget[];
  /**
   * Only with metricsStore=amp: the Prometheus data source (whose uid is the same on either store)
   * that must return every target's `up` from the workspace. Absent with local, so a local stack's
   * spec, and with it the verification's trigger, is what it was.
   */
  readonly metricsStore?: { readonly datasourceUid: string };
  /**
   * A line each web host wrote just before verification, to be found in Loki with its labels;
   * `since` (Unix seconds, the hosts' clocks) is when the first was written: only lines from
   * then on count (less a minute or two for clocks and batching).
   */
  readonly logMarker?: {
    readonly marker: string;
    readonly hosts: readonly string[];
    readonly job: string;
    readonly since?: number;
  };
  readonly grafana: {
    readonly datasourceUids: readonly string[];
    readonly dashboardUids: readonly string[];
    readonly ruleUids: readonly string[];
    /** The Slack contact point's name when a webhook is configured. */
    readonly contactPoint?: string;
  };
  /** Overall budget and polling interval, in milliseconds. */
  readonly timeoutMs: number;
  readonly intervalMs: number;
}

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly seconds: number;
  readonly detail: string;
}

export interface VerificationReport {
  readonly ok: boolean;
  readonly seconds: number;
  readonly checks: readonly CheckResult[];
}

/** A check returns undefined when it holds, or what is still wrong. */
type Probe = () => Promise<string | undefined>;

export type Fetch = (
  url: string,
  init?: { headers?: Record<string, string> },
) => Promise<{
  ok: boolean;
  status: number;
  json(): Promise<unknown>;
}>;

async function getJson(fetcher: Fetch, url: string, headers: Record<string, string> = {}): Promise<unknown> {
  const response = await fetcher(url, { headers });
  if (!response.ok) throw new Error(`GET ${url.replace(/\?.*/, "")} answered ${response.status}`);
  return response.json();
}

interface PromTarget {
  labels: Record<string, string>;
  health: string;
  lastError?: string;
}

export function targetsProbe(fetcher: Fetch, spec: VerificationSpec): Probe {
  return async () => {
    const body = (await getJson(fetcher, `${spec.prometheusUrl}/api/v1/targets?state=active`)) as {
      data: { activeTargets: PromTarget[] };
    };
    const active = body.data.activeTargets;
    const problems = spec.targets.flatMap((want) => {
      const found = active.find((t) => t.labels.job === want.job && t.labels.instance === want.instance);
      if (!found) return [`${want.job}/${want.instance} not discovered`];
      if (found.labels.role !== want.role || found.labels.environment !== spec.environment) {
        return [`${want.job}/${want.instance} has role=${found.labels.role} environment=${found.labels.environment}`];
      }
      return found.health === "up" ? [] : [`${want.job}/${want.instance} is ${found.health}: ${found.lastError ?? ""}`];
    });
    return problems.length ? problems.join("; ") : undefined;
  };
}

export function basicAuth(user: string, password: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` };
}

/** How much earlier than `since` a marker line may carry (a host's clock against Loki's entry, Alloy's batching). */
export const MARKER_SLACK_SECONDS = 120;

export function lokiProbe(fetcher: Fetch, spec: VerificationSpec, password: string): Probe | undefined {
  const marker = spec.logMarker;
  if (!marker) return undefined;
  const auth = basicAuth(spec.grafanaUser, password);
  return async () => {
    const missing: string[] = [];
    for (const host of marker.hosts) {
      const query = `{job="${marker.job}", host="${host}", environment="${spec.environment}"} |= "${marker.marker}"`;
      const start =
        marker.since !== undefined
          ? `${marker.since - MARKER_SLACK_SECONDS}000000000`
          : String((Date.now() - 30 * 60 * 1000) * 1e6);
      const url =
        `${spec.grafanaUrl}/api/datasources/proxy/uid/${spec.grafana.datasourceUids.find((u) => u.includes("loki")) ?? ""}` +
        `/loki/api/v1/query_range?query=${encodeURIComponent(query)}&start=${start}&limit=5`;
      const body = (await getJson(fetcher, url, auth)) as { data: { result: { stream: Record<string, string> }[] } };
      const stream = body.data.result[0]?.stream;
      if (!stream) missing.push(`no marker line from ${host} in Loki yet`);
      else if (!stream.level || !stream.filename) missing.push(`${host}'s marker lacks level/filename labels`);
    }
    return missing.length ? missing.join("; ") : undefined;
  };
}

interface PromVectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

/**
 * With amp, a healthy data source proves only that Grafana can sign a query to the workspace; this
 * proves the samples arrive there: the Prometheus data source, asked through Grafana for `up` of
 * the stack's environment, must hold a recent sample of every expected (job, instance) with value 1.
 *
 * Through Grafana because only Grafana's instance role may query the workspace. Grafana 12's
 * `/api/datasources/proxy/uid/:uid/*` (pkg/api/api.go, ProxyDataSourceRequestWithUID) hands the
 * request to pkg/api/pluginproxy/ds_proxy.go, which lets a GET through for a Prometheus data source
 * (it refuses DELETE, PUT and POST), appends the path to the data source's URL (the workspace root,
 * so AMP's .../api/v1/query) and sends it with the transport from DataSourceService.GetHTTPTransport:
 * with jsonData.sigV4Auth and [auth] sigv4_auth_enabled its options carry SigV4 (service aps, the
 * data source's region and auth type: pkg/services/datasources/service/datasource.go), and
 * pkg/infra/httpclient/httpclientprovider/sigv4_middleware.go signs with them. The data source's
 * 401 comes back as 400 "Authentication to data source failed"; AMP's 403 passes through.
 *
 * The answer is Prometheus' query API, which AMP serves: prometheus/prometheus web/api/v1/api.go
 * Response {status, data, errorType, error} and QueryData {resultType, result}; an instant
 * vector's samples are {metric, value: [time, "value as text"]} (promql/value.go Sample.MarshalJSON,
 * web/api/v1/json_codec.go marshalFPointJSON).
 */
/** How recent the store's sample of each target must be: a few scrape intervals plus remote write's lag. */
export const STORE_FRESHNESS = "2m";

export function storeProbe(fetcher: Fetch, spec: VerificationSpec, password: string): Probe | undefined {
  const store = spec.metricsStore;
  if (!store) return undefined;
  const auth = basicAuth(spec.grafanaUser, password);
  // last_over_time over a window, not bare `up`: an instant query finds a sample up to 5 minutes
  // old (the lookback delta), so remote write broken by this very push would pass until then; a
  // series with no sample in the window is absent from the answer (Prometheus 2.26+, and AMP).
  const query = `last_over_time(up{environment=${JSON.stringify(spec.environment)}}[${STORE_FRESHNESS}])`;
  const url =
    `${spec.grafanaUrl}/api/datasources/proxy/uid/${encodeURIComponent(store.datasourceUid)}` +
    `/api/v1/query?query=${encodeURIComponent(query)}`;
  return async () => {
    const body = (await getJson(fetcher, url, auth)) as {
      status?: string;
      errorType?: string;
      error?: string;
      data?: { resultType?: string; result?: PromVectorSample[] };
    };
    if (body.status !== "success") {
      return `the store answered ${body.status ?? "no status"}: ${body.errorType ?? ""} ${body.error ?? ""}`.trim();
    }
    if (body.data?.resultType !== "vector" || !Array.isArray(body.data.result)) {
      return `the store answered a ${body.data?.resultType ?? "missing"} result, expected a vector`;
    }
    const samples = body.data.result;
    const problems = spec.targets.flatMap((want) => {
      const found = samples.filter((s) => s.metric.job === want.job && s.metric.instance === want.instance);
      if (found.length === 0)
        return [`${want.job}/${want.instance} has no up in the store from the last ${STORE_FRESHNESS}`];
      return found.some((s) => Number(s.value[1]) === 1)
        ? []
        : [`${want.job}/${want.instance} is up=${found.map((s) => s.value[1]).join(",")} in the store`];
    });
    return problems.length ? problems.join("; ") : undefined;
  };
}

export function grafanaProbes(fetcher: Fetch, spec: VerificationSpec, password: string): [string, Probe][] {
  const auth = basicAuth(spec.grafanaUser, password);
  const base = spec.grafanaUrl;
  const probes: [string, Probe][] = [
    [
      "grafana health",
      async () => {
        const body = (await getJson(fetcher, `${base}/api/health`)) as { database?: string };
        return body.database === "ok" ? undefined : `database is ${body.database ?? "unknown"}`;
      },
    ],
    [
      "grafana data sources healthy",
      async () => {
        const problems: string[] = [];
        for (const uid of spec.grafana.datasourceUids) {
          const body = (await getJson(fetcher, `${base}/api/datasources/uid/${uid}/health`, auth)) as {
            status?: string;
            message?: string;
          };
          if (body.status !== "OK") problems.push(`${uid}: ${body.message ?? body.status ?? "no status"}`);
        }
        return problems.length ? problems.join("; ") : undefined;
      },
    ],
    [
      "grafana dashboards provisioned",
      async () => {
        const body = (await getJson(fetcher, `${base}/api/search?type=dash-db&limit=5000`, auth)) as { uid: string }[];
        const missing = spec.grafana.dashboardUids.filter((uid) => !body.some((d) => d.uid === uid));
        return missing.length ? `missing dashboards ${missing.join(", ")}` : undefined;
      },
    ],
    [
      "grafana alert rules provisioned",
      async () => {
        const body = (await getJson(fetcher, `${base}/api/v1/provisioning/alert-rules`, auth)) as { uid: string }[];
        const missing = spec.grafana.ruleUids.filter((uid) => !body.some((r) => r.uid === uid));
        return missing.length ? `missing alert rules ${missing.join(", ")}` : undefined;
      },
    ],
  ];
  const contactPoint = spec.grafana.contactPoint;
  if (contactPoint) {
    probes.push([
      "slack contact point exists",
      async () => {
        const body = (await getJson(fetcher, `${base}/api/v1/provisioning/contact-points`, auth)) as {
          name: string;
          type: string;
        }[];
        return body.some((c) => c.name === contactPoint && c.type === "slack")
          ? undefined
          : `no slack contact point ${contactPoint}`;
      },
    ]);
  }
  return probes;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls every probe until it holds; all probes share the one deadline. */
export async function verify(
  spec: VerificationSpec,
  password: string,
  fetcher: Fetch = fetch,
): Promise<VerificationReport> {
  const started = Date.now();
  const deadline = started + spec.timeoutMs;
  const probes: [string, Probe][] = [["prometheus targets up", targetsProbe(fetcher, spec)]];
  const loki = lokiProbe(fetcher, spec, password);
  if (loki) probes.push(["loki has each web host's marker line", loki]);
  const store = storeProbe(fetcher, spec, password);
  if (store) probes.push(["metrics reach the store through Grafana", store]);
  probes.push(...grafanaProbes(fetcher, spec, password));

  const checks = await Promise.all(
    probes.map(async ([name, probe]): Promise<CheckResult> => {
      let last = "not run";
      for (;;) {
        try {
          const problem = await probe();
          if (problem === undefined) return { name, ok: true, seconds: (Date.now() - started) / 1000, detail: "ok" };
          last = problem;
        } catch (err) {
          last = (err as Error).message;
        }
        if (Date.now() + spec.intervalMs > deadline) {
          return { name, ok: false, seconds: (Date.now() - started) / 1000, detail: last };
        }
        await sleep(spec.intervalMs);
      }
    }),
  );
  return { ok: checks.every((c) => c.ok), seconds: (Date.now() - started) / 1000, checks };
}

export function formatReport(report: VerificationReport): string {
  const lines = report.checks.map(
    (c) => `${c.ok ? "PASS" : "FAIL"} ${c.name} (${c.seconds.toFixed(1)}s)${c.ok ? "" : `: ${c.detail}`}`,
  );
  return [`pipeline verification ${report.ok ? "passed" : "FAILED"} in ${report.seconds.toFixed(1)}s`, ...lines].join(
    "\n",
  );
}
