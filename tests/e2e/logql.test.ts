/** LogQL through Grafana's grammar (@grafana/lezer-logql), Loki's extra rules and the label contract. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { alertDefinitions } from "../../templates/alerts";
import { testConfig } from "../support/render";
import { checkLogQL, labelProblems, LogqlError, parseLogql, pipelineLabelRules, unquote } from "./logql";

const errorsOf = (q: string) => checkLogQL(q, null).errors;

describe("LogQL grammar", () => {
  it("reads selectors with every matcher operator and chained line filters", () => {
    const q = parseLogql(
      '{job="titan", host=~"a|b", level!="info", env!~"x.*"} |= "boom" != "ok" |~ "t.+" !~ `raw\\d` |= "a" or "b"',
    );
    assert.equal(q.logs.length, 1);
    assert.deepEqual(
      q.labelMatchers.map((m) => `${m.label}${m.op}${m.value}`),
      ["job=titan", "host=~a|b", "level!=info", "env!~x.*"],
    );
    assert.deepEqual(q.logs[0].stages, [
      { kind: "line", op: "|=", values: ["boom"] },
      { kind: "line", op: "!=", values: ["ok"] },
      { kind: "line", op: "|~", values: ["t.+"] },
      { kind: "line", op: "!~", values: ["raw\\d"] },
      { kind: "line", op: "|=", values: ["a", "b"] },
    ]);
  });

  it("reads metric queries, groupings before or after, | logfmt and label filters", () => {
    const a = parseLogql('sum by (level) (count_over_time({job="titan", level=~".+"} |= "" [15s]))');
    assert.deepEqual(
      a.groupings.map((g) => g.labels),
      [["level"]],
    );
    const b = parseLogql('sum(rate({job="titan"}[5m])) by (host)');
    assert.deepEqual(b.groupings[0].labels, ["host"]);
    const c = parseLogql('{job="titan"} | logfmt | path="/process" | duration > 0.5');
    assert.deepEqual(c.logs[0].stages, [
      { kind: "parser", parser: "logfmt" },
      { kind: "label", labels: ["path"] },
      { kind: "label", labels: ["duration"] },
    ]);
    assert.deepEqual(errorsOf('sum by (host) (count_over_time({job="titan", level="error"}[1m])) > 60'), []);
    assert.deepEqual(errorsOf('avg_over_time({job="titan"} | logfmt | unwrap duration [1m])'), []);
  });

  it("unquotes strings as Loki does: Go escapes in double quotes, nothing in backticks", () => {
    assert.deepEqual(unquote('"a\\"b\\\\c\\n\\x41\\u00e9\\101"'), { value: 'a"b\\c\nAéA' });
    assert.deepEqual(unquote('`a"b\\c`'), { value: 'a"b\\c' });
    assert.ok("error" in unquote('"a\\qb"'));
    assert.ok("error" in unquote('"a\\\'b"'));
    assert.ok("error" in unquote('"a\nb"'));
    assert.ok("error" in unquote('"\\400"'));
  });

  it("refuses broken queries: the grammar's error nodes and what Loki refuses beyond them", () => {
    const bad: [string, RegExp][] = [
      ["", /syntax error/],
      ["{}", /syntax error|empty string/],
      ['{job="titan"', /syntax error/],
      ['{job="titan"} |= "a" }', /syntax error/],
      ['sum by (level (count_over_time({job="titan"}[1m]))', /syntax error/],
      ["{job=titan}", /syntax error/],
      ['{job="titan",}', /syntax error/],
      ['{job=="titan"}', /syntax error/],
      ['{job="titan"} |== "a"', /syntax error/],
      ['{job="titan"} === "a"', /syntax error/],
      ['{job="titan"} |= boom', /syntax error/],
      // A `"` typed into a double-quoted line filter ends the string early.
      ['{job="titan"} |= "say "hi""', /syntax error/],
      ['{job="titan"} |= `tick`tock`', /syntax error/],
      ['{job="titan"} |= "a" [5m]', /syntax error/],
      ['count_over_time({job="titan"})', /syntax error/],
      ['{job="titan"} extra', /syntax error/],
      ['{job="a\\q"}', /unknown escape \\q/],
      // A Windows path typed into a double-quoted filter: \U wants eight hex digits.
      ['{job="titan"} |= "C:\\Users"', /bad escape \\U/],
      ['avg_over_time({job="titan"}[1m])', /needs \| unwrap/],
      ['count_over_time({job="titan"} | logfmt | unwrap duration [1m])', /does not take \| unwrap/],
      ['{job="titan"} |~ "(unclosed"', /invalid regular expression/],
      ['{job=~"[bad"}', /invalid regular expression/],
      ['{job="titan"} |~ "a(?=b)"', /lookaround/],
    ];
    for (const [q, why] of bad) {
      const errors = errorsOf(q);
      assert.ok(errors.length > 0, `accepted: ${q}`);
      assert.match(errors.join("; "), why, q);
      assert.throws(() => parseLogql(q), LogqlError, q);
    }
  });

  it("refuses selectors that match every stream, as Loki does", () => {
    assert.match(errorsOf('{job=~".*"}').join(), /empty string/);
    assert.match(errorsOf('{job!="x"}').join(), /empty string/);
    assert.match(errorsOf('{job=""}').join(), /empty string/);
    assert.deepEqual(errorsOf('{job=~".+"}'), []);
    assert.deepEqual(errorsOf('{job=~".*", host="a"}'), []);
  });

  it("takes RE2's leading flag group", () => {
    assert.deepEqual(errorsOf('{job="titan"} |~ "(?i)error"'), []);
  });
});

describe("LogQL label contract", () => {
  const rules = {
    streamLabels: ["job", "host", "level", "unit"],
    labelsByJob: { titan: ["job", "host", "level"], journal: ["job", "host", "unit"] },
    logfmtKeys: new Set(["status", "path"]),
  };
  const problems = (q: string) => labelProblems(parseLogql(q), rules);

  it("accepts labels the pipeline sets on the selected job's streams", () => {
    assert.deepEqual(problems('sum by (level) (count_over_time({job="titan", host=~".+"}[1m]))'), []);
    assert.deepEqual(problems('{job="journal", unit="titan.service"}'), []);
  });

  it("refuses a selector label the pipeline never sets, or not on that job's streams", () => {
    assert.match(problems('{job="titan", instance="x"}').join(), /selector label instance/);
    assert.match(problems('{job="titan", unit="x"}').join(), /selector label unit/);
    assert.match(problems('{job="journal", level="error"}').join(), /selector label level/);
    assert.match(problems('{job="nginx"}')[0], /not a job the pipeline sets/);
    assert.match(problems('sum by (role) (rate({job="titan"}[1m]))').join(), /grouping by role/);
    assert.match(
      problems('sum by (host) (rate({job="titan"}[1m])) / on (role) sum by (host) (rate({job="titan"}[1m]))').join(),
      /grouping by role/,
    );
  });

  it("allows extracted labels only after | logfmt, and flags what it does not model", () => {
    assert.deepEqual(problems('{job="titan"} | logfmt | status="500"'), []);
    assert.match(problems('{job="titan"} | status="500"').join(), /label filter status/);
    assert.match(problems('{job="titan"} | logfmt | nope="1"').join(), /label filter nope/);
    assert.deepEqual(problems('sum by (status) (rate({job="titan"} | logfmt [1m]))'), []);
    assert.match(problems('{job="titan"} | json').join(), /parser json/);
    assert.match(problems('{job="titan"} | line_format "{{.msg}}"').join(), /does not model/);
  });

  it("checkLogQL reports label problems with the pipeline's own rules", () => {
    const c = checkLogQL('{job="titan", instance="web-1"}');
    assert.match(c.errors.join(), /selector label instance/);
    assert.deepEqual(
      c.labelMatchers.map((m) => m.label),
      ["job", "instance"],
    );
    assert.deepEqual(checkLogQL('{job="titan", host="web-1", level="error"} | logfmt | path="/x"').errors, []);
    assert.ok(pipelineLabelRules().logfmtKeys?.has("level"));
  });
});

describe("the LogQL the project renders", () => {
  it("every log-based alert rule parses with no error node and uses only labels Alloy sets", () => {
    const lokiRules = alertDefinitions(testConfig()).filter((d) => "datasource" in d && d.datasource === "loki");
    assert.ok(lokiRules.length > 0, "no alert definition runs on Loki");
    for (const d of lokiRules) assert.deepEqual(checkLogQL(d.expr).errors, [], `${d.uid}: ${d.expr}`);
  });
});
