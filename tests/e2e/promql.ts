/**
 * What Grafana does to a dashboard query before Prometheus or Loki sees it: the interval
 * macros ($__interval, $__rate_interval, $__range, ...) and the dashboard variables, expanded as
 * Grafana 12 expands them, so the live checks run exactly the queries a user's browser would.
 */

const UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  y: 31_536_000_000,
};

/** Prometheus/Grafana duration ("15s", "1m30s", "500ms") in milliseconds. */
export function parseDuration(text: string): number {
  const re = /(\d+)(ms|s|m|h|d|w|y)/y;
  let total = 0;
  let i = 0;
  if (text === "") throw new Error("empty duration");
  while (i < text.length) {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) throw new Error(`not a duration: ${JSON.stringify(text)}`);
    total += Number(m[1]) * UNITS_MS[m[2]];
    i = re.lastIndex;
  }
  return total;
}

/** Grafana's rangeutil.roundInterval: the raw interval snapped to a "nice" step. */
export function roundInterval(ms: number): number {
  const table: [number, number][] = [
    [15, 10],
    [35, 20],
    [75, 50],
    [150, 100],
    [350, 200],
    [750, 500],
    [1500, 1000],
    [3500, 2000],
    [7500, 5000],
    [12500, 10000],
    [17500, 15000],
    [25000, 20000],
    [45000, 30000],
    [90000, 60000],
    [210000, 120000],
    [450000, 300000],
    [750000, 600000],
    [1050000, 900000],
    [1500000, 1200000],
    [2700000, 1800000],
    [5400000, 3600000],
    [9000000, 7200000],
    [16200000, 10800000],
    [32400000, 21600000],
    [86400000, 43200000],
    [604800000, 86400000],
    [1814400000, 604800000],
    [3628800000, 2592000000],
  ];
  for (const [below, value] of table) if (ms < below) return value;
  return 31536000000;
}

/**
 * $__interval: the time range over the panel's data points (its width in pixels), rounded,
 * never below the data source's minimum (the Prometheus data source's timeInterval).
 */
export function grafanaInterval(rangeMs: number, maxDataPoints: number, minIntervalMs: number): number {
  return Math.max(roundInterval(rangeMs / maxDataPoints), minIntervalMs);
}

/** $__rate_interval = max($__interval + scrape interval, 4 × scrape interval). */
export const rateInterval = (intervalMs: number, scrapeMs: number): number =>
  Math.max(intervalMs + scrapeMs, 4 * scrapeMs);

/** Grafana's gtime.FormatInterval: the largest whole unit ("15s", "2m", "1h"). */
export function formatInterval(ms: number): string {
  const units: [string, number][] = [
    ["y", UNITS_MS.y],
    ["d", UNITS_MS.d],
    ["h", UNITS_MS.h],
    ["m", UNITS_MS.m],
    ["s", UNITS_MS.s],
    ["ms", 1],
  ];
  for (const [unit, size] of units) if (ms >= size) return `${Math.floor(ms / size)}${unit}`;
  return "1ms";
}

/** Go's time.Duration.String() for whole milliseconds: Grafana writes $__rate_interval with it ("1m0s"). */
export function goDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / UNITS_MS.h);
  const m = Math.floor((ms % UNITS_MS.h) / UNITS_MS.m);
  const sMs = ms % UNITS_MS.m;
  const s = sMs % 1000 === 0 ? String(sMs / 1000) : (sMs / 1000).toString();
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

export interface MacroContext {
  readonly intervalMs: number;
  readonly rangeMs: number;
  readonly scrapeIntervalMs: number;
}

/** The built-in variables and how Grafana's Prometheus backend (pkg/promlib) writes them. */
export function macroValues(c: MacroContext): Record<string, string> {
  const rate = rateInterval(c.intervalMs, c.scrapeIntervalMs);
  const rangeS = Math.round(c.rangeMs / 1000);
  return {
    __interval: formatInterval(c.intervalMs),
    __interval_ms: String(c.intervalMs),
    __rate_interval: goDuration(rate),
    __rate_interval_ms: String(rate),
    __range: `${rangeS}s`,
    __range_s: String(rangeS),
    __range_ms: String(c.rangeMs),
  };
}

export interface VariableSpec {
  readonly name: string;
  readonly multi?: boolean;
  readonly includeAll?: boolean;
  readonly allValue?: string;
}

export type Selection = { readonly all: true } | { readonly values: readonly string[] };
export type Dialect = "prometheus" | "loki";

/** Grafana's prometheusSpecialRegexEscape / lokiSpecialRegexEscape (the same character set). */
export const regexEscape = (v: string): string => v.replace(/\\/g, "\\\\\\\\").replace(/[$^*{}[\]'+?.()|]/g, "\\\\$&");
/** Single-value variables are only quote-escaped. */
const regularEscape = (v: string): string => v.replace(/\\/g, "\\\\\\\\").replace(/'/g, "\\\\'");

/**
 * A variable's text in a query, as the data source's interpolateQueryExpr writes it. `options`
 * are all the values the variable offers (needed for All without an allValue).
 */
export function formatVariable(
  spec: VariableSpec,
  selection: Selection,
  options: readonly string[],
  dialect: Dialect,
): string {
  let values: readonly string[];
  if ("all" in selection) {
    if (!spec.includeAll) throw new Error(`variable ${spec.name} has no All option`);
    // A custom all value is used as written, unescaped.
    if (spec.allValue !== undefined) return spec.allValue;
    values = options;
  } else {
    values = selection.values;
  }
  if (values.length === 0) throw new Error(`variable ${spec.name} has no value`);
  if (!spec.multi && !spec.includeAll) {
    if (values.length !== 1) throw new Error(`variable ${spec.name} is single-valued`);
    return regularEscape(values[0]);
  }
  const escaped = values.map(regexEscape);
  if (escaped.length === 1) return escaped[0];
  return dialect === "prometheus" ? `(${escaped.join("|")})` : escaped.join("|");
}

/** Grafana's variable syntax: $name, ${name}, ${name:format}, [[name]]. */
const VARIABLE = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}/g;

/** Every variable name a query refers to. */
export function variablesIn(expr: string): string[] {
  return [...expr.matchAll(VARIABLE)].map((m) => m[1] ?? m[2] ?? m[4]);
}

/**
 * Replaces every variable with its value. A name with no value is an error: Grafana would send
 * it to the data source literally and the panel would break.
 */
export function interpolate(expr: string, values: Readonly<Record<string, string>>): string {
  return expr.replace(VARIABLE, (whole: string, a?: string, b?: string, _bf?: string, c?: string, field?: string) => {
    const name = a ?? b ?? c ?? "";
    if (field !== undefined) throw new Error(`unsupported variable field ${whole}`);
    const value = values[name];
    if (value === undefined) throw new Error(`undefined variable ${whole} in ${expr}`);
    return value;
  });
}

/** `label_values(selector, label)` or `label_values(label)`: the query variables' queries. */
export function parseLabelValues(query: string): { readonly match?: string; readonly label: string } {
  const m = /^\s*label_values\(\s*(?:(.*\S)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/.exec(query);
  if (!m) throw new Error(`not a label_values() query: ${query}`);
  return m[1] === undefined ? { label: m[2] } : { match: m[1], label: m[2] };
}
