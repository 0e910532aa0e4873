/**
 * Issue #5: the local end-to-end run. Unit tests prove what the program declares; this proves
 * that what the templates render works with the real binaries: Prometheus finds every host
 * through (fake) EC2 discovery with the rendered prometheus.yml, scrapes node_exporter and the
 * Titan app on the hosts' own addresses, every dashboard and alert query returns data, alerts
 * fire when provoked (a host stopped in the fake EC2 API raises HostMissing past its pending
 * period), and the LogQL and log lines fit the Alloy pipeline. Needs root (a network namespace);
 * fails, never skips, without it.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { addressPlan } from "../../facts/addressing";
import YAML from "yaml";
import { alertDefinitions, type AlertDefinition } from "../../templates/alerts";
import {
  hostLabels,
  JOURNAL_JOB,
  JOURNAL_STREAM_LABELS,
  LOKI_LABELS,
  parseLogfmt,
  TITAN_JOB,
  TITAN_LOG_RULES,
  TITAN_STREAM_LABELS,
  titanLabels,
} from "../../templates/alloy/config";
import { buildDashboards } from "../../templates/grafana/dashboards";
import { withPipelineDashboard } from "../../templates/grafana/pipelineDashboard";
import { TRAFFIC_RATE } from "../../templates/host/units";
import { PROMETHEUS_CONFIG_PATH, renderPrometheusFiles } from "../../templates/prometheus/config";
import type { PrometheusConfig } from "../../templates/prometheus/model";
import { testContext } from "../support/render";
import type { Ec2Instance } from "./fakeEc2";
import { tag } from "./hosts";
import type { HelperConfig, HelperReloaded } from "./nsHelper";
import type { Dashboard } from "../../templates/grafana/model";
import { labelProblems, parseLogql } from "./logql";
import { cpuAlertValues, CpuSampler, kernelClock, memoryPercent, rootDiskPercent } from "./machine";
import {
  expandQuery,
  panelQueries,
  resolveVariables,
  scenarios,
  type PanelQuery,
  type ResolvedVariable,
} from "./panels";
import { parseDuration, rateInterval, goDuration } from "./promql";
import type { Series } from "./prometheusApi";
import {
  E2E_TRAFFIC_RATE,
  NOT_RUNNABLE_JOBS,
  REQUIRED_COLLECTORS,
  RUNNABLE_JOBS,
  startStack,
  waitFor,
  webUnit,
  type Stack,
} from "./stack";
import { diffTargets, expectedTargets, observed, targetKey } from "./targets";
import { unitEnvironment } from "./systemdUnit";

/** EC2 discovery's refresh interval for the node job, as rendered. */
function nodeRefreshMs(prometheusYml: string): number {
  const node = (YAML.parse(prometheusYml) as PrometheusConfig).scrape_configs.find((j) => j.job_name === "node");
  const refresh = node?.ec2_sd_configs?.[0]?.refresh_interval;
  if (!refresh) throw new Error("the rendered prometheus.yml has no EC2 discovery for job node");
  return parseDuration(refresh);
}

/**
 * The stopped-host proof waits for real time: discovery's refresh, then HostMissing's pending
 * period and a margin past it; the suite's timeout leaves room for it.
 */
const HOST_STOP_PROOF_MS = (() => {
  const ctx = testContext();
  const missing = alertDefinitions(ctx.config).find((a) => a.name === "HostMissing");
  if (!missing) throw new Error("the alert table has no HostMissing");
  const yml = renderPrometheusFiles(ctx).find((f) => f.path === PROMETHEUS_CONFIG_PATH)?.content ?? "";
  return nodeRefreshMs(yml) + parseDuration(missing.for) + 60_000;
})();
/** The suite's timeout: a hung daemon ends the run instead of holding CI. */
const RUN_BUDGET_MS = 600_000 + HOST_STOP_PROOF_MS;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const hasSamples = (series: readonly Series[]) =>
  series.some((s) => (s.values?.length ?? 0) > 0 || s.value !== undefined);

