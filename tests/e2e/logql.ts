/**
 * LogQL checked with Grafana's own grammar, @grafana/lezer-logql (the Lezer LR parser behind
 * Grafana's Loki query editor), and the label contract on top of its parse tree: a query may only
 * select, filter and group by labels the Alloy pipeline really sets (or `| logfmt` extracts).
 *
 * The grammar accepts a few things Loki's own Go parser then refuses; those are checked here
 * after the tree is built, each from Loki's source (grafana/loki):
 * - string literals: pkg/logql/syntax/lex.go unquotes every "..." and `...` token with
 *   Prometheus' util/strutil.Unquote (Go escape rules: \a \b \f \n \r \t \v \\ \" \xHH \uHHHH
 *   \UHHHHHHHH \ooo; anything else, a raw newline, is a syntax error);
 * - pkg/logql/syntax/parser.go validateMatchers with pkg/util/matchers.go: a stream selector needs
 *   a matcher that does not match the empty string;
 * - pkg/logql/syntax/ast.go RangeAggregationExpr.validate: which range functions need `| unwrap`
 *   and which refuse it.
 *
 * The package ships CommonJS (package.json "exports".require = index.cjs), so the compiled tests
 * load it with a plain require; its `engines` asks for Node 24 because of its own build tooling,
 * the published index.cjs runs on Node 20.
 */
import { parser } from "@grafana/lezer-logql";
import {
  JOURNAL_JOB,
  JOURNAL_STREAM_LABELS,
  LOKI_LABELS,
  TITAN_JOB,
  TITAN_LOG_RULES,
  TITAN_STREAM_LABELS,
} from "../../templates/alloy/config";

type Node = ReturnType<typeof parser.parse>["topNode"];

export type MatchOp = "=" | "!=" | "=~" | "!~";
export type LineOp = "|=" | "!=" | "|~" | "!~";

export interface Matcher {
  readonly label: string;
  readonly op: MatchOp;
  /** The value after unquoting, as Loki sees it. */
  readonly value: string;
}

export type Stage =
  | { readonly kind: "line"; readonly op: LineOp; readonly values: readonly string[] }
  | { readonly kind: "parser"; readonly parser: string }
  | { readonly kind: "label"; readonly labels: readonly string[] }
  | { readonly kind: "unwrap"; readonly label: string }
  | { readonly kind: "other"; readonly name: string };

/** One stream selector and the pipeline applied to its lines. */
export interface LogSelection {
  readonly selector: readonly Matcher[];
  readonly stages: readonly Stage[];
}

/** by/without of an aggregation, or on/ignoring of a binary operation, over the logs below it. */
export interface Grouping {
  readonly labels: readonly string[];
  readonly logs: readonly LogSelection[];
}

export interface ParsedLogql {
  readonly query: string;
  readonly logs: readonly LogSelection[];
  readonly groupings: readonly Grouping[];
  /** Every stream-selector matcher of the query. */
  readonly labelMatchers: readonly Matcher[];
}

export class LogqlError extends Error {}

// ---------------------------------------------------------------------------------------
// Tree helpers

const text = (src: string, n: Node): string => src.slice(n.from, n.to);

