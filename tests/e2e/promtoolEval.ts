/**
 * Evaluates PromQL against seeded series with the real Prometheus engine, through
 * `promtool test rules` (Debian's prometheus package) and its promql_expr_test cases: no server,
 * no root. Each case states the exact series (labels and values) the expression must return.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { toYaml } from "../../templates/yaml";

export interface ExpectedSample {
  /** Prometheus label set, `{instance="web-1"}`, or `{}` for none. */
  readonly labels: string;
  readonly value: number;
}

export interface ExprCase {
  readonly expr: string;
  /** Offset from the first input sample, e.g. "10m". */
  readonly evalTime: string;
  readonly expSamples: readonly ExpectedSample[];
}

export interface SeededScenario {
  readonly name: string;
  /** Step between the input values, e.g. "15s" (the scrape interval). */
  readonly interval: string;
  /** promtool's expanding notation: `series` with `values` like "0+4x60". */
  readonly inputSeries: readonly { readonly series: string; readonly values: string }[];
  readonly cases: readonly ExprCase[];
}

export interface PromtoolResult {
  readonly ok: boolean;
  /** promtool's report: each failed expression with what it expected and what it got. */
  readonly output: string;
}

export function evaluateWithPromtool(scenarios: readonly SeededScenario[]): PromtoolResult {
  if (scenarios.length === 0) throw new Error("evaluateWithPromtool: no scenario given");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "titan-promql-eval-"));
  try {
    const file = path.join(dir, "tests.yml");
    fs.writeFileSync(
      file,
      toYaml({
        rule_files: [],
        evaluation_interval: "1m",
        tests: scenarios.map((s) => ({
          name: s.name,
          interval: s.interval,
          input_series: s.inputSeries,
          promql_expr_test: s.cases.map((c) => ({
            expr: c.expr,
            eval_time: c.evalTime,
            exp_samples: c.expSamples.map((e) => ({ labels: e.labels, value: e.value })),
          })),
        })),
      }),
    );
    const r = spawnSync("promtool", ["test", "rules", file], { encoding: "utf8" });
    if (r.error) throw new Error(`promtool could not run (Debian package prometheus): ${r.error.message}`);
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
