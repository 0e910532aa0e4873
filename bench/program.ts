/**
 * Benchmark: evaluating the whole program under mocks for webCount 1, 4 and 10, each in a
 * fresh process (median of RUNS), reporting wall time, peak memory and resources declared.
 * Target: the cost grows no worse than linearly with the number of hosts: time, memory and
 * resources per host do not rise as web hosts are added. Then both metrics stores at the
 * largest webCount: what metricsStore=amp adds (the workspace, Grafana's profile) is constant.
 */
import { MAX_WEB_HOSTS } from "../facts/addressing";
import { METRICS_STORES, type MetricsStore } from "../facts/metricsStore";
import { snapshot, type TimedSnapshot } from "../tests/support/snapshots";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const COUNTS = [1, 4, MAX_WEB_HOSTS];

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

interface Row {
  webCount: number;
  hosts: number;
  resources: number;
  wallMs: number;
  programMs: number;
  peakRssMb: number;
}

async function measure(webCount: number, metricsStore: MetricsStore = "local"): Promise<Row> {
  const wall: number[] = [];
  const program: number[] = [];
  const rss: number[] = [];
  let last: TimedSnapshot | undefined;
  for (let i = 0; i < RUNS; i++) {
    const started = process.hrtime.bigint();
    last = await snapshot({ webCount: String(webCount), metricsStore });
    wall.push(Number(process.hrtime.bigint() - started) / 1e6);
    program.push(last.elapsedMs);
    rss.push(last.peakRssKb / 1024);
    if (last.error) throw new Error(last.error);
  }
  return {
    webCount,
    hosts: webCount + 3,
    resources: last?.resources.length ?? 0,
    wallMs: median(wall),
    programMs: median(program),
    peakRssMb: median(rss),
  };
}

async function main(): Promise<void> {
  await snapshot(); // warm the file cache so the first row is not penalised
  const rows: Row[] = [];
  for (const count of COUNTS) rows.push(await measure(count));

  console.log(`\nProgram evaluation under mocks (median of ${RUNS} runs, one process each)\n`);
  console.log("| webCount | hosts | resources | process wall ms | program ms | peak RSS MiB |");
  console.log("|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    console.log(
      `| ${r.webCount} | ${r.hosts} | ${r.resources} | ${r.wallMs.toFixed(0)} | ${r.programMs.toFixed(0)} | ${r.peakRssMb.toFixed(1)} |`,
    );
  }

  // Linear or better: the cost per host must not rise as hosts are added (10% for noise).
  const metrics = [
    ["resources", (r: Row) => r.resources],
    ["program ms", (r: Row) => r.programMs],
    ["peak RSS MiB", (r: Row) => r.peakRssMb],
  ] as const;
  let ok = true;
  console.log(`\n| per host | ${rows.map((r) => `${r.hosts} hosts`).join(" | ")} | linear or better? |`);
  console.log(`|---|${rows.map(() => "---:").join("|")}|---|`);
  for (const [what, value] of metrics) {
    const perHost = rows.map((r) => value(r) / r.hosts);
    const linear = perHost.every((v, i) => i === 0 || v <= perHost[i - 1] * 1.1);
    ok &&= linear;
    console.log(`| ${what} | ${perHost.map((v) => v.toFixed(2)).join(" | ")} | ${linear ? "yes" : "NO"} |`);
  }
  const marginal = (a: Row, b: Row) => ((b.programMs - a.programMs) / (b.hosts - a.hosts)).toFixed(1);
  console.log(
    `\nMarginal program time per added web host: ${marginal(rows[0], rows[1])} ms (1→4), ${marginal(rows[1], rows[2])} ms (4→10).`,
  );
  console.log(
    ok ? "\nTarget met: cost grows linearly (or better) with hosts." : "\nTarget MISSED: superlinear growth.",
  );

  // Both stores at the largest webCount: local is the last row above, measured again beside amp.
  console.log(`\nBoth metrics stores at webCount ${MAX_WEB_HOSTS} (median of ${RUNS} runs, one process each)\n`);
  console.log("| metricsStore | resources | process wall ms | program ms | peak RSS MiB |");
  console.log("|---|---:|---:|---:|---:|");
  for (const store of METRICS_STORES) {
    const r = store === "local" ? rows[rows.length - 1] : await measure(MAX_WEB_HOSTS, store);
    console.log(
      `| ${store} | ${r.resources} | ${r.wallMs.toFixed(0)} | ${r.programMs.toFixed(0)} | ${r.peakRssMb.toFixed(1)} |`,
    );
  }
  if (!ok) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
