/**
 * What metricsStore=amp costs, from the stack's own sample rate as the fleet measured it
 * (bench/amp-sample-rate.json, written by `node build/tests/fleet/main.js --record`) and AMP's
 * prices in facts/prices.ts: samples ingested (tiered, after the free tier), storage at AMP's
 * retention, and an upper bound of what Grafana's alert rules read. The README's summary and
 * docs/metrics-store.md's table are rendered here; tests/readme.test.ts keeps both in step with
 * the recorded file, tests/amp-cost.test.ts checks the arithmetic by hand.
 */
import { MAX_WEB_HOSTS } from "../facts/addressing";
import { CONFIG_KEYS, type StackConfig } from "../facts/config";
import {
  AMP_FREE_TIER_MONTHLY,
  AMP_INGEST_TIERS,
  AMP_RETENTION_DAYS,
  AMP_SAMPLE_BYTES,
  AMP_STORAGE_GB_MONTH_USD,
  PRICE_REGION,
  SECONDS_PER_MONTH,
} from "../facts/prices";
import { SCRAPE_JOBS, SELF_JOB, type JobName } from "../facts/scrapeJobs";
import { ROLES, type Role } from "../facts/topology";
import { ALERT_GROUP, alertDefinitions, type AlertDefinition } from "./alerts";
import { SCRAPE_INTERVAL } from "./prometheus/config";
import { markdownTable } from "./markdownTable";

/** bench/amp-sample-rate.json: what the fleet's Prometheus appended, per job and per host role. */
export interface AmpSampleRate {
  /** The run's date (YYYY-MM-DD). */
  readonly measured: string;
  readonly run: "fleet";
  /** Web hosts the measured stack had. */
  readonly webCount: number;
  readonly scrapeIntervalSeconds: number;
  /** The window the rate was averaged over. */
  readonly windowSeconds: number;
  /** Samples a second, every job together. */
  readonly samplesPerSecond: number;
  readonly byJob: Readonly<Record<JobName, number>>;
  /** Samples a second per host of the role (web: each web host). */
  readonly byRole: Readonly<Record<Role, number>>;
  /** Jobs whose exporters were the fleet's stand-ins, not the vendor's program. */
  readonly standIns: readonly JobName[];
}

export const AMP_SAMPLE_RATE_FILE = "bench/amp-sample-rate.json";
export const AMP_SAMPLE_RATE_COMMAND = "node build/tests/fleet/main.js --record";

/** Every job Prometheus scrapes, its own included. */
const JOBS: readonly JobName[] = [...SCRAPE_JOBS.map((j) => j.job), SELF_JOB];

/** The roles whose hosts a job scrapes. */
function rolesOf(job: JobName): readonly Role[] {
  if (job === SELF_JOB) return ["prometheus"];
  const found = SCRAPE_JOBS.find((j) => j.job === job);
  if (!found) throw new Error(`no scrape job ${job}`);
  return found.roles;
}

const hostsOf = (role: Role, webCount: number) => (role === "web" ? webCount : 1);

/** Seconds in a Prometheus duration of one unit ("15s", "5m", "1h", "1d"). */
export function durationSeconds(duration: string): number {
  const m = /^(\d+)([smhd])$/.exec(duration);
  if (!m) throw new Error(`duration ${JSON.stringify(duration)}: expected <integer><s|m|h|d>`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "s" | "m" | "h" | "d"];
}

/** Agreement allowed between the file's totals (rounding of per-job and per-role rates). */
const TOLERANCE = 0.02;

