/** Grafana's macro and variable expansion, as the e2e run reproduces it (no root needed). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  formatInterval,
  formatVariable,
  goDuration,
  grafanaInterval,
  interpolate,
  macroValues,
  parseDuration,
  parseLabelValues,
  rateInterval,
  roundInterval,
  variablesIn,
} from "./promql";

describe("Grafana interval macros", () => {
  it("parses durations", () => {
    assert.equal(parseDuration("15s"), 15_000);
    assert.equal(parseDuration("1m30s"), 90_000);
    assert.equal(parseDuration("1h"), 3_600_000);
    assert.equal(parseDuration("250ms"), 250);
    assert.throws(() => parseDuration("15"), /not a duration/);
    assert.throws(() => parseDuration("1x"), /not a duration/);
    assert.throws(() => parseDuration(""), /empty/);
  });

  it("rounds and bounds $__interval like Grafana", () => {
    assert.equal(roundInterval(1875), 2000);
    assert.equal(roundInterval(4000), 5000);
    assert.equal(roundInterval(16_000), 15_000);
    // One hour on a full-width panel: 2 s raw, lifted to the 15 s scrape interval.
    assert.equal(grafanaInterval(3_600_000, 1920, 15_000), 15_000);
    // A week on a narrow panel is above the minimum.
    assert.equal(grafanaInterval(7 * 86_400_000, 480, 15_000), 1_200_000);
  });

  it("computes $__rate_interval = max($__interval + scrape, 4 × scrape)", () => {
    assert.equal(rateInterval(15_000, 15_000), 60_000);
    assert.equal(rateInterval(60_000, 15_000), 75_000);
    assert.equal(rateInterval(1_200_000, 15_000), 1_215_000);
  });

  it("writes the values as Grafana's backend does", () => {
    assert.equal(formatInterval(15_000), "15s");
    assert.equal(formatInterval(120_000), "2m");
    assert.equal(formatInterval(90_000), "1m");
    assert.equal(goDuration(60_000), "1m0s");
    assert.equal(goDuration(75_000), "1m15s");
    assert.equal(goDuration(3_600_000), "1h0m0s");
    assert.equal(goDuration(45_000), "45s");
    assert.deepEqual(macroValues({ intervalMs: 15_000, rangeMs: 3_600_000, scrapeIntervalMs: 15_000 }), {
      __interval: "15s",
      __interval_ms: "15000",
      __rate_interval: "1m0s",
      __rate_interval_ms: "60000",
      __range: "3600s",
      __range_s: "3600",
      __range_ms: "3600000",
    });
  });
});

describe("Grafana variable expansion", () => {
  const hosts = ["titan-dev-grafana", "titan-dev-web-1"];
  const multi = { name: "instance", multi: true, includeAll: true };

  it("writes All as the custom all value, unescaped", () => {
    assert.equal(formatVariable({ ...multi, allValue: ".+" }, { all: true }, hosts, "prometheus"), ".+");
  });

  it("writes All without an all value as a regex alternation of every value, escaped", () => {
    assert.equal(formatVariable(multi, { all: true }, ["a.b", "c"], "prometheus"), "(a\\\\.b|c)");
    assert.equal(formatVariable(multi, { all: true }, ["a", "c"], "loki"), "a|c");
  });

  it("writes one value of a multi variable regex-escaped, without parentheses", () => {
    assert.equal(formatVariable(multi, { values: ["titan-dev-web-1"] }, hosts, "prometheus"), "titan-dev-web-1");
    assert.equal(formatVariable(multi, { values: ["a+b"] }, hosts, "prometheus"), "a\\\\+b");
    assert.equal(formatVariable(multi, { values: hosts }, hosts, "prometheus"), "(titan-dev-grafana|titan-dev-web-1)");
  });

  it("writes a single-value variable as is, and refuses All where there is none", () => {
    const env = { name: "environment", multi: false, includeAll: false };
    assert.equal(formatVariable(env, { values: ["dev"] }, ["dev"], "prometheus"), "dev");
    assert.throws(() => formatVariable(env, { all: true }, ["dev"], "prometheus"), /no All option/);
    assert.throws(() => formatVariable(env, { values: [] }, ["dev"], "prometheus"), /no value/);
  });

  it("replaces $name, ${name} and [[name]], longest name first, and fails on unknown names", () => {
    const values = { instance: ".+", __interval: "15s", __interval_ms: "15000", __rate_interval: "1m0s" };
    assert.equal(
      interpolate(
        'rate(x{instance=~"$instance"}[$__rate_interval]) / $__interval_ms + ${__interval} [[instance]]',
        values,
      ),
      'rate(x{instance=~".+"}[1m0s]) / 15000 + 15s .+',
    );
    assert.throws(() => interpolate('x{a="$nope"}', values), /undefined variable \$nope/);
    assert.deepEqual(variablesIn('a{b="$c"}[$__range] ${d}'), ["c", "__range", "d"]);
  });

  it("parses label_values() queries", () => {
    assert.deepEqual(parseLabelValues('label_values(up{job="node"}, environment)'), {
      match: 'up{job="node"}',
      label: "environment",
    });
    assert.deepEqual(parseLabelValues("label_values(job)"), { label: "job" });
    assert.throws(() => parseLabelValues("query_result(up)"), /not a label_values/);
  });
});
