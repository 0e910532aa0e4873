/**
 * Benchmark: evaluating the whole program under mocks for webCount 1, 4 and 10, each in a
 * fresh process (median of RUNS), reporting wall time, peak memory and resources declared.
 * Target: the cost grows no worse than linearly with the number of hosts: time, memory and
 * resources per host do not rise as web hosts are added. Then both metrics stores at the
 * largest webCount: what metricsStore=amp adds (the workspace, Grafana's profile) is constant.
 *
 * A run writes what it measured to bench/program.json and the section of docs/testing.md
 * between BENCH_MARKERS from it (tests/readme.test.ts holds the page to the file, and the file's
 * resource counts to the program): the figures on that page are the run's, never pasted.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MAX_WEB_HOSTS } from "../facts/addressing";
import { METRICS_STORES, type MetricsStore } from "../facts/metricsStore";
import { projectRoot } from "../templates/projectFiles";
import { snapshot, type TimedSnapshot } from "../tests/support/snapshots";
import { markdownTable } from "../templates/markdownTable";

export const BENCH_COUNTS = [1, 4, MAX_WEB_HOSTS] as const;
export const BENCH_FILE = (root = projectRoot()) => path.join(root, "bench", "program.json");
export const BENCH_DOC = (root = projectRoot()) => path.join(root, "docs", "testing.md");
export const BENCH_MARKERS = ["<!-- bench-program:start -->", "<!-- bench-program:end -->"] as const;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

export interface BenchRow {
  readonly webCount: number;
  readonly metricsStore: MetricsStore;
  readonly hosts: number;
  readonly resources: number;
  readonly wallMs: number;
  readonly programMs: number;
  readonly peakRssMb: number;
}

/** bench/program.json. */
export interface ProgramBench {
  /** The run's date (YYYY-MM-DD). */
  readonly measured: string;
  readonly machine: { readonly cpus: number; readonly memoryGiB: number };
  /** Runs per configuration, each in its own process; every figure is their median. */
  readonly runs: number;
  /** metricsStore=local at each of BENCH_COUNTS. */
  readonly scaling: readonly BenchRow[];
  /** Each metrics store at MAX_WEB_HOSTS (local's is the scaling table's last row). */
  readonly stores: readonly BenchRow[];
}

async function measure(runs: number, webCount: number, metricsStore: MetricsStore): Promise<BenchRow> {
  const wall: number[] = [];
  const program: number[] = [];
  const rss: number[] = [];
  let last: TimedSnapshot | undefined;
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint();
    last = await snapshot({ webCount: String(webCount), metricsStore });
    wall.push(Number(process.hrtime.bigint() - started) / 1e6);
    program.push(last.elapsedMs);
    rss.push(last.peakRssKb / 1024);
    if (last.error) throw new Error(last.error);
  }
  return {
    webCount,
    metricsStore,
    hosts: webCount + 3,
    resources: last?.resources.length ?? 0,
    wallMs: Math.round(median(wall)),
    programMs: Math.round(median(program)),
    peakRssMb: Math.round(median(rss) * 10) / 10,
  };
}

/** The per-host figures the target is judged on. */
const PER_HOST = [
  ["resources", (r: BenchRow) => r.resources],
  ["program ms", (r: BenchRow) => r.programMs],
  ["peak RSS MiB", (r: BenchRow) => r.peakRssMb],
] as const;

/** Linear or better: a figure per host does not rise as hosts are added (10% for noise). */
export const linear = (rows: readonly BenchRow[], value: (r: BenchRow) => number): boolean => {
  const perHost = rows.map((r) => value(r) / r.hosts);
  return perHost.every((v, i) => i === 0 || v <= perHost[i - 1] * 1.1);
};

export const targetMet = (b: ProgramBench): boolean => PER_HOST.every(([, value]) => linear(b.scaling, value));

/** The section of docs/testing.md between BENCH_MARKERS. */
export function benchSection(b: ProgramBench): string {
  const s = b.scaling;
  const figures = (r: BenchRow) => [
    String(r.resources),
    r.wallMs.toFixed(0),
    r.programMs.toFixed(0),
    r.peakRssMb.toFixed(1),
  ];
  const marginal = (a: BenchRow, c: BenchRow) => ((c.programMs - a.programMs) / (c.hosts - a.hosts)).toFixed(1);
  const figureHeader = ["resources", "process wall ms", "program ms", "peak RSS MiB"];
  return [
    "",
    `Measured ${b.measured} by the program benchmark (\`bench/program.ts\`, run by \`npm run bench\`) on a ${b.machine.cpus}-core, ${b.machine.memoryGiB} GiB machine (median of ${b.runs} runs, one process each); written from \`bench/program.json\`, which that run wrote.`,
    "",
    ...markdownTable(
      ["webCount", "hosts", ...figureHeader],
      s.map((r) => [String(r.webCount), String(r.hosts), ...figures(r)]),
      [true, true, true, true, true, true],
    ),
    "",
    ...markdownTable(
      ["per host", ...s.map((r) => `${r.hosts} hosts`), "linear or better?"],
      PER_HOST.map(([what, value]) => [
        what,
        ...s.map((r) => (value(r) / r.hosts).toFixed(2)),
        linear(s, value) ? "yes" : "NO",
      ]),
      [false, ...s.map(() => true), false],
    ),
    "",
    `Marginal program time per added web host: ${s
      .slice(1)
      .map((r, i) => `${marginal(s[i], r)} ms (${s[i].webCount}→${r.webCount})`)
      .join(", ")}.`,
    "",
    targetMet(b) ? "Target met: cost grows linearly (or better) with hosts." : "Target MISSED: superlinear growth.",
    "",
    `Both metrics stores at webCount ${MAX_WEB_HOSTS} (local's row is the table's last above):`,
    "",
    ...markdownTable(
      ["metricsStore", ...figureHeader],
      b.stores.map((r) => [r.metricsStore, ...figures(r)]),
      [false, true, true, true, true],
    ),
    "",
  ].join("\n");
}

/** The document's text with the section between BENCH_MARKERS replaced. */
export function withBenchSection(doc: string, b: ProgramBench): string {
  const [start, end] = BENCH_MARKERS;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) throw new Error(`${BENCH_DOC()}: no ${start} ... ${end} section`);
  return `${doc.slice(0, i + start.length)}\n${benchSection(b)}\n${doc.slice(j)}`;
}

export const readBench = (file = BENCH_FILE()): ProgramBench =>
  JSON.parse(fs.readFileSync(file, "utf8")) as ProgramBench;

async function main(): Promise<void> {
  const runs = Number(process.env.BENCH_RUNS ?? 7);
  await snapshot(); // warm the file cache so the first row is not penalised
  const scaling: BenchRow[] = [];
  for (const count of BENCH_COUNTS) scaling.push(await measure(runs, count, "local"));
  const stores: BenchRow[] = [];
  for (const store of METRICS_STORES) {
    stores.push(store === "local" ? scaling[scaling.length - 1] : await measure(runs, MAX_WEB_HOSTS, store));
  }
  const bench: ProgramBench = {
    measured: new Date().toISOString().slice(0, 10),
    machine: { cpus: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30) },
    runs,
    scaling,
    stores,
  };
  fs.writeFileSync(BENCH_FILE(), `${JSON.stringify(bench, null, 2)}\n`);
  fs.writeFileSync(BENCH_DOC(), withBenchSection(fs.readFileSync(BENCH_DOC(), "utf8"), bench));
  process.stdout.write(`${benchSection(bench)}\nwrote ${BENCH_FILE()} and the benchmark section of ${BENCH_DOC()}\n`);
  if (!targetMet(bench)) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