/** The file's content checked: every key present, of its type, and the totals consistent with each other. */
export function parseAmpSampleRate(value: unknown, file = AMP_SAMPLE_RATE_FILE): AmpSampleRate {
  const fail = (key: string, got: unknown, expected: string): never => {
    throw new Error(`${file}: ${key} = ${JSON.stringify(got)}: expected ${expected}`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail("(the file)", value, "an object");
  const v = value as Record<string, unknown>;
  const positive = (key: string, x: unknown): number =>
    typeof x === "number" && Number.isFinite(x) && x > 0 ? x : fail(key, x, "a positive number");
  const rates = (key: string, x: unknown, keys: readonly string[]): Record<string, number> => {
    if (typeof x !== "object" || x === null || Array.isArray(x)) return fail(key, x, `an object of ${keys.join(", ")}`);
    const o = x as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => !keys.includes(k));
    if (extra.length > 0) fail(key, x, `only the keys ${keys.join(", ")} (not ${extra.join(", ")})`);
    return Object.fromEntries(keys.map((k) => [k, positive(`${key}.${k}`, o[k])]));
  };

  const measured =
    typeof v.measured === "string" && /^\d{4}-\d{2}-\d{2}$/.test(v.measured)
      ? v.measured
      : fail("measured", v.measured, "a date YYYY-MM-DD");
  if (v.run !== "fleet") fail("run", v.run, '"fleet"');
  const webCount =
    Number.isInteger(v.webCount) && (v.webCount as number) >= 1 && (v.webCount as number) <= MAX_WEB_HOSTS
      ? (v.webCount as number)
      : fail("webCount", v.webCount, `an integer 1-${MAX_WEB_HOSTS}`);
  const scrapeIntervalSeconds = positive("scrapeIntervalSeconds", v.scrapeIntervalSeconds);
  // A rate measured at another scrape interval is not this program's rate: record it again.
  if (scrapeIntervalSeconds !== durationSeconds(SCRAPE_INTERVAL)) {
    fail("scrapeIntervalSeconds", scrapeIntervalSeconds, `${durationSeconds(SCRAPE_INTERVAL)} (SCRAPE_INTERVAL)`);
  }
  const windowSeconds = positive("windowSeconds", v.windowSeconds);
  const samplesPerSecond = positive("samplesPerSecond", v.samplesPerSecond);
  const byJob = rates("byJob", v.byJob, JOBS) as Record<JobName, number>;
  const byRole = rates("byRole", v.byRole, ROLES) as Record<Role, number>;
  if (!Array.isArray(v.standIns) || v.standIns.some((j) => !JOBS.includes(j as JobName))) {
    fail("standIns", v.standIns, `a list of jobs among ${JOBS.join(", ")}`);
  }
  const standIns = v.standIns as JobName[];

  const jobsTotal = JOBS.reduce((sum, j) => sum + byJob[j], 0);
  const rolesTotal = ROLES.reduce((sum, r) => sum + byRole[r] * hostsOf(r, webCount), 0);
  for (const [what, total] of [
    ["the sum of byJob", jobsTotal],
    ["byRole times each role's hosts", rolesTotal],
  ] as const) {
    if (Math.abs(total - samplesPerSecond) > TOLERANCE * samplesPerSecond) {
      fail("samplesPerSecond", samplesPerSecond, `${what} (${total.toFixed(1)}) within ${TOLERANCE * 100}%`);
    }
  }
  return {
    measured,
    run: "fleet",
    webCount,
    scrapeIntervalSeconds,
    windowSeconds,
    samplesPerSecond,
    byJob,
    byRole,
    standIns,
  };
}

/** Samples a second with `webCount` web hosts: each web host's share times their number, plus the other hosts'. */
export function samplesPerSecondAt(rate: AmpSampleRate, webCount: number): number {
  return ROLES.reduce((sum, r) => sum + rate.byRole[r] * hostsOf(r, webCount), 0);
}

/**
 * Active series per job with `webCount` web hosts: a series gives one sample per scrape, so a
 * job's series are its samples a second times the scrape interval, scaled by its targets.
 */
export function seriesByJobAt(rate: AmpSampleRate, webCount: number): Record<JobName, number> {
  const targets = (job: JobName, n: number) => rolesOf(job).reduce((sum, r) => sum + hostsOf(r, n), 0);
  return Object.fromEntries(
    JOBS.map((job) => [
      job,
      (rate.byJob[job] * rate.scrapeIntervalSeconds * targets(job, webCount)) / targets(job, rate.webCount),
    ]),
  ) as Record<JobName, number>;
}

/** USD for a month's samples ingested: the free tier first, then each tier's price for the samples in it. */
export function ampIngestionUsd(samples: number): number {
  if (!Number.isFinite(samples) || samples < 0) {
    throw new Error(`samples ingested = ${samples}: expected a finite number >= 0`);
  }
  let usd = 0;
  let from = 0;
  for (const tier of AMP_INGEST_TIERS) {
    const paidFrom = Math.max(from, AMP_FREE_TIER_MONTHLY.samplesIngested);
    const to = Math.min(samples, tier.upToSamples);
    if (to > paidFrom) usd += ((to - paidFrom) * tier.usdPer10M) / 10_000_000;
    from = tier.upToSamples;
  }
  return usd;
}

/** GB (2^30 bytes) stored once AMP holds AMP_RETENTION_DAYS of samples at this rate. */
export function ampStoredGb(samplesPerSecond: number): number {
  return (samplesPerSecond * AMP_RETENTION_DAYS * 86400 * AMP_SAMPLE_BYTES) / 2 ** 30;
}

/** USD a month for that storage, beyond the free tier's GB. */
export function ampStorageUsd(samplesPerSecond: number): number {
  return Math.max(0, ampStoredGb(samplesPerSecond) - AMP_FREE_TIER_MONTHLY.storageGb) * AMP_STORAGE_GB_MONTH_USD;
}

/** One series selector of a PromQL expression: the jobs its matchers allow (undefined: any) and its range. */
export interface Selector {
  readonly metric: string;
  readonly jobs: readonly string[] | undefined;
  readonly rangeSeconds: number | undefined;
}

/** Words that stand where a metric name could but are PromQL's own. */
const KEYWORDS = new Set(["bool", "and", "or", "unless", "offset", "by", "without", "on", "ignoring"]);

/**
 * The series selectors of a PromQL expression as this stack writes them: `name{matchers}[range]`
 * with the matchers and the range optional. Function names (a word followed by `(`), keywords,
 * grouping labels (`by (...)` and its kin are dropped first) and numbers are not selectors.
 */
export function promqlSelectors(expr: string): Selector[] {
  const text = expr.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "");
  const found: Selector[] = [];
  const token = /(?<![\w.:])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?\s*(?:\[\s*(\d+[smhd])\s*\])?\s*(\()?/g;
  for (const m of text.matchAll(token)) {
    const [, metric, matchers, range, call] = m;
    if (call !== undefined || KEYWORDS.has(metric)) continue;
    let jobs: string[] | undefined;
    const job = /\bjob\s*(=~?|!=|!~)\s*"([^"]*)"/.exec(matchers ?? "");
    if (job && job[1] === "=") jobs = [job[2]];
    else if (job && job[1] === "=~" && /^[\w|]+$/.test(job[2])) jobs = job[2].split("|");
    found.push({ metric, jobs, rangeSeconds: range === undefined ? undefined : durationSeconds(range) });
  }
  return found;
}

