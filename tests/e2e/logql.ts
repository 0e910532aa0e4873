/**
 * A strict parser for the LogQL subset the dashboards use, and a check that a query only uses
 * labels the Alloy pipeline sets. There is no Loki binary here, so this is what stands between a
 * typo in a LogQL panel and an empty panel in production.
 *
 *   query    := metric | log
 *   metric   := agg [grouping] "(" metric ")" [grouping] | rangefn "(" log ")" | "(" metric ")"
 *   log      := selector [range] stage* [range]        (range only inside a range function)
 *   selector := "{" matcher ("," matcher)* "}"         matcher := label ("="|"!="|"=~"|"!~") string
 *   stage    := ("|="|"!="|"|~"|"!~") string | "|" "logfmt" | "|" label cmp (string|number)
 */

export type MatchOp = "=" | "!=" | "=~" | "!~";
export type LineOp = "|=" | "!=" | "|~" | "!~";
export type CmpOp = MatchOp | "==" | ">" | ">=" | "<" | "<=";

export interface Matcher {
  readonly label: string;
  readonly op: MatchOp;
  readonly value: string;
}

export type Stage =
  | { readonly kind: "line"; readonly op: LineOp; readonly value: string }
  | { readonly kind: "parser"; readonly parser: "logfmt" }
  | { readonly kind: "label"; readonly label: string; readonly op: CmpOp; readonly value: string | number };

export interface LogExpr {
  readonly kind: "log";
  readonly selector: readonly Matcher[];
  readonly stages: readonly Stage[];
  readonly rangeMs?: number;
}

export interface Grouping {
  readonly without: boolean;
  readonly labels: readonly string[];
}

export type MetricExpr =
  | { readonly kind: "range"; readonly fn: RangeFn; readonly inner: LogExpr; readonly rangeMs: number }
  | { readonly kind: "agg"; readonly op: AggOp; readonly grouping?: Grouping; readonly inner: MetricExpr };

export type Query = LogExpr | MetricExpr;

const RANGE_FNS = ["count_over_time", "rate", "bytes_over_time", "bytes_rate"] as const;
type RangeFn = (typeof RANGE_FNS)[number];
const AGG_OPS = ["sum", "avg", "min", "max", "count"] as const;
type AggOp = (typeof AGG_OPS)[number];
const PARSERS = ["logfmt"] as const;

export class LogqlError extends Error {}

type Token =
  | { readonly t: "str"; readonly v: string; readonly at: number }
  | { readonly t: "ident"; readonly v: string; readonly at: number }
  | { readonly t: "num"; readonly v: string; readonly at: number }
  | { readonly t: "dur"; readonly v: string; readonly at: number }
  | { readonly t: "op"; readonly v: string; readonly at: number };

const OPERATORS = [
  "|=",
  "|~",
  "!=",
  "!~",
  "=~",
  "==",
  ">=",
  "<=",
  "=",
  ">",
  "<",
  "|",
  "{",
  "}",
  "(",
  ")",
  ",",
  "[",
  "]",
];

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i += 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === "\\" ? 2 : 1;
      if (j >= src.length) throw new LogqlError(`unterminated string at ${i}`);
      let v: string;
      try {
        v = JSON.parse(src.slice(i, j + 1)) as string;
      } catch {
        throw new LogqlError(`bad escape in string at ${i}: ${src.slice(i, j + 1)}`);
      }
      out.push({ t: "str", v, at: i });
      i = j + 1;
      continue;
    }
    if (c === "`") {
      const j = src.indexOf("`", i + 1);
      if (j < 0) throw new LogqlError(`unterminated raw string at ${i}`);
      out.push({ t: "str", v: src.slice(i + 1, j), at: i });
      i = j + 1;
      continue;
    }
    // A duration only appears inside [...], where it is the whole content.
    if (out.length > 0 && out[out.length - 1].v === "[" && out[out.length - 1].t === "op") {
      const m = /^\s*([0-9]+(?:ms|s|m|h|d|w|y))+/.exec(src.slice(i));
      if (m) {
        out.push({ t: "dur", v: m[0].trim(), at: i });
        i += m[0].length;
        continue;
      }
    }
    const num = /^-?[0-9]+(\.[0-9]+)?/.exec(src.slice(i));
    if (num) {
      out.push({ t: "num", v: num[0], at: i });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (id) {
      out.push({ t: "ident", v: id[0], at: i });
      i += id[0].length;
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (!op) throw new LogqlError(`unexpected character ${JSON.stringify(c)} at ${i}`);
    out.push({ t: "op", v: op, at: i });
    i += op.length;
  }
  return out;
}