function children(n: Node): Node[] {
  const out: Node[] = [];
  for (let c = n.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
}

/** Descendants named `name` in document order, not looking inside a match. */
function find(n: Node, name: string | readonly string[]): Node[] {
  const names = typeof name === "string" ? [name] : name;
  const out: Node[] = [];
  const walk = (x: Node) => {
    for (const c of children(x)) {
      if (names.includes(c.name)) out.push(c);
      else walk(c);
    }
  };
  walk(n);
  return out;
}

const child = (n: Node, name: string): Node | undefined => children(n).find((c) => c.name === name);

// ---------------------------------------------------------------------------------------
// What Loki's Go parser adds to the grammar

const SIMPLE_ESCAPES = new Set(["a", "b", "f", "n", "r", "t", "v", "\\"]);

/** Prometheus util/strutil.Unquote's rules (used by Loki's lexer), as facts: value or error. */
export function unquote(literal: string): { value: string } | { error: string } {
  const quote = literal[0];
  if (literal.length < 2 || literal[literal.length - 1] !== quote) return { error: "unterminated string" };
  const body = literal.slice(1, -1);
  if (quote === "`") return body.includes("`") ? { error: "backtick inside a raw string" } : { value: body };
  if (quote !== '"' && quote !== "'") return { error: "not a string" };
  if (body.includes("\n")) return { error: "newline inside a quoted string" };
  let out = "";
  for (let i = 0; i < body.length;) {
    const c = body[i];
    if (c === quote) return { error: `unescaped ${quote} inside the string` };
    if (c !== "\\") {
      out += c;
      i += 1;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return { error: "string ends in a backslash" };
    if (SIMPLE_ESCAPES.has(e)) {
      out += JSON.parse(`"\\${e === "a" ? "u0007" : e === "v" ? "u000b" : e}"`) as string;
      i += 2;
    } else if (e === '"' || e === "'") {
      if (e !== quote) return { error: `escape \\${e} is only valid inside ${e}...${e}` };
      out += e;
      i += 2;
    } else if (e === "x" || e === "u" || e === "U") {
      const n = e === "x" ? 2 : e === "u" ? 4 : 8;
      const hex = body.slice(i + 2, i + 2 + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) return { error: `bad escape \\${e}${hex}` };
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff) return { error: `escape \\${e}${hex} is past the last code point` };
      out += String.fromCodePoint(cp);
      i += 2 + n;
    } else if (/[0-7]/.test(e)) {
      const oct = body.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct) || parseInt(oct, 8) > 255) return { error: `bad octal escape \\${oct}` };
      out += String.fromCharCode(parseInt(oct, 8));
      i += 4;
    } else {
      return { error: `unknown escape \\${e}` };
    }
  }
  return { value: out };
}

/**
 * A regular expression as Loki (Go RE2) reads it, compiled with JavaScript's engine: a leading RE2
 * flag group becomes JS flags, and the JS-only constructs RE2 refuses are named. Label matchers
 * are anchored (Prometheus labels.Matcher), line filters are not.
 */