/**
 * An upper bound of the query samples one evaluation of the rule reads (AMP's QSP is the samples
 * the PromQL engine loads, docs.aws.amazon.com/prometheus/latest/userguide/AMP-stats.html
 * "totalQueryableSamples"): per selector, every series of the jobs it names (every series of the
 * stack when it names none) times the samples in its range (one for an instant selector). A
 * selector reads only its metric's series, so the real figure is far lower. LogQL rules query
 * Loki, not AMP: none.
 */
export function alertQspPerEvaluation(
  def: Pick<AlertDefinition, "datasource" | "expr">,
  seriesByJob: Readonly<Record<string, number>>,
  scrapeIntervalSeconds: number,
): number {
  if (def.datasource !== "prometheus") return 0;
  const all = Object.values(seriesByJob).reduce((a, b) => a + b, 0);
  let qsp = 0;
  for (const s of promqlSelectors(def.expr)) {
    const series =
      s.jobs === undefined
        ? all
        : s.jobs.reduce((sum, j) => {
            const n = seriesByJob[j];
            if (n === undefined) throw new Error(`alert expression ${def.expr}: no scrape job ${j}`);
            return sum + n;
          }, 0);
    const samples = s.rangeSeconds === undefined ? 1 : Math.floor(s.rangeSeconds / scrapeIntervalSeconds) + 1;
    qsp += series * samples;
  }
  return qsp;
}

/** Minutes of a dashboard view the summary prices: Grafana's default time range is the last 6 hours. */
const DASHBOARD_VIEW_SECONDS = 6 * 3600;