const DURATION_MS: Record<string, number> = { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8, y: 3.1536e10 };

function durationMs(text: string): number {
  let total = 0;
  for (const m of text.matchAll(/([0-9]+)(ms|s|m|h|d|w|y)/g)) total += Number(m[1]) * DURATION_MS[m[2]];
  if (total <= 0) throw new LogqlError(`range must be positive: [${text}]`);
  return total;
}

function checkRegex(value: string, where: string): void {
  try {
    new RegExp(value);
  } catch (err) {
    throw new LogqlError(`invalid regular expression in ${where}: ${(err as Error).message}`);
  }
}

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly src: string,
  ) {}

  private peek(offset = 0): Token | undefined {
    return this.tokens[this.i + offset];
  }

  private fail(what: string): never {
    const t = this.peek();
    const where = t ? `at ${t.at} (${JSON.stringify(t.v)})` : "at end of query";
    throw new LogqlError(`${what} ${where} in ${this.src}`);
  }

  private isOp(v: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t !== undefined && t.t === "op" && t.v === v;
  }

  private expectOp(v: string): void {
    if (!this.isOp(v)) this.fail(`expected ${JSON.stringify(v)}`);
    this.i += 1;
  }

  private take(t: Token["t"], what: string): string {
    const tok = this.peek();
    if (!tok || tok.t !== t) this.fail(`expected ${what}`);
    this.i += 1;
    return tok.v;
  }

  parseQuery(): Query {
    const q = this.isOp("{") ? this.parseLog(false) : this.parseMetric();
    if (this.peek()) this.fail("unexpected trailing input");
    return q;
  }

  private parseMetric(): MetricExpr {
    if (this.isOp("(")) {
      this.i += 1;
      const inner = this.parseMetric();
      this.expectOp(")");
      return inner;
    }
    const name = this.take("ident", "an aggregation or range function");
    if ((RANGE_FNS as readonly string[]).includes(name)) {
      this.expectOp("(");
      const inner = this.parseLog(true);
      this.expectOp(")");
      if (inner.rangeMs === undefined) this.fail(`${name} needs a [range]`);
      return { kind: "range", fn: name as RangeFn, inner, rangeMs: inner.rangeMs };
    }
    if ((AGG_OPS as readonly string[]).includes(name)) {
      let grouping = this.parseGrouping();
      this.expectOp("(");
      const inner = this.parseMetric();
      this.expectOp(")");
      const after = this.parseGrouping();
      if (grouping && after) this.fail("grouping given twice");
      grouping = grouping ?? after;
      return { kind: "agg", op: name as AggOp, inner, ...(grouping ? { grouping } : {}) };
    }
    return this.fail(`unknown function ${JSON.stringify(name)}`);
  }

  private parseGrouping(): Grouping | undefined {
    const t = this.peek();
    if (!t || t.t !== "ident" || (t.v !== "by" && t.v !== "without")) return undefined;
    this.i += 1;
    this.expectOp("(");
    const labels: string[] = [];
    if (!this.isOp(")")) {
      labels.push(this.take("ident", "a label name"));
      while (this.isOp(",")) {
        this.i += 1;
        labels.push(this.take("ident", "a label name"));
      }
    }
    this.expectOp(")");
    return { without: t.v === "without", labels };
  }

  private parseRange(): number {
    this.expectOp("[");
    const d = this.take("dur", "a duration");
    this.expectOp("]");
    return durationMs(d);
  }

  private parseLog(allowRange: boolean): LogExpr {
    const selector = this.parseSelector();
    const stages: Stage[] = [];
    let rangeMs: number | undefined;
    for (;;) {
      if (this.isOp("[")) {
        if (!allowRange) this.fail("a [range] is only allowed inside a range function");
        if (rangeMs !== undefined) this.fail("range given twice");
        const afterStages = stages.length > 0;
        rangeMs = this.parseRange();
        // Either straight after the selector or after the whole pipeline, never in between.
        if (afterStages && this.isPipelineStart()) this.fail("a [range] inside the pipeline");
        continue;
      }
      const t = this.peek();
      if (!t || t.t !== "op") break;
      if (t.v === "|=" || t.v === "|~" || t.v === "!=" || t.v === "!~") {
        this.i += 1;
        const value = this.take("str", "a quoted line filter");
        if (t.v === "|~" || t.v === "!~") checkRegex(value, `line filter ${t.v}`);
        stages.push({ kind: "line", op: t.v, value });
      } else if (t.v === "|") {
        this.i += 1;
        stages.push(this.parseStage());
      } else break;
    }
    return { kind: "log", selector, stages, ...(rangeMs === undefined ? {} : { rangeMs }) };
  }

  private isPipelineStart(): boolean {
    return ["|=", "|~", "!=", "!~", "|"].some((o) => this.isOp(o));
  }

  private parseStage(): Stage {
    const name = this.take("ident", "a parser or label filter after |");
    if ((PARSERS as readonly string[]).includes(name) && !this.isComparison()) {
      return { kind: "parser", parser: "logfmt" };
    }
    const op = this.peek();
    if (!op || op.t !== "op" || !this.isComparison()) this.fail(`expected a comparison after label ${name}`);
    this.i += 1;
    const v = this.peek();
    if (v?.t === "str") {
      this.i += 1;
      if (op.v === "=~" || op.v === "!~") checkRegex(v.v, `label filter ${name}`);
      return { kind: "label", label: name, op: op.v as CmpOp, value: v.v };
    }
    if (v?.t === "num" && [">", ">=", "<", "<=", "==", "!="].includes(op.v)) {
      this.i += 1;
      return { kind: "label", label: name, op: op.v as CmpOp, value: Number(v.v) };
    }
    return this.fail(`expected a value for label filter ${name}`);
  }

  private isComparison(): boolean {
    return ["=", "!=", "=~", "!~", "==", ">", ">=", "<", "<="].some((o) => this.isOp(o));
  }

  private parseSelector(): Matcher[] {
    this.expectOp("{");
    const matchers: Matcher[] = [];
    for (;;) {
      const label = this.take("ident", "a label name");
      const op = this.peek();
      if (!op || op.t !== "op" || !["=", "!=", "=~", "!~"].includes(op.v))
        this.fail(`expected a matcher after ${label}`);
      this.i += 1;
      const value = this.take("str", "a quoted label value");
      if (op.v === "=~" || op.v === "!~") checkRegex(value, `matcher ${label}${op.v}`);
      matchers.push({ label, op: op.v as MatchOp, value });
      if (this.isOp(",")) {
        this.i += 1;
        continue;
      }
      break;
    }
    this.expectOp("}");
    // Loki refuses selectors that could match every stream.
    const narrowing = matchers.some(
      (m) => (m.op === "=" && m.value !== "") || (m.op === "=~" && !new RegExp(`^(?:${m.value})$`).test("")),
    );
    if (!narrowing) this.fail("the stream selector needs at least one matcher that does not match the empty string");
    return matchers;
  }
}