describe("end-to-end: the rendered stack with the real binaries", { timeout: RUN_BUDGET_MS + 60_000 }, () => {
  const runStart = Date.now();
  let stack: Stack | undefined;
  let greenAt = 0;
  const cpu = new CpuSampler();

  const live = (): Stack => {
    if (!stack) throw new Error("the stack did not start (see the before hook's error)");
    return stack;
  };

  /** Runs a check; a failure carries the end of every process' log. */
  const check =
    (fn: (t: TestContext, s: Stack) => Promise<void> | void) =>
    async (t: TestContext): Promise<void> => {
      const s = live();
      try {
        await fn(t, s);
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        e.message = `${e.message}\n\nProcess logs:\n${s.diagnostics()}`;
        throw e;
      }
    };

  before(async () => {
    stack = await startStack();
    const s = stack;
    // Green: every target with a binary here is up and has been scraped.
    const runnable = expectedTargets(s.instances).filter((t) => RUNNABLE_JOBS.includes(t.job));
    await waitFor("every runnable target up", 60_000, async () => {
      const up = new Set((await s.prom.targets()).filter((t) => t.health === "up").map((t) => targetKey(observed(t))));
      return runnable.every((t) => up.has(targetKey(t))) ? true : undefined;
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${s.diagnostics()}`);
    });
    greenAt = Date.now();
    console.log(`e2e: time to green ${seconds(greenAt - runStart)} (start to every runnable target up)`);
  });

  after(async () => {
    cpu.stop();
    await stack?.teardown();
    console.log(`e2e: total run ${seconds(Date.now() - runStart)} including teardown`);
  });

  it(
    "discovers every host's targets through EC2 with instance, role and environment from the tags",
    check(async (t, s) => {
      const targets = await s.prom.targets();
      const diff = diffTargets(expectedTargets(s.instances), targets);
      assert.deepEqual(diff, { missing: [], unexpected: [] }, "scrape targets differ from the topology and tags");
      for (const target of targets) {
        const o = observed(target);
        if (RUNNABLE_JOBS.includes(o.job)) {
          assert.equal(target.health, "up", `${targetKey(o)} is ${target.health}: ${target.lastError}`);
        } else {
          assert.ok(NOT_RUNNABLE_JOBS.includes(o.job), `job ${o.job} is neither runnable nor known`);
          t.diagnostic(`${o.job} on ${o.instance} (${o.address}): discovered, not runnable here`);
        }
      }
      for (const d of s.decoys) {
        assert.ok(
          !targets.some((x) => x.discoveredLabels.__meta_ec2_instance_id === d.instanceId),
          `decoy ${d.tags.Name} was discovered: a filter in prometheus.yml is too loose`,
        );
      }
      // The real Prometheus asked for zone ids and followed NextToken through the fake's pages.
      const requests = s.ec2Requests();
      assert.ok(
        requests.some((r) => r.action === "DescribeAvailabilityZones"),
        "no DescribeAvailabilityZones call",
      );
      assert.ok(
        requests.some((r) => r.action === "DescribeInstances" && r.nextToken !== undefined),
        "Prometheus never followed a NextToken",
      );
      // The collectors the dashboards and alerts read work on every host.
      const collectors = await s.prom.query(
        `node_scrape_collector_success{job="node", collector=~"${REQUIRED_COLLECTORS.join("|")}"}`,
      );
      const broken = collectors.filter((c) => c.value?.[1] !== "1").map((c) => JSON.stringify(c.metric));
      assert.deepEqual(broken, [], "required node_exporter collectors failed");
      assert.equal(collectors.length, REQUIRED_COLLECTORS.length * s.instances.length);
      console.log(`e2e: time to green ${seconds(greenAt - runStart)}`);
    }),
  );

  /** Dashboards as provisioned (Pipeline included), their variables resolved against the live Prometheus. */
  const dashboards = (s: Stack): Dashboard[] => [
    ...withPipelineDashboard(s.ctx.config, buildDashboards(s.ctx.config)).dashboards,
  ];
  /** Jobs a query selects (`job="..."`). */
  const jobsOf = (expr: string) => [...expr.matchAll(/\bjob="([^"]+)"/g)].map((m) => m[1]);
  /** A query on a service with no binary here (Alloy, Loki, Grafana) has no data to return. */
  const notRunnableHere = (expr: string) => jobsOf(expr).some((j) => NOT_RUNNABLE_JOBS.includes(j));
  const windowOf = (d: Dashboard) => {
    const m = /^now-(\w+)$/.exec(d.time.from);
    if (!m || d.time.to !== "now") throw new Error(`unexpected dashboard time range ${JSON.stringify(d.time)}`);
    const toMs = Date.now();
    return { fromMs: toMs - parseDuration(m[1]), toMs };
  };
  const resolve = (s: Stack, d: Dashboard): Promise<Map<string, ResolvedVariable>> => {
    const w = windowOf(d);
    return resolveVariables(d.templating.list, (label, match) =>
      s.prom.labelValues(label, match, Math.floor(w.fromMs / 1000), Math.ceil(w.toMs / 1000)),
    );
  };

  /** Waits until rate() over $__rate_interval has two samples of every runnable target. */
  async function waitForRateWindows(s: Stack): Promise<void> {
    const window = goDuration(rateInterval(s.scrapeIntervalMs, s.scrapeIntervalMs));
    const expr = `min(count_over_time(up{job=~"${RUNNABLE_JOBS.join("|")}"}[${window}]))`;
    await waitFor(`two samples within ${window}`, 60_000, async () => {
      const [r] = await s.prom.query(expr);
      return r && Number(r.value?.[1]) >= 2 ? true : undefined;
    });
  }

  /** Metric names in a query that Prometheus has no series of: the usual reason for no data. */
  async function missingMetrics(s: Stack, expr: string): Promise<string[]> {
    const names = [...new Set([...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map((m) => m[1]))];
    const missing: string[] = [];
    for (const n of names) if ((await s.prom.query(`count({__name__="${n}"})`)).length === 0) missing.push(n);
    return missing;
  }

  /**
   * Polls the given checks until each has data or the deadline passes; returns the failures.
   * Counters such as the 5xx series appear with their first increment, so a few need a moment.
   */
  async function untilData<T extends { label: string }>(
    items: readonly T[],
    run: (item: T) => Promise<{ ok: boolean; detail: string }>,
    deadline: number,
  ): Promise<string[]> {
    let pending = [...items];
    let details = new Map<string, string>();
    for (;;) {
      const results = await Promise.all(pending.map(async (i) => ({ i, r: await run(i) })));
      details = new Map(results.filter((x) => !x.r.ok).map((x) => [x.i.label, x.r.detail]));
      pending = results.filter((x) => !x.r.ok).map((x) => x.i);
      if (pending.length === 0 || Date.now() > deadline) break;
      await sleep(3000);
    }
    return pending.map((i) => `${i.label}\n    ${details.get(i.label) ?? ""}`);
  }

  it(
    "every PromQL query of every dashboard panel returns data, for All and for each single host",
    check(async (t, s) => {
      await waitForRateWindows(s);
      interface Item {
        readonly label: string;
        readonly q: PanelQuery;
        readonly d: Dashboard;
        readonly resolved: Map<string, ResolvedVariable>;
        readonly scenario: ReturnType<typeof scenarios>[number];
      }
      const items: Item[] = [];
      for (const d of dashboards(s)) {
        const resolved = await resolve(s, d);
        const all = panelQueries(d).filter((q) => q.dialect === "prometheus");
        const queries = all.filter((q) => !notRunnableHere(q.expr));
        for (const q of all.filter((x) => notRunnableHere(x.expr))) {
          t.diagnostic(`${d.uid} / "${q.panelTitle}": reads ${jobsOf(q.expr).join(", ")}, not runnable here`);
        }
        for (const scenario of scenarios(resolved, "instance")) {
          for (const q of queries) {
            items.push({
              label: `${d.uid} / "${q.panelTitle}" ${q.refId} [${scenario.name}]`,
              q,
              d,
              resolved,
              scenario,
            });
          }
        }
      }
      assert.ok(items.length > 0, "the dashboards have no Prometheus queries");
      const failures = await untilData(
        items,
        async ({ q, d, resolved, scenario }) => {
          const w = windowOf(d);
          const e = expandQuery(q, resolved, scenario.selection, w, s.scrapeIntervalMs);
          const stepS = e.intervalMs / 1000;
          // Grafana aligns the range to the step.
          const start = Math.floor(w.fromMs / 1000 / stepS) * stepS;
          const end = Math.floor(w.toMs / 1000 / stepS) * stepS;
          const result = await s.prom.queryRange(e.expr, start, end, stepS);
          if (hasSamples(result)) return { ok: true, detail: "" };
          const missing = await missingMetrics(s, e.expr);
          return {
            ok: false,
            detail: `no data from: ${e.expr}${missing.length ? `\n    metrics with no series at all: ${missing.join(", ")}` : ""}`,
          };
        },
        Date.now() + 45_000,
      );
      t.diagnostic(`${items.length} panel queries checked`);
      assert.deepEqual(
        failures,
        [],
        `dashboard queries without data for a variable value the dashboard itself offers (a template bug):\n${failures.join("\n")}`,
      );
    }),
  );

  const alerts = (s: Stack): AlertDefinition[] => alertDefinitions(s.ctx.config);
  /** The rules this Prometheus can evaluate: PromQL (LogQL rules run on Loki, through Grafana). */
  const promqlAlerts = (s: Stack): AlertDefinition[] => alerts(s).filter((a) => a.datasource === "prometheus");
  const comparison = (a: AlertDefinition, threshold = a.threshold) => `(${a.expr}) ${a.op} ${threshold}`;
  const alertByName = (s: Stack, name: string): AlertDefinition => {
    const a = alerts(s).find((x) => x.name === name);
    if (!a) throw new Error(`no alert named ${name}`);
    return a;
  };

  it(
    "every alert expression returns data",
    check(async (t, s) => {
      const skipped = (a: AlertDefinition) =>
        a.datasource !== "prometheus"
          ? "LogQL, checked by the grammar and against the app's log files"
          : a.expectedSeries
            ? "an absence rule: no data while every host runs (the stopped-host check proves it)"
            : notRunnableHere(a.expr)
              ? `reads ${jobsOf(a.expr).join(", ")}, not runnable here`
              : undefined;
      for (const a of alerts(s)) {
        const why = skipped(a);
        if (why) t.diagnostic(`${a.name}: ${why}`);
      }
      const items = alerts(s)
        .filter((a) => skipped(a) === undefined)
        .map((a) => ({ label: `${a.name}: ${a.expr}`, a }));
      const failures = await untilData(
        items,
        async ({ a }) =>
          hasSamples(await s.prom.query(a.expr))
            ? { ok: true, detail: "" }
            : { ok: false, detail: `missing metrics: ${(await missingMetrics(s, a.expr)).join(", ") || "none"}` },
        Date.now() + 30_000,
      );
      assert.deepEqual(failures, [], `alert expressions without data:\n${failures.join("\n")}`);
    }),
  );

  /** How far the kernel's figure and the alert's may differ, in percentage points. */
  const TOLERANCE = 5;

  /**
   * What the machine itself says for the alerts on shared resources (CPU, memory, root disk),
   * for the same instant and window as the alert's value.
   */
  interface Truth {
    /** What the machine really is at. */
    readonly steady: number;
    /** What the alert's expression must read, given the data Prometheus has. */
    readonly expected: number;
    readonly note?: string;
  }

  async function groundTruth(s: Stack, a: AlertDefinition, atS: number): Promise<Truth | undefined> {
    switch (a.name) {
      case "RootDiskAlmostFull": {
        const v = rootDiskPercent();
        return { steady: v, expected: v };
      }
      case "HighMemoryUsage": {
        const v = memoryPercent();
        return { steady: v, expected: v };
      }
      case "HighCpuUsage": {
        // The samples rate(...[5m]) uses at this instant.
        const window = /\[(\w+)\]/.exec(a.expr)?.[1];
        if (!window) throw new Error(`no range in ${a.expr}`);
        const [raw] = await s.prom.samples(`node_cpu_seconds_total{mode="idle", cpu="0", job="node"}[${window}]`, atS);
        const times = (raw?.values ?? []).map(([t]) => t);
        if (times.length < 2) throw new Error(`fewer than two CPU samples in ${window}`);
        const v = cpuAlertValues(cpu, {
          firstS: Math.min(...times),
          lastS: Math.max(...times),
          count: times.length,
          atS,
          windowS: parseDuration(window) / 1000,
        });
        return {
          steady: v.steady,
          expected: v.asPromql,
          ...(v.windowFull
            ? {}
            : {
                note: `only ${(Math.max(...times) - Math.min(...times)).toFixed(0)} s of samples in its ${window} window: rate() divides by the whole window, so it reads ${v.asPromql.toFixed(1)} while the machine is at ${v.steady.toFixed(1)} (in production the first ${window} after a start reads high; for: ${a.for} covers it)`,
              }),
        };
      }
      default:
        return undefined;
    }
  }

  it(
    "every alert is quiet in the normal state (only what is really true on this machine fires)",
    check(async (t, s) => {
      const problems: string[] = [];
      const atS = Date.now() / 1000;
      for (const a of promqlAlerts(s)) {
        const result = await s.prom.query(comparison(a), atS);
        const describe = (r: Series) => `${a.name}: ${comparison(a)} → ${JSON.stringify(r.metric)} = ${r.value?.[1]}`;
        if (a.name === "TargetDown") {
          // True for the jobs that have no binary on this machine, and for nothing else.
          problems.push(...result.filter((r) => !NOT_RUNNABLE_JOBS.includes(r.metric.job)).map(describe));
          t.diagnostic(
            `TargetDown true only for jobs not runnable here: ${[...new Set(result.map((r) => r.metric.job))].join(", ")}`,
          );
          continue;
        }
        if (a.name === "ClockNotSynchronising" || a.name === "ClockSkewDetected") {
          // Every host shares this machine's clock: the rule must say what the kernel says.
          const clock = kernelClock();
          const unsynced = !clock.synchronised && clock.maxErrorSeconds >= 16;
          const truthy =
            a.name === "ClockNotSynchronising"
              ? unsynced
              : // The skew rule also needs the offset's trend; judge only a clear offset.
                Math.abs(clock.offsetSeconds) > 2 * a.threshold
                ? undefined
                : Math.abs(clock.offsetSeconds) < a.threshold / 2
                  ? false
                  : undefined;
          if (truthy === false) problems.push(...result.map(describe));
          if (truthy === true && result.length !== s.instances.length)
            problems.push(`${a.name} should be true for every host: the kernel reports it`);
          t.diagnostic(
            `${a.name}: kernel ${clock.synchronised ? "synchronised" : "unsynchronised"}, maximum error ${clock.maxErrorSeconds} s, offset ${clock.offsetSeconds} s: ${result.length} host(s) firing`,
          );
          continue;
        }
        const truth = await groundTruth(s, a, atS);
        if (truth === undefined) {
          // The app's own alerts: its traffic is ours, so they must be quiet.
          problems.push(...result.map(describe));
          continue;
        }
        // Every host shares this machine: the alert must read what the kernel's figures give.
        for (const r of await s.prom.query(a.expr, atS)) {
          const value = Number(r.value?.[1]);
          if (Math.abs(value - truth.expected) > TOLERANCE) {
            problems.push(
              `${a.name} reads ${value.toFixed(1)} on ${r.metric.instance}, the kernel's figures give ${truth.expected.toFixed(1)}`,
            );
          }
        }
        if (truth.note) t.diagnostic(`${a.name}: ${truth.note}`);
        const fires = (v: number) => (a.op === ">" ? v > a.threshold : v < a.threshold);
        const clearly = (v: number, yes: boolean) =>
          yes
            ? fires(v + (a.op === ">" ? -TOLERANCE : TOLERANCE))
            : !fires(v + (a.op === ">" ? TOLERANCE : -TOLERANCE));
        if (clearly(truth.expected, false)) problems.push(...result.map(describe));
        if (clearly(truth.expected, true) && result.length !== s.instances.length) {
          problems.push(`${a.name} should be true for every host at ${truth.expected.toFixed(1)}`);
        }
        if (fires(truth.steady)) {
          t.diagnostic(
            `${a.name}: this machine really is at ${truth.steady.toFixed(1)} (threshold ${a.threshold}): the alert rightly fires`,
          );
        }
      }
      assert.deepEqual(problems, [], "alerts that do not match the normal state");
    }),
  );

  it(
    "the root-disk alert fires for every host when its threshold is just under the current usage",
    check(async (_t, s) => {
      const a = alertByName(s, "RootDiskAlmostFull");
      const usage = await s.prom.query(a.expr);
      assert.ok(usage.length > 0, `no root-disk usage from ${a.expr}`);
      const lowest = Math.min(...usage.map((u) => Number(u.value?.[1])));
      const threshold = Math.max(0, Math.floor(lowest) - 1);
      const fired = await s.prom.query(comparison(a, threshold));
      const hosts = new Set(fired.map((r) => r.metric.instance));
      for (const i of s.instances) {
        assert.ok(
          hosts.has(i.tags.Name),
          `${comparison(a, threshold)} has no series for ${i.tags.Name} (usage ${lowest.toFixed(1)}%)`,
        );
      }
    }),
  );

  it(
    "the LogQL queries parse and use only labels the Alloy pipeline sets",
    check(async (t, s) => {
      const logKeys = new Set<string>();
      for (const h of s.webHosts) {
        for (const f of logFiles(h.logDir))
          for (const line of readLines(f)) for (const k of Object.keys(parseLogfmt(line))) logKeys.add(k);
      }
      const rules = {
        streamLabels: LOKI_LABELS,
        labelsByJob: { [TITAN_JOB]: TITAN_STREAM_LABELS, [JOURNAL_JOB]: JOURNAL_STREAM_LABELS },
        logfmtKeys: logKeys,
      };
      const problems: string[] = [];
      let count = 0;
      for (const d of dashboards(s)) {
        const queries = panelQueries(d).filter((q) => q.dialect === "loki");
        if (queries.length === 0) continue;
        const resolved = await resolve(s, d);
        for (const scenario of scenarios(resolved, "instance")) {
          for (const q of queries) {
            count += 1;
            const where = `${d.uid} / "${q.panelTitle}" ${q.refId} [${scenario.name}]`;
            try {
              const e = expandQuery(q, resolved, scenario.selection, windowOf(d), s.scrapeIntervalMs);
              const parsed = parseLogql(e.expr);
              for (const p of labelProblems(parsed, rules)) problems.push(`${where}: ${p}\n    ${e.expr}`);
              for (const m of parsed.labelMatchers) {
                if (
                  m.label === "level" &&
                  m.op === "=" &&
                  !(TITAN_LOG_RULES.levels as readonly string[]).includes(m.value)
                ) {
                  problems.push(`${where}: level="${m.value}" is not a level the app writes`);
                }
              }
            } catch (err) {
              problems.push(`${where}: ${(err as Error).message}`);
            }
          }
        }
      }
      assert.ok(count > 0, "no LogQL queries found in the dashboards");
      t.diagnostic(`${count} LogQL queries parsed`);
      // $instance comes from Prometheus' instance label and filters Loki's host label: they must agree.
      const plan = addressPlan(s.ctx.config.vpcCidr, s.ctx.config.webCount);
      const titanInstances = new Set((await s.prom.query('up{job="titan"}')).map((r) => r.metric.instance));
      for (const slot of plan.hosts.filter((h) => h.role === "web")) {
        const host = hostLabels(s.ctx, slot).host;
        if (!titanInstances.has(host))
          problems.push(`Alloy's host label ${host} is not a Prometheus instance of job titan`);
      }
      assert.deepEqual(problems, [], `LogQL problems:\n${problems.join("\n")}`);
    }),
  );

  it(
    "every line the app writes parses with the Alloy pipeline's rules, with bounded labels",
    check((_t, s) => {
      const env = unitEnvironment(webUnit("titan.service"));
      const glob = TITAN_LOG_RULES.pathGlob;
      assert.equal(env.TITAN_LOG_DIR, path.posix.dirname(glob), "the unit's log directory is not where Alloy reads");
      const plan = addressPlan(s.ctx.config.vpcCidr, s.ctx.config.webCount);
      const streams = new Set<string>();
      const levels = new Set<string>();
      for (const h of s.webHosts) {
        const slot = plan.hosts.find((x) => x.privateIp === h.ip);
        assert.ok(slot, `no address-plan slot for ${h.ip}`);
        const files = logFiles(h.logDir);
        assert.deepEqual(files.map((f) => path.basename(f)).sort(), ["access.log", "app.log", "error.log"]);
        for (const file of files) {
          const lines = readLines(file);
          assert.ok(lines.length > 0, `${file} is empty`);
          const filename = path.posix.join(path.posix.dirname(glob), path.basename(file));
          lines.forEach((line, n) => {
            const where = `${file}:${n + 1}: ${line}`;
            let labels: Record<string, string>;
            try {
              labels = titanLabels(line, filename, hostLabels(s.ctx, slot));
            } catch (err) {
              throw new Error(`${where}\n  does not parse: ${(err as Error).message}`);
            }
            const fields = parseLogfmt(line);
            assert.ok(
              (TITAN_LOG_RULES.levels as readonly string[]).includes(fields.level),
              `${where}\n  level not accepted`,
            );
            const ts = fields[TITAN_LOG_RULES.timestampField];
            assert.match(
              ts,
              /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
              `${where}\n  timestamp is not RFC 3339 UTC with ms`,
            );
            assert.ok(!Number.isNaN(Date.parse(ts)), `${where}\n  timestamp does not parse`);
            for (const f of TITAN_LOG_RULES.lineOnlyFields) {
              assert.ok(!(f in labels), `${where}\n  high-cardinality ${f} became a label`);
            }
            for (const k of Object.keys(labels))
              assert.ok((LOKI_LABELS as readonly string[]).includes(k), `${where}\n  label ${k} not in LOKI_LABELS`);
            streams.add(JSON.stringify(Object.entries(labels).sort()));
            levels.add(labels.level);
          });
        }
      }
      // One stream per file and level at most, per host: low cardinality.
      const bound = s.webHosts.length * 3 * TITAN_LOG_RULES.levels.length;
      assert.ok(streams.size <= bound, `${streams.size} streams from the app's logs, more than ${bound}`);
      assert.ok(levels.size <= TITAN_LOG_RULES.levels.length);
    }),
  );

  it(
    "hanging the app (alive, not answering: the hang demo's condition) makes AppNotAnswering's comparison true on every web host, and false once it answers again",
    check(async (t, s) => {
      const a = alertByName(s, "AppNotAnswering");
      assert.equal(a.remediation, "restart-app", "the alert names the agent's fix");
      const breaching = async () => new Set((await s.prom.query(comparison(a))).map((r) => r.metric.instance));
      assert.deepEqual([...(await breaching())], [], `${a.name} breaches while every app answers`);
      const want = s.webHosts.map((h) => h.name);
      // The next scrape comes within one interval; allow the scrape timeout on top.
      const limit = s.scrapeIntervalMs + 10_000 + 5_000;
      const hungAt = Date.now();
      // SIGSTOP to the group: gunicorn's master and workers stay alive (no Restart= would fire), nothing answers.
      for (const h of s.webHosts) s.procs.signalGroup(h.app, "SIGSTOP");
      try {
        await waitFor(`${comparison(a)} for ${want.join(", ")}`, limit, async () => {
          const hosts = await breaching();
          return want.every((w) => hosts.has(w)) ? true : undefined;
        });
        for (const h of s.webHosts) assert.ok(s.procs.running(h.app), `${h.app} exited: it was to hang, not die`);
        t.diagnostic(`${a.name}'s comparison true for every web host ${seconds(Date.now() - hungAt)} after the hang`);
      } finally {
        for (const h of s.webHosts) s.procs.signalGroup(h.app, "SIGCONT");
      }
      // Resumed: gunicorn may replace workers whose heartbeat went stale while stopped; then it answers.
      await waitFor(`${comparison(a)} false again`, limit + 30_000, async () =>
        (await breaching()).size === 0 ? true : undefined,
      );
      t.diagnostic(`${a.name}'s comparison false again ${seconds(Date.now() - hungAt)} after the hang began`);
    }),
  );

  it(
    'stopping the app makes TargetDown (up{job="titan"} < 1) true after the next scrape',
    check(async (t, s) => {
      const a = alertByName(s, "TargetDown");
      const stoppedAt = Date.now();
      for (const h of s.webHosts) {
        const cmdline = fs.readFileSync(`/proc/${s.procs.get(h.app).pid}/cmdline`, "utf8");
        assert.match(cmdline, /gunicorn/, `pid of ${h.app} is not gunicorn's master: ${cmdline}`);
        s.procs.signal(h.app, "SIGTERM");
      }
      await Promise.all(s.webHosts.map((h) => s.procs.get(h.app).exited));
      const want = new Set(s.webHosts.map((h) => h.name));
      // The next scrape comes within one interval; allow the scrape timeout on top.
      const limit = s.scrapeIntervalMs + 10_000 + 5_000;
      await waitFor(`${comparison(a)} to include job="titan" for every web host`, limit, async () => {
        const down = (await s.prom.query(comparison(a))).filter((r) => r.metric.job === "titan");
        const hosts = new Set(down.map((r) => r.metric.instance));
        return [...want].every((w) => hosts.has(w)) ? true : undefined;
      });
      t.diagnostic(`TargetDown true for titan ${seconds(Date.now() - stoppedAt)} after SIGTERM`);
    }),
  );

  it(
    "the log-based alert is quiet here: error lines per web host a minute, from the app's own files through Alloy's labels, stay under its threshold at production's traffic",
    check((t, s) => {
      const a = alertByName(s, "AppErrorLogLines");
      assert.equal(a.datasource, "loki");
      const plan = addressPlan(s.ctx.config.vpcCidr, s.ctx.config.webCount);
      const nowMs = Date.now();
      for (const h of s.webHosts) {
        const slot = plan.hosts.find((x) => x.privateIp === h.ip);
        assert.ok(slot, `no address-plan slot for ${h.ip}`);
        const host = hostLabels(s.ctx, slot);
        let errors = 0;
        let firstMs = nowMs;
        for (const file of logFiles(h.logDir)) {
          const filename = path.posix.join(path.posix.dirname(TITAN_LOG_RULES.pathGlob), path.basename(file));
          for (const line of readLines(file)) {
            const atMs = Date.parse(parseLogfmt(line)[TITAN_LOG_RULES.timestampField]);
            firstMs = Math.min(firstMs, atMs);
            if (atMs < nowMs - 60_000) continue;
            // The labels Alloy gives the line: the rule counts job="titan", level="error" per host.
            const labels = titanLabels(line, filename, host);
            if (labels.job === TITAN_JOB && labels.level === "error") errors += 1;
          }
        }
        const windowMs = Math.min(60_000, nowMs - firstMs);
        assert.ok(windowMs > 10_000, `${h.name} has logged for only ${seconds(windowMs)}`);
        const perMinute = (errors * 60_000) / windowMs;
        // This run sends E2E_TRAFFIC_RATE requests a second; production's generator TRAFFIC_RATE.
        const atProduction = (perMinute * TRAFFIC_RATE) / E2E_TRAFFIC_RATE;
        t.diagnostic(
          `${host.host}: ${perMinute.toFixed(1)} error lines a minute here, ${atProduction.toFixed(1)} at production's rate (threshold ${a.threshold})`,
        );
        assert.ok(
          !(atProduction > a.threshold),
          `${a.name} would fire on ${host.host} in normal operation: ${atProduction.toFixed(1)} > ${a.threshold}`,
        );
      }
    }),
  );

  /** Marks an instance's state in the fake EC2 API and waits until the helper has re-read it. */
  async function setInstanceState(s: Stack, instance: Ec2Instance, state: Ec2Instance["state"]): Promise<void> {
    const helper = s.procs.all().find((p) => cmdline(p.pid).some((arg) => arg.endsWith("nsHelper.js")));
    assert.ok(helper, "no nsHelper process");
    const args = cmdline(helper.pid);
    const configPath = args[args.length - 1];
    const config = JSON.parse(fs.readFileSync(configPath, "utf8")) as HelperConfig;
    assert.ok(
      config.instances.some((i) => i.instanceId === instance.instanceId),
      `${instance.instanceId} is not in the fake`,
    );
    const instances = config.instances.map((i) => (i.instanceId === instance.instanceId ? { ...i, state } : i));
    fs.writeFileSync(configPath, JSON.stringify({ ...config, instances }));
    const reloads = () =>
      fs
        .readFileSync(helper.logPath, "utf8")
        .split("\n")
        .filter((l) => l.startsWith('{"reloaded"'))
        .map((l) => (JSON.parse(l) as HelperReloaded).reloaded);
    const before = reloads().length;
    process.kill(helper.pid, "SIGHUP");
    await waitFor("the fake EC2 API to re-read its instances", 5_000, () =>
      Promise.resolve(reloads().length > before ? true : undefined),
    );
  }

  it(
    "a host stopped in EC2 raises HostMissing, which holds past its pending period, while TargetDown loses sight of it",
    { timeout: HOST_STOP_PROOF_MS + 30_000 },
    check(async (t, s) => {
      const a = alertByName(s, "HostMissing");
      const targetDown = alertByName(s, "TargetDown");
      const victim = s.instances.find((i) => tag(i, "Role") === "loki");
      assert.ok(victim, "no loki host");
      const name = tag(victim, "Name");
      assert.deepEqual(
        (a.expectedSeries ?? []).map((e) => e.instance).sort(),
        s.instances.map((i) => tag(i, "Name")).sort(),
        "HostMissing expects exactly the hosts the stack runs",
      );
      const missing = async (atS?: number) =>
        (await s.prom.query(comparison(a), atS)).map((r) => r.metric.instance ?? "").sort();
      assert.deepEqual(await missing(), [], `${a.name} breaches while every host runs`);

      // EC2 stops the instance: the API reports it stopped and everything on it ends.
      const stoppedAt = Date.now();
      await setInstanceState(s, victim, "stopped");
      const onHost = s.procs
        .all()
        .filter((p) => p.exit === undefined && cmdline(p.pid).some((arg) => arg.includes(`${victim.privateIp}:`)));
      assert.ok(onHost.length > 0, `no process serves on ${victim.privateIp}`);
      await Promise.all(onHost.map((p) => s.procs.stop(p.name)));

      // Discovery drops the host at its next refresh; its series go stale and HostMissing turns true.
      const refreshMs = nodeRefreshMs(s.prometheusConfig);
      await waitFor(`${a.name} true for ${name}`, refreshMs + s.scrapeIntervalMs + 15_000, async () =>
        (await missing()).includes(name) ? true : undefined,
      );
      const breachS = Math.ceil(Date.now() / 1000);
      t.diagnostic(`${a.name} true for ${name} ${seconds(breachS * 1000 - stoppedAt)} after the stop`);
      // The trap: once every job's discovery has refreshed (each on its own clock, so not
      // necessarily when the node job's did), no `up` series is left for the host, and
      // `up < 1` (TargetDown) has nothing left to fire on.
      await waitFor(
        `${targetDown.name} to lose sight of ${name} (every job's discovery refreshed)`,
        Math.max(5_000, stoppedAt + refreshMs + s.scrapeIntervalMs + 15_000 - Date.now()),
        async () =>
          (await s.prom.query(comparison(targetDown))).some((r) => r.metric.instance === name) ? undefined : true,
      );
      t.diagnostic(`${targetDown.name} lost sight of ${name} ${seconds(Date.now() - stoppedAt)} after the stop`);

      // Past the pending period: wait until Prometheus has scraped beyond it, then read every step back.
      const endS = breachS + parseDuration(a.for) / 1000 + 15;
      const stepS = s.scrapeIntervalMs / 1000;
      await waitFor(
        `Prometheus to scrape past ${a.name}'s pending period (${a.for})`,
        HOST_STOP_PROOF_MS,
        async () => {
          const [self] = await s.prom.query('timestamp(up{job="prometheus"})');
          return self && Number(self.value?.[1]) > endS ? true : undefined;
        },
        2_000,
      );
      const series = await s.prom.queryRange(comparison(a), breachS, endS, stepS);
      const steps = Math.floor((endS - breachS) / stepS) + 1;
      assert.deepEqual(
        series.map((r) => r.metric.instance),
        [name],
        `${a.name} between the breach and ${a.for} later named ${JSON.stringify(series.map((r) => r.metric))}`,
      );
      assert.equal(series[0].values?.length, steps, `${a.name} was not true at every step of its pending period`);
      t.diagnostic(`${a.name} held for ${name} over ${steps} steps, ${a.for} and 15 s past the breach`);
    }),
  );
});

/** A process' command line (argv), from /proc. */
function cmdline(pid: number): string[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/cmdline`, "utf8")
      .split("\0")
      .filter((a) => a !== "");
  } catch {
    return [];
  }
}

function logFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".log"))
    .map((f) => path.join(dir, f));
}

function readLines(file: string): string[] {
  // The last line may be mid-write; whole lines end in a newline.
  const text = fs.readFileSync(file, "utf8");
  return text
    .slice(0, text.lastIndexOf("\n") + 1)
    .split("\n")
    .filter((l) => l !== "");
}