export interface AmpCostRow {
  readonly label: string;
  readonly webCount: number;
  readonly samplesPerSecond: number;
  readonly samplesPerMonth: number;
  readonly ingestionUsd: number;
  readonly storedGb: number;
  readonly storageUsd: number;
  /** Upper bound of the query samples Grafana's alert rules read in a month. */
  readonly alertQspPerMonth: number;
  /** Query samples of one look at every series over the last 6 hours. */
  readonly fullViewQsp: number;
  readonly monthlyUsd: number;
}

/** The measured stack's cost, and the rate extrapolated to the default and the largest webCount. */
export function ampCostRows(rate: AmpSampleRate, config: StackConfig): AmpCostRow[] {
  const spec = CONFIG_KEYS.find((k) => k.key === "webCount");
  const defaultWebCount = spec && "default" in spec ? Number(spec.default) : NaN;
  if (!Number.isInteger(defaultWebCount)) throw new Error("facts/config.ts: webCount has no integer default");
  const counts = [...new Set([rate.webCount, defaultWebCount, MAX_WEB_HOSTS])];
  const evaluationsPerMonth = SECONDS_PER_MONTH / durationSeconds(ALERT_GROUP.interval);
  return counts.map((webCount) => {
    const labels = [
      webCount === rate.webCount ? `measured on the fleet (${rate.measured})` : "",
      webCount === defaultWebCount ? "default webCount" : "",
      webCount === MAX_WEB_HOSTS ? "largest webCount" : "",
    ].filter((l) => l !== "");
    const samplesPerSecond = samplesPerSecondAt(rate, webCount);
    const samplesPerMonth = samplesPerSecond * SECONDS_PER_MONTH;
    const series = seriesByJobAt(rate, webCount);
    const alerts = alertDefinitions({ ...config, webCount });
    const alertQspPerMonth =
      alerts.reduce((sum, def) => sum + alertQspPerEvaluation(def, series, rate.scrapeIntervalSeconds), 0) *
      evaluationsPerMonth;
    if (alertQspPerMonth > AMP_FREE_TIER_MONTHLY.querySamplesProcessed) {
      throw new Error(
        `webCount ${webCount}: the alert rules may read ${(alertQspPerMonth / 1e9).toFixed(1)} billion query samples a month, more than AMP's free ${AMP_FREE_TIER_MONTHLY.querySamplesProcessed / 1e9} billion; facts/prices.ts has no query price to charge the rest: add it from https://aws.amazon.com/prometheus/pricing/`,
      );
    }
    const allSeries = Object.values(series).reduce((a, b) => a + b, 0);
    const ingestionUsd = ampIngestionUsd(samplesPerMonth);
    const storageUsd = ampStorageUsd(samplesPerSecond);
    return {
      label: labels.join(", "),
      webCount,
      samplesPerSecond,
      samplesPerMonth,
      ingestionUsd,
      storedGb: ampStoredGb(samplesPerSecond),
      storageUsd,
      alertQspPerMonth,
      fullViewQsp: allSeries * (DASHBOARD_VIEW_SECONDS / rate.scrapeIntervalSeconds),
      monthlyUsd: ingestionUsd + storageUsd,
    };
  });
}

const usd = (x: number) => `$${x.toFixed(2)}`;
const count = (x: number) => (x >= 1e9 ? `${(x / 1e9).toFixed(2)} B` : `${(x / 1e6).toFixed(1)} M`);
const perSecond = (x: number) => x.toFixed(1);
const free = (x: number) => (x === 0 ? "free" : usd(x));

function standInsSentence(rate: AmpSampleRate, where = true): string {
  if (rate.standIns.length === 0) return "every exporter on the fleet was the real program.";
  const named = rate.standIns.map((j) => `\`${j}\``);
  const jobs = named.length === 1 ? named[0] : `${named.slice(0, -1).join(", ")} and ${named[named.length - 1]}`;
  const dir = where ? " (`tests/fleet/standins/`)" : "";
  return `on the fleet the ${jobs} exporters were stand-ins${dir}, so their real share of the rate is not measured: the real programs export more series, and the bill grows with them.`;
}