export function parseLogql(src: string): Query {
  return new Parser(tokenize(src), src).parseQuery();
}

/** The log expression at the bottom of a query. */
export function logExprOf(q: Query): LogExpr {
  return q.kind === "log" ? q : logExprOf(q.inner);
}

function groupingsOf(q: Query): Grouping[] {
  if (q.kind !== "agg") return [];
  return [...(q.grouping ? [q.grouping] : []), ...groupingsOf(q.inner)];
}

export interface LabelRules {
  /** Every label the pipeline can set on a stream. */
  readonly streamLabels: readonly string[];
  /** Labels of the streams of one job, when the selector pins job="...". */
  readonly labelsByJob?: Readonly<Record<string, readonly string[]>>;
  /** Labels `| logfmt` extracts (the keys the app writes). */
  readonly logfmtKeys?: ReadonlySet<string>;
}

/** Problems with the labels a query uses; empty when every label exists where it is used. */
export function labelProblems(q: Query, rules: LabelRules): string[] {
  const problems: string[] = [];
  const log = logExprOf(q);
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
  let extracted = false;
  for (const s of log.stages) {
    if (s.kind === "parser") extracted = true;
    if (s.kind === "label" && !stream.includes(s.label) && !(extracted && rules.logfmtKeys?.has(s.label))) {
      problems.push(`label filter ${s.label} uses a label that is neither set nor extracted before it`);
    }
  }
  for (const g of groupingsOf(q)) {
    for (const l of g.labels) {
      if (!stream.includes(l) && !(extracted && rules.logfmtKeys?.has(l))) {
        problems.push(`grouping by ${l}: no such label on these streams`);
      }
    }
  }
  return problems;
}
