/** The LogQL subset parser and the label check (no root needed). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { labelProblems, LogqlError, logExprOf, parseLogql } from "./logql";

describe("LogQL parser", () => {
  it("parses a stream selector with every matcher operator and line filters", () => {
    const q = parseLogql(
      '{job="titan", host=~"a|b", level!="info", env!~"x.*"} |= "boom" != "ok" |~ "t.+" !~ `raw\\d`',
    );
    assert.equal(q.kind, "log");
    const log = logExprOf(q);
    assert.deepEqual(
      log.selector.map((m) => `${m.label}${m.op}${m.value}`),
      ["job=titan", "host=~a|b", "level!=info", "env!~x.*"],
    );
    assert.deepEqual(
      log.stages.map((s) => (s.kind === "line" ? `${s.op}${s.value}` : s.kind)),
      ["|=boom", "!=ok", "|~t.+", "!~raw\\d"],
    );
  });

  it("parses metric queries: count_over_time, rate, sum by before or after", () => {
    const a = parseLogql('sum by (level) (count_over_time({job="titan", level=~".+"} |= "" [15s]))');
    assert.equal(a.kind, "agg");
    if (a.kind === "agg") {
      assert.deepEqual(a.grouping, { without: false, labels: ["level"] });
      assert.equal(a.inner.kind, "range");
      if (a.inner.kind === "range") assert.equal(a.inner.rangeMs, 15_000);
    }
    const b = parseLogql('sum(rate({job="titan"}[5m])) by (host)');
    assert.equal(b.kind === "agg" && b.grouping?.labels[0], "host");
    assert.doesNotThrow(() => parseLogql('count_over_time({job="titan"}[1m] |= "x")'));
    assert.doesNotThrow(() => parseLogql('rate({job="titan"} | logfmt | status >= 500 [1m])'));
  });

  it("parses | logfmt and label filters", () => {
    const log = logExprOf(parseLogql('{job="titan"} | logfmt | path="/process" | duration > 0.5'));
    assert.deepEqual(log.stages, [
      { kind: "parser", parser: "logfmt" },
      { kind: "label", label: "path", op: "=", value: "/process" },
      { kind: "label", label: "duration", op: ">", value: 0.5 },
    ]);
  });

  it("rejects bad syntax", () => {
    const bad = [
      "",
      "{}",
      '{job="titan"',
      "{job=titan}",
      '{job="titan",}',
      '{job=="titan"}',
      '{job="titan"} |= boom',
      '{job="titan"} | json',
      '{job="titan"} |= "a" [5m]',
      'count_over_time({job="titan"})',
      'count_over_time({job="titan"}[5])',
      'count_over_time({job="titan"}[0s])',
      'sum by (level (count_over_time({job="titan"}[1m]))',
      'sum by (level) (count_over_time({job="titan"}[1m])) by (host)',
      'avg_over_time({job="titan"}[1m])',
      '{job="titan"} |~ "(unclosed"',
      '{job=~"[bad"}',
      '{job="titan"} extra',
      '{job="titan"} "x"',
      'count_over_time({job="titan"} |= "a" [1m] |= "b")',
      '{job="a\\q"}',
    ];
    for (const q of bad) assert.throws(() => parseLogql(q), LogqlError, `accepted: ${q}`);
  });

  it("rejects selectors that match every stream, as Loki does", () => {
    assert.throws(() => parseLogql('{job=~".*"}'), /empty string/);
    assert.throws(() => parseLogql('{job!="x"}'), /empty string/);
    assert.throws(() => parseLogql('{job=""}'), /empty string/);
    assert.doesNotThrow(() => parseLogql('{job=~".+"}'));
  });
});

describe("LogQL label check", () => {
  const rules = {
    streamLabels: ["job", "host", "level", "unit"],
    labelsByJob: { titan: ["job", "host", "level"], journal: ["job", "host", "unit"] },
    logfmtKeys: new Set(["status", "path"]),
  };

  it("accepts labels the pipeline sets on the selected job's streams", () => {
    assert.deepEqual(
      labelProblems(parseLogql('sum by (level) (count_over_time({job="titan", host=~".+"}[1m]))'), rules),
      [],
    );
    assert.deepEqual(labelProblems(parseLogql('{job="journal", unit="titan.service"}'), rules), []);
  });

  it("flags labels the pipeline never sets, or not on those streams", () => {
    assert.equal(labelProblems(parseLogql('{job="titan", instance="x"}'), rules).length, 1);
    assert.equal(labelProblems(parseLogql('{job="titan", unit="x"}'), rules).length, 1);
    assert.equal(labelProblems(parseLogql('{job="journal", level="error"}'), rules).length, 1);
    assert.match(labelProblems(parseLogql('{job="nginx"}'), rules)[0], /not a job the pipeline sets/);
    assert.equal(labelProblems(parseLogql('sum by (role) (rate({job="titan"}[1m]))'), rules).length, 1);
  });

  it("allows extracted labels only after | logfmt", () => {
    assert.deepEqual(labelProblems(parseLogql('{job="titan"} | logfmt | status="500"'), rules), []);
    assert.equal(labelProblems(parseLogql('{job="titan"} | status="500"'), rules).length, 1);
    assert.equal(labelProblems(parseLogql('{job="titan"} | logfmt | nope="1"'), rules).length, 1);
    assert.deepEqual(labelProblems(parseLogql('sum by (status) (rate({job="titan"} | logfmt [1m]))'), rules), []);
  });
});
