/**
 * The metricsStore=amp cost estimate (templates/ampCostDocs.ts), on a fixed sample rate whose
 * figures are worked out by hand below: the ingestion tiers and the free tier at their
 * boundaries, storage at AMP's retention, the extrapolation to other web counts, the alert
 * rules' query bound, and the checks of bench/amp-sample-rate.json's content.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  alertQspPerEvaluation,
  ampCostRows,
  ampIngestionUsd,
  ampStorageUsd,
  ampStoredGb,
  parseAmpSampleRate,
  promqlSelectors,
  samplesPerSecondAt,
  seriesByJobAt,
  type AmpSampleRate,
} from "../templates/ampCostDocs";
import { alertDefinitions } from "../templates/alerts";
import { testConfig } from "./support/render";

/**
 * A fleet-shaped rate: node_exporter 30 samples/s on each of the 4 hosts, the web host's app,
 * Alloy and agent 4 each, Prometheus itself 36, Loki and Grafana 4 each: 176 samples/s.
 */
const RATE = {
  measured: "2026-12-06",
  run: "fleet",
  webCount: 1,
  scrapeIntervalSeconds: 15,
  windowSeconds: 300,
  samplesPerSecond: 176,
  byJob: { node: 120, titan: 4, alloy: 4, remediation: 4, loki: 4, grafana: 4, prometheus: 36 },
  byRole: { web: 42, prometheus: 66, loki: 34, grafana: 34 },
  standIns: ["alloy", "loki", "grafana"],
} as const;