/** The README's summary: one line, between its markers in the cost box. */
export function ampCostSummary(rate: AmpSampleRate, config: StackConfig): string {
  const [first, ...rest] = ampCostRows(rate, config);
  const role = (r: AmpCostRow) =>
    r.label.includes("default") ? ", the default" : r.label.includes("largest") ? ", the largest" : "";
  const measured = `≈ ${usd(first.monthlyUsd)} a month for the ${perSecond(first.samplesPerSecond)} samples/s the fleet measured (webCount ${first.webCount}${role(first)}, ${rate.measured})`;
  const others = rest.map(
    (r) => `≈ ${usd(r.monthlyUsd)} at webCount ${r.webCount}${role(r)} (${perSecond(r.samplesPerSecond)} samples/s)`,
  );
  return `${[measured, ...others].join(", ")}; ${standInsSentence(rate, false)}`;
}

/** docs/metrics-store.md's table and its notes, between that page's markers. */
export function ampCostSection(rate: AmpSampleRate, config: StackConfig): string {
  const rows = ampCostRows(rate, config);
  const tiers = AMP_INGEST_TIERS.map((t) =>
    Number.isFinite(t.upToSamples)
      ? `$${t.usdPer10M.toFixed(2)} per 10 M up to ${t.upToSamples / 1e9} B`
      : `$${t.usdPer10M.toFixed(2)} per 10 M beyond`,
  );
  const header = [
    "stack",
    "web hosts",
    "samples/s",
    "samples a month",
    "ingestion",
    `stored after ${AMP_RETENTION_DAYS} days`,
    "alert rules' reads a month",
    "AMP a month",
  ];
  return [
    "",
    `Measured ${rate.measured} on the fleet (\`${AMP_SAMPLE_RATE_COMMAND}\`, recorded in \`${AMP_SAMPLE_RATE_FILE}\`): ${perSecond(rate.samplesPerSecond)} samples/s over ${rate.windowSeconds} s with ${rate.webCount} web host${rate.webCount === 1 ? "" : "s"}, ${perSecond(rate.byRole.web)} of them per web host. Other web counts are extrapolated: each web host's share times their number, plus the Prometheus, Loki and Grafana hosts' shares. ${PRICE_REGION} prices (\`facts/prices.ts\`).`,
    "",
    ...markdownTable(
      header,
      rows.map((r) => [
        r.label,
        String(r.webCount),
        perSecond(r.samplesPerSecond),
        count(r.samplesPerMonth),
        usd(r.ingestionUsd),
        `${r.storedGb.toFixed(1)} GB, ${free(r.storageUsd)}`,
        `≤ ${count(r.alertQspPerMonth)}, free`,
        `**${usd(r.monthlyUsd)}**`,
      ]),
      header.map((_, i) => i > 0),
    ),
    "",
    `- **Ingestion**: samples/s × ${SECONDS_PER_MONTH.toLocaleString("en-US")} s; the first ${AMP_FREE_TIER_MONTHLY.samplesIngested / 1e6} M a month are free, then ${tiers.join(", ")}.`,
    `- **Storage**: ${AMP_RETENTION_DAYS} days of samples (the workspace's default retention) at ${AMP_SAMPLE_BYTES} bytes each (the pricing page: "typically 1 or 2 bytes"), series metadata left out; ${AMP_FREE_TIER_MONTHLY.storageGb} GB free, then $${AMP_STORAGE_GB_MONTH_USD} per GB-month.`,
    `- **Queries**: an upper bound of what Grafana's alert rules read, evaluated every ${durationSeconds(ALERT_GROUP.interval) === 60 ? "minute" : ALERT_GROUP.interval}: per selector, every series of the jobs it names (all series when it names none) times the samples in its range. It stays within the free ${AMP_FREE_TIER_MONTHLY.querySamplesProcessed / 1e9} B query samples a month. Dashboards use the rest: one look at every series over the last 6 hours reads ${rows.map((r) => `${count(r.fullViewQsp)} (webCount ${r.webCount})`).join(", ")}.`,
    `- ${standInsSentence(rate).replace(/^./, (c) => c.toUpperCase())}`,
    "",
  ].join("\n");
}