export function compileRegex(re: string, anchored: boolean): RegExp | string {
  if (/\(\?<?[=!]/.test(re)) return "lookaround is not RE2 syntax";
  if (/\\[1-9]/.test(re)) return "backreferences are not RE2 syntax";
  const flags = /^\(\?([imsU]+)\)/.exec(re);
  const body = flags ? re.slice(flags[0].length) : re;
  // RE2's U (ungreedy) has no JS twin; it changes matching, not validity.
  const jsFlags = flags ? [...new Set(flags[1].replace(/U/g, ""))].join("") : "";
  try {
    return new RegExp(anchored ? `^(?:${body})$` : body, jsFlags);
  } catch (err) {
    return (err as Error).message;
  }
}

/** Whether a matcher accepts a stream without the label (Loki pkg/util/matchers.go). */
function matchesEmpty(m: Matcher): boolean {
  switch (m.op) {
    case "=":
      return m.value === "";
    case "!=":
      return m.value !== "";
    case "=~":
    case "!~": {
      const re = compileRegex(m.value, true);
      // An invalid regex is reported on its own; it does not also count as matching everything.
      if (typeof re === "string") return false;
      return re.test("") === (m.op === "=~");
    }
  }
}

/** Range functions valid without `| unwrap`, and with it (Loki ast.go RangeAggregationExpr.validate). */
const RANGE_WITHOUT_UNWRAP = ["count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time"];
const RANGE_WITH_UNWRAP = [
  "rate",
  "rate_counter",
  "absent_over_time",
  "avg_over_time",
  "sum_over_time",
  "min_over_time",
  "max_over_time",
  "stddev_over_time",
  "stdvar_over_time",
  "quantile_over_time",
  "first_over_time",
  "last_over_time",
];

// ---------------------------------------------------------------------------------------
// From tree to model

class Reader {
  readonly errors: string[] = [];
  constructor(readonly src: string) {}

  private at(n: Node): string {
    return `at ${n.from} (${JSON.stringify(this.src.slice(Math.max(0, n.from - 10), n.to + 10))})`;
  }

  string(n: Node, where: string): string {
    const r = unquote(text(this.src, n));
    if ("error" in r) {
      this.errors.push(`${where}: ${r.error} in ${text(this.src, n)} ${this.at(n)}`);
      return "";
    }
    return r.value;
  }

  regex(value: string, anchored: boolean, where: string, n: Node): void {
    const p = compileRegex(value, anchored);
    if (typeof p === "string")
      this.errors.push(`${where}: invalid regular expression ${JSON.stringify(value)} (${p}) ${this.at(n)}`);
  }

  matcher(n: Node, where: string): Matcher | undefined {
    const [label, op, value] = children(n);
    if (!label || !op || !value || value.name !== "String") return undefined;
    const m: Matcher = {
      label: text(this.src, label),
      op: text(this.src, op) as MatchOp,
      value: this.string(value, `${where} ${text(this.src, label)}${text(this.src, op)}`),
    };
    if (m.op === "=~" || m.op === "!~") this.regex(m.value, true, `${where} ${m.label}${m.op}`, value);
    return m;
  }

  selector(n: Node): Matcher[] {
    const matchers = find(n, "Matcher")
      .map((m) => this.matcher(m, "selector"))
      .filter((m): m is Matcher => m !== undefined);
    if (matchers.length > 0 && matchers.every(matchesEmpty)) {
      this.errors.push(
        `stream selector ${text(this.src, n)}: needs a matcher that does not match the empty string (Loki refuses it)`,
      );
    }
    return matchers;
  }

  stage(n: Node): Stage {
    const body = children(n).find((c) => c.name !== "Pipe");
    if (!body) return { kind: "other", name: "empty" };
    if (body.name === "LabelFilter") {
      const labels: string[] = [];
      for (const f of find(body, ["Matcher", "NumberFilter", "DurationFilter", "BytesFilter", "IpLabelFilter"])) {
        const id = child(f, "Identifier");
        if (id) labels.push(text(this.src, id));
        if (f.name === "Matcher") this.matcher(f, "label filter");
        else for (const s of find(f, "String")) this.string(s, "label filter");
      }
      return { kind: "label", labels };
    }
    for (const s of find(body, "String")) this.string(s, body.name);
    switch (body.name) {
      case "LogfmtParser":
      case "LogfmtExpressionParser":
        return { kind: "parser", parser: "logfmt" };
      case "JsonExpressionParser":
        return { kind: "parser", parser: "json" };
      case "LabelParser":
        // json, regexp "...", pattern "...", unpack: the keyword comes first.
        return { kind: "parser", parser: text(this.src, body).split(/\s/)[0] };
      default:
        return { kind: "other", name: body.name };
    }
  }

  /** One line filter: `|= "a"`, or `|= "a" or "b"` (any of them). */
  private lineFilter(f: Node): Stage {
    const filter = child(f, "Filter");
    const op = (filter ? text(this.src, filter) : "|=") as LineOp;
    const values = find(f, "String").map((s) => {
      const v = this.string(s, `line filter ${op}`);
      if (op === "|~" || op === "!~") this.regex(v, false, `line filter ${op}`, s);
      return v;
    });
    return { kind: "line", op, values };
  }

  /** All pipeline stages of a log or log-range expression, in order. */
  stages(n: Node): Stage[] {
    const out: Stage[] = [];
    for (const s of find(n, ["PipelineStage", "UnwrapExpr"])) {
      if (s.name === "UnwrapExpr") {
        const id = child(s, "Identifier");
        out.push({ kind: "unwrap", label: id ? text(this.src, id) : "" });
        continue;
      }
      // Chained line filters share one stage node; each becomes its own stage.
      const lf = child(s, "LineFilters");
      if (lf) {
        for (const f of find(lf, "LineFilter")) out.push(this.lineFilter(f));
        continue;
      }
      out.push(this.stage(s));
    }
    return out;
  }

  log(n: Node): LogSelection {
    const sel = child(n, "Selector");
    return { selector: sel ? this.selector(sel) : [], stages: this.stages(n) };
  }
}

function readTree(src: string): { parsed: ParsedLogql; errors: string[] } {
  const tree = parser.parse(src);
  const r = new Reader(src);
  tree.iterate({
    enter: (ref) => {
      if (!ref.type.isError) return;
      const near = src.slice(Math.max(0, ref.from - 15), ref.to + 15);
      r.errors.push(
        `syntax error at ${ref.from}${ref.to > ref.from ? `, unexpected ${JSON.stringify(src.slice(ref.from, ref.to))}` : ""} near ${JSON.stringify(near)}`,
      );
    },
  });
  const top = tree.topNode;
  const logNodes = find(top, ["LogExpr", "LogRangeExpr"]);
  // Lezer hands out fresh node objects on every walk: a node is known by its span.
  const span = (n: Node) => `${n.from}:${n.to}`;
  const logByNode = new Map<string, LogSelection>();
  for (const n of logNodes) logByNode.set(span(n), r.log(n));
  const logsUnder = (n: Node) =>
    find(n, ["LogExpr", "LogRangeExpr"])
      .map((l) => logByNode.get(span(l)))
      .filter((l): l is LogSelection => l !== undefined);

  for (const agg of find(top, "RangeAggregationExpr")) {
    const op = child(agg, "RangeOp");
    const range = child(agg, "LogRangeExpr");
    if (!op || !range) continue;
    const name = text(src, op);
    const unwrap = find(range, "UnwrapExpr").length > 0;
    if (unwrap && !RANGE_WITH_UNWRAP.includes(name)) r.errors.push(`${name} does not take | unwrap (Loki refuses it)`);
    if (!unwrap && !RANGE_WITHOUT_UNWRAP.includes(name))
      r.errors.push(`${name} needs | unwrap <label> (Loki refuses it)`);
  }

  const groupings: Grouping[] = [];
  // `find` stops at a match, so nested aggregations are reached through their parents' subtrees.
  const walk = (n: Node) => {
    for (const c of children(n)) {
      if (c.name === "Grouping" && n.name === "VectorAggregationExpr") {
        groupings.push({ labels: find(c, "Identifier").map((i) => text(src, i)), logs: logsUnder(n) });
      } else if (c.name === "BinOpModifier" && n.name === "BinOpExpr") {
        const labels = find(c, "LabelName").map((i) => text(src, i));
        if (labels.length > 0) groupings.push({ labels, logs: logsUnder(n) });
      }
      walk(c);
    }
  };
  walk(top);

  const logs = logNodes.map((n) => logByNode.get(span(n))).filter((l): l is LogSelection => l !== undefined);
  return {
    parsed: { query: src, logs, groupings, labelMatchers: logs.flatMap((l) => l.selector) },
    errors: r.errors,
  };
}

// ---------------------------------------------------------------------------------------
// The label contract

export interface LabelRules {
  /** Every label the pipeline can set on a stream. */
  readonly streamLabels: readonly string[];
  /** Labels of the streams of one job, when the selector pins job="...". */
  readonly labelsByJob?: Readonly<Record<string, readonly string[]>>;
  /** Labels `| logfmt` extracts (the keys the app writes). */
  readonly logfmtKeys?: ReadonlySet<string>;
}

/** The rules the Alloy pipeline defines: its stream labels per job and the app's logfmt keys. */
export function pipelineLabelRules(logfmtKeys?: Iterable<string>): LabelRules {
  return {
    streamLabels: LOKI_LABELS,
    labelsByJob: { [TITAN_JOB]: TITAN_STREAM_LABELS, [JOURNAL_JOB]: JOURNAL_STREAM_LABELS },
    logfmtKeys: new Set(logfmtKeys ?? [...TITAN_LOG_RULES.labelFields, ...TITAN_LOG_RULES.lineOnlyFields]),
  };
}

/** The labels available on one log selection's output: its stream's, plus what its parser extracts. */
function labelsOf(log: LogSelection, rules: LabelRules, problems: string[]): Set<string> {
  const job = log.selector.find((m) => m.label === "job" && m.op === "=")?.value;
  let stream: readonly string[] = rules.streamLabels;
  if (job !== undefined && rules.labelsByJob) {
    const byJob = rules.labelsByJob[job];
    if (!byJob)
      problems.push(`job="${job}" is not a job the pipeline sets (${Object.keys(rules.labelsByJob).join(", ")})`);
    else stream = byJob;
  }
  for (const m of log.selector) {
    if (!stream.includes(m.label)) problems.push(`selector label ${m.label} is not set on these streams`);
  }
  const available = new Set(stream);
  for (const s of log.stages) {
    switch (s.kind) {
      case "line":
        break;
      case "parser":
        if (s.parser !== "logfmt") problems.push(`parser ${s.parser}: the app's lines are logfmt`);
        else for (const k of rules.logfmtKeys ?? []) available.add(k);
        break;
      case "label":
        for (const l of s.labels)
          if (!available.has(l))
            problems.push(`label filter ${l} uses a label that is neither set nor extracted before it`);
        break;
      case "unwrap":
        if (!available.has(s.label)) problems.push(`unwrap ${s.label}: no such label at that point`);
        break;
      case "other":
        problems.push(`stage ${s.name}: the label check does not model it; extend tests/e2e/logql.ts first`);
        break;
    }
  }
  return available;
}

/** Problems with the labels a query uses; empty when every label exists where it is used. */
export function labelProblems(q: ParsedLogql, rules: LabelRules): string[] {
  const problems: string[] = [];
  const available = new Map<LogSelection, Set<string>>();
  for (const log of q.logs) available.set(log, labelsOf(log, rules, problems));
  for (const g of q.groupings) {
    for (const l of g.labels) {
      if (g.logs.some((log) => !available.get(log)?.has(l)))
        problems.push(`grouping by ${l}: no such label on these streams`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------
// Entry points

export interface LogqlCheck {
  /** Syntax errors (the grammar's error nodes), Loki's extra refusals and label-contract problems. */
  readonly errors: readonly string[];
  /** Every stream-selector matcher, values unquoted. */
  readonly labelMatchers: readonly Matcher[];
  readonly parsed: ParsedLogql;
}

/**
 * Everything wrong with one LogQL query: grammar, what Loki refuses beyond it, and (unless
 * `rules` is null) labels the Alloy pipeline never sets. No errors means it is fit to ship.
 */
export function checkLogQL(query: string, rules: LabelRules | null = pipelineLabelRules()): LogqlCheck {
  const { parsed, errors } = readTree(query);
  const all = [...errors];
  // Labels are only judged on a query that parsed: an error node's guesses would mislead.
  if (errors.length === 0 && rules) all.push(...labelProblems(parsed, rules));
  return { errors: all, labelMatchers: parsed.labelMatchers, parsed };
}

/** The parsed query, or a LogqlError listing every syntax problem. */
export function parseLogql(query: string): ParsedLogql {
  const { parsed, errors } = readTree(query);
  if (errors.length > 0) throw new LogqlError(`${errors.join("; ")} in ${query}`);
  return parsed;
}