const near = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: ${actual}, expected ${expected}`);

describe("AMP ingestion price", () => {
  it("charges nothing for the free tier's 40 million samples", () => {
    assert.equal(ampIngestionUsd(0), 0);
    assert.equal(ampIngestionUsd(40_000_000), 0);
  });

  it("charges $0.90 per 10 million from the free tier up to 2 billion", () => {
    near(ampIngestionUsd(50_000_000), 0.9, "40 M free + 10 M");
    // (2,000,000,000 - 40,000,000) / 10,000,000 × $0.90 = 196 × 0.90
    near(ampIngestionUsd(2_000_000_000), 176.4, "2 B");
  });

  it("charges $0.35 per 10 million for the next 250 billion and $0.16 beyond 252 billion", () => {
    // 2 B + 10 M: the 10 M past the boundary at the second tier's price
    near(ampIngestionUsd(2_010_000_000), 176.4 + 0.35, "2 B + 10 M");
    // 176.40 + 250,000,000,000 / 10,000,000 × 0.35 = 176.40 + 8,750
    near(ampIngestionUsd(252_000_000_000), 8926.4, "252 B");
    // + 10,000,000,000 / 10,000,000 × 0.16 = + 160
    near(ampIngestionUsd(262_000_000_000), 9086.4, "262 B");
  });

  it("refuses a negative or infinite volume", () => {
    assert.throws(() => ampIngestionUsd(-1), /samples ingested = -1: expected a finite number >= 0/);
    assert.throws(() => ampIngestionUsd(Infinity), /expected a finite number/);
  });
});

describe("AMP storage", () => {
  it("holds 150 days at 2 bytes a sample, free up to 10 GB", () => {
    // 176 × 150 × 86,400 × 2 = 4,561,920,000 bytes = 4.2486 GB (2^30)
    near(ampStoredGb(176), 4_561_920_000 / 1_073_741_824, "176 samples/s");
    assert.equal(ampStorageUsd(176), 0);
    // 1,000 samples/s: 25,920,000,000 bytes = 24.1399 GB; (24.1399 - 10) × $0.03
    near(ampStorageUsd(1000), (25_920_000_000 / 1_073_741_824 - 10) * 0.03, "1,000 samples/s");
  });
});

describe("the measured rate extrapolated", () => {
  const rate = parseAmpSampleRate(RATE);

  it("adds each web host's share to the other hosts'", () => {
    assert.equal(samplesPerSecondAt(rate, 1), 176);
    assert.equal(samplesPerSecondAt(rate, 10), 42 * 10 + 66 + 34 + 34);
  });

  it("scales each job's series with its targets", () => {
    const series = seriesByJobAt(rate, 10);
    assert.equal(series.titan, 4 * 15 * 10); // web only: 10 targets instead of 1
    assert.equal(series.node, (120 * 15 * 13) / 4); // every host: 13 instead of 4
    assert.equal(series.prometheus, 36 * 15); // one target either way
  });
});

describe("the alert rules' query bound", () => {
  it("finds the selectors of an expression, with their jobs and ranges, and no function or grouping label", () => {
    assert.deepEqual(
      promqlSelectors(
        'histogram_quantile(0.95, sum by (instance, le) (rate(http_request_duration_seconds_bucket{job="titan"}[5m])))',
      ),
      [{ metric: "http_request_duration_seconds_bucket", jobs: ["titan"], rangeSeconds: 300 }],
    );
    assert.deepEqual(promqlSelectors("100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)"), [
      { metric: "node_memory_MemAvailable_bytes", jobs: undefined, rangeSeconds: undefined },
      { metric: "node_memory_MemTotal_bytes", jobs: undefined, rangeSeconds: undefined },
    ]);
    assert.deepEqual(
      promqlSelectors('up{job=~"node|titan"} < bool 1').map((s) => s.jobs),
      [["node", "titan"]],
    );
  });

  it("reads every PromQL rule of the stack as selectors of real metrics", () => {
    for (const def of alertDefinitions(testConfig()).filter((d) => d.datasource === "prometheus")) {
      const selectors = promqlSelectors(def.expr);
      assert.ok(selectors.length > 0, `${def.uid}: no selector in ${def.expr}`);
      for (const s of selectors) assert.match(s.metric, /^(up|[a-z]+_[a-z_A-Z]+)$/, `${def.uid}: ${s.metric}`);
    }
  });

  it("bounds one evaluation by the named jobs' series times the samples in the range", () => {
    const series = { titan: 60, node: 1800, prometheus: 540 };
    // two selectors on job titan, [5m] at 15 s: 21 samples each: 2 × 60 × 21
    const ratio = {
      datasource: "prometheus" as const,
      expr: 'sum by (instance) (rate(http_requests_total{job="titan",status=~"5.."}[5m])) / sum by (instance) (rate(http_requests_total{job="titan"}[5m]))',
    };
    assert.equal(alertQspPerEvaluation(ratio, series, 15), 2 * 60 * 21);
    // no job named: every series, one sample each
    assert.equal(alertQspPerEvaluation({ datasource: "prometheus", expr: "up" }, series, 15), 60 + 1800 + 540);
    // LogQL goes to Loki
    assert.equal(
      alertQspPerEvaluation({ datasource: "loki", expr: 'count_over_time({job="titan"}[5m])' }, series, 15),
      0,
    );
  });

  it("refuses to price queries beyond the free tier, having no query price", () => {
    const huge = parseAmpSampleRate({
      ...RATE,
      samplesPerSecond: 176_000,
      byJob: Object.fromEntries(Object.entries(RATE.byJob).map(([k, v]) => [k, v * 1000])),
      byRole: Object.fromEntries(Object.entries(RATE.byRole).map(([k, v]) => [k, v * 1000])),
    });
    assert.throws(
      () => ampCostRows(huge, testConfig()),
      /billion query samples a month, more than AMP's free 200 billion/,
    );
  });
});

describe("the cost rows", () => {
  it("are the measured stack (the default webCount) and the largest webCount, priced by hand", () => {
    const rows = ampCostRows(parseAmpSampleRate(RATE), testConfig());
    assert.deepEqual(
      rows.map((r) => [r.label, r.webCount]),
      [
        ["measured on the fleet (2026-12-06), default webCount", 1],
        ["largest webCount", 10],
      ],
    );
    // 176 × 2,628,000 = 462,528,000 samples; (462,528,000 - 40,000,000) / 10 M × $0.90
    near(rows[0].monthlyUsd, 38.02752, "webCount 1");
    // 554 × 2,628,000 = 1,455,912,000 samples; (1,455,912,000 - 40,000,000) / 10 M × $0.90 = $127.43208,
    // plus storage: 554 × 150 × 86,400 × 2 = 14,359,680,000 bytes = 13.3735 GB, 3.3735 GB over the free 10 × $0.03
    near(rows[1].ingestionUsd, 127.43208, "webCount 10, ingestion");
    near(rows[1].storageUsd, (14_359_680_000 / 1_073_741_824 - 10) * 0.03, "webCount 10, storage");
    near(rows[1].monthlyUsd, 127.43208 + (14_359_680_000 / 1_073_741_824 - 10) * 0.03, "webCount 10");
    assert.ok(rows[1].storageUsd > 0.1 && rows[1].storageUsd < 0.102, `${rows[1].storageUsd}`);
    for (const r of rows) assert.ok(r.alertQspPerMonth > 0 && r.alertQspPerMonth < 200e9, `${r.alertQspPerMonth}`);
  });
});

describe("bench/amp-sample-rate.json's content", () => {
  const broken = (patch: Record<string, unknown>) => ({ ...RATE, ...patch }) as unknown;

  it("accepts the recorded shape", () => {
    const parsed: AmpSampleRate = parseAmpSampleRate(RATE);
    assert.equal(parsed.samplesPerSecond, 176);
  });

  it("names the key, the value and what was expected", () => {
    assert.throws(
      () => parseAmpSampleRate(broken({ byJob: { ...RATE.byJob, titan: undefined } })),
      /bench\/amp-sample-rate\.json: byJob\.titan = undefined: expected a positive number/,
    );
    assert.throws(
      () => parseAmpSampleRate(broken({ byRole: { ...RATE.byRole, cache: 3 } })),
      /byRole = .*: expected only the keys web, prometheus, loki, grafana \(not cache\)/,
    );
    assert.throws(() => parseAmpSampleRate(broken({ measured: "today" })), /measured = "today": expected a date/);
    assert.throws(() => parseAmpSampleRate(broken({ standIns: ["mysql"] })), /standIns = \["mysql"\]/);
  });

  it("refuses a rate measured at another scrape interval", () => {
    assert.throws(
      () => parseAmpSampleRate(broken({ scrapeIntervalSeconds: 30 })),
      /scrapeIntervalSeconds = 30: expected 15 \(SCRAPE_INTERVAL\)/,
    );
  });

  it("refuses totals that disagree with the per-job or per-role figures", () => {
    assert.throws(
      () => parseAmpSampleRate(broken({ samplesPerSecond: 200 })),
      /samplesPerSecond = 200: expected the sum of byJob \(176\.0\) within 2%/,
    );
    assert.throws(
      () => parseAmpSampleRate(broken({ byRole: { ...RATE.byRole, web: 60 } })),
      /expected byRole times each role's hosts \(194\.0\) within 2%/,
    );
  });
});
