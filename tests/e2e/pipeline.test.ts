/**
 * Issue #5: the local end-to-end run. Unit tests prove what the program declares; this proves
 * that what the templates render works with the real binaries: Prometheus finds every host
 * through (fake) EC2 discovery with the rendered prometheus.yml, scrapes node_exporter and the
 * Titan app on the hosts' own addresses, every dashboard and alert query returns data, two alerts
 * fire when provoked, and the LogQL and log lines fit the Alloy pipeline. Needs root (a network
 * namespace); fails, never skips, without it.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { addressPlan } from "../../infra/addressing";
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
import type { Dashboard } from "../../templates/grafana/model";
import { labelProblems, parseLogql } from "./logql";
import { cpuAlertValues, CpuSampler, memoryPercent, rootDiskPercent } from "./machine";
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

/** The whole run, start to last check, must stay under this. */
const RUN_BUDGET_MS = 180_000;
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

  /** Dashboards, their variables resolved against the live Prometheus, for the last hour. */
  const dashboards = (s: Stack): Dashboard[] => [...buildDashboards(s.ctx.config).dashboards];
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
        const queries = panelQueries(d).filter((q) => q.dialect === "prometheus");
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
  const comparison = (a: AlertDefinition, threshold = a.threshold) => `(${a.expr}) ${a.op} ${threshold}`;
  const alertByName = (s: Stack, name: string): AlertDefinition => {
    const a = alerts(s).find((x) => x.name === name);
    if (!a) throw new Error(`no alert named ${name}`);
    return a;
  };

  it(
    "every alert expression returns data",
    check(async (_t, s) => {
      const items = alerts(s).map((a) => ({ label: `${a.name}: ${a.expr}`, a }));
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
      for (const a of alerts(s)) {
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

  it("the whole run stays under three minutes", () => {
    const elapsed = Date.now() - runStart;
    console.log(`e2e: time to green ${seconds(greenAt - runStart)}, checks done after ${seconds(elapsed)}`);
    assert.ok(elapsed < RUN_BUDGET_MS, `the run took ${seconds(elapsed)}, over ${seconds(RUN_BUDGET_MS)}`);
  });
});

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
