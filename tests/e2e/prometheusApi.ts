/** The few Prometheus HTTP API calls the checks need, made through the namespace bridge. */
import { bridgeRequest } from "./bridge";

export interface Series {
  readonly metric: Readonly<Record<string, string>>;
  readonly value?: readonly [number, string];
  readonly values?: readonly (readonly [number, string])[];
}

export interface Target {
  readonly labels: Readonly<Record<string, string>>;
  readonly discoveredLabels: Readonly<Record<string, string>>;
  readonly scrapePool: string;
  readonly scrapeUrl: string;
  readonly health: "up" | "down" | "unknown";
  readonly lastError: string;
}

interface ApiResponse<T> {
  readonly status: "success" | "error";
  readonly data?: T;
  readonly errorType?: string;
  readonly error?: string;
}

export class PrometheusApi {
  constructor(
    private readonly socketPath: string,
    readonly baseUrl: string,
  ) {}

  private async call<T>(path: string, params: Record<string, string | string[]> = {}, post = false): Promise<T> {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const one of [v].flat()) form.append(k, one);
    // Queries are POSTed, as Grafana's data source is configured to (httpMethod POST); the
    // metadata endpoints only answer GET.
    const url = `${this.baseUrl}${path}`;
    const res = post
      ? await bridgeRequest(this.socketPath, url, {
          method: "POST",
          body: form.toString(),
          headers: { "content-type": "application/x-www-form-urlencoded" },
        })
      : await bridgeRequest(this.socketPath, `${url}?${form.toString()}`);
    let parsed: ApiResponse<T>;
    try {
      parsed = JSON.parse(res.body) as ApiResponse<T>;
    } catch {
      throw new Error(`${path}: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    }
    if (parsed.status !== "success" || parsed.data === undefined) {
      throw new Error(`${path} ${JSON.stringify(params)}: ${parsed.errorType ?? ""} ${parsed.error ?? res.status}`);
    }
    return parsed.data;
  }

  async query(expr: string, timeS?: number): Promise<Series[]> {
    const data = await this.call<{ resultType: string; result: Series[] }>(
      "/api/v1/query",
      {
        query: expr,
        ...(timeS === undefined ? {} : { time: String(timeS) }),
      },
      true,
    );
    if (data.resultType !== "vector") throw new Error(`expected a vector from ${expr}, got ${data.resultType}`);
    return data.result;
  }

  /** A range-vector selector at one instant: the raw samples a rate() would see. */
  async samples(expr: string, timeS: number): Promise<Series[]> {
    const data = await this.call<{ resultType: string; result: Series[] }>(
      "/api/v1/query",
      { query: expr, time: String(timeS) },
      true,
    );
    if (data.resultType !== "matrix") throw new Error(`expected a matrix from ${expr}, got ${data.resultType}`);
    return data.result;
  }

  async queryRange(expr: string, startS: number, endS: number, stepS: number): Promise<Series[]> {
    const data = await this.call<{ resultType: string; result: Series[] }>(
      "/api/v1/query_range",
      {
        query: expr,
        start: String(startS),
        end: String(endS),
        step: String(stepS),
      },
      true,
    );
    return data.result;
  }

  async targets(): Promise<Target[]> {
    return (await this.call<{ activeTargets: Target[] }>("/api/v1/targets", { state: "active" })).activeTargets;
  }

  /** What Grafana's label_values(match, label) asks for. */
  async labelValues(label: string, match?: string, startS?: number, endS?: number): Promise<string[]> {
    const params: Record<string, string | string[]> = {};
    if (match !== undefined) params["match[]"] = [match];
    if (startS !== undefined) params.start = String(startS);
    if (endS !== undefined) params.end = String(endS);
    return this.call<string[]>(`/api/v1/label/${encodeURIComponent(label)}/values`, params);
  }
}
