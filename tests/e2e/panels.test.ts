/** Walking the real dashboards and expanding their queries as Grafana would (no root needed). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { alertDefinitions } from "../../templates/alerts";
import { buildDashboards } from "../../templates/grafana/dashboards";
import { testConfig } from "../support/render";
import { checkLogQL } from "./logql";
import {
  allPanels,
  defaultSelection,
  expandQuery,
  panelQueries,
  resolveVariables,
  scenarios,
  type ResolvedVariable,
} from "./panels";
import { variablesIn } from "./promql";
import { evaluateWithPromtool, type ExpectedSample } from "./promtoolEval";

const config = testConfig();
const { dashboards, alertPanels } = buildDashboards(config);
const window = { fromMs: 0, toMs: 3_600_000 };
const labelValues = (label: string, match?: string) =>
  Promise.resolve(
    label === "environment"
      ? ["dev"]
      : label === "instance"
        ? match?.includes("titan")
          ? ["web-1"]
          : ["web-1", "loki"]
        : ["/health", "/process"],
  );

describe("dashboard queries", () => {
  it("finds every panel target, Prometheus and Loki", () => {
    const all = dashboards.flatMap(panelQueries);
    assert.ok(all.some((q) => q.dialect === "prometheus"));
    assert.ok(all.some((q) => q.dialect === "loki"));
    const targets = dashboards.flatMap((d) => d.panels.flatMap((p) => (p.type === "row" ? [] : p.targets)));
    assert.equal(all.length, targets.length);
  });

  it("resolves variables in order, the later ones seeing the earlier defaults", async () => {
    const seen: (string | undefined)[] = [];
    const system = dashboards.find((d) => d.uid === "titan-system");
    assert.ok(system);
    const resolved = await resolveVariables(system.templating.list, (label, match) => {
      seen.push(match);
      return labelValues(label, match);
    });
    assert.deepEqual(resolved.get("instance")?.options, ["loki", "web-1"]);
    assert.ok(
      seen.some((m) => m?.includes('environment=~"dev"')),
      `matches: ${seen.join(" ")}`,
    );
    await assert.rejects(
      resolveVariables(system.templating.list, () => Promise.resolve([])),
      /returns no values/,
    );
  });

  it("expands every query of every dashboard for All and for each host, leaving no variable behind", async () => {
    for (const d of dashboards) {
      const resolved = await resolveVariables(d.templating.list, labelValues);
      const list = scenarios(resolved, "instance");
      assert.ok(list.length >= 2);
      for (const scenario of list) {
        for (const q of panelQueries(d)) {
          const e = expandQuery(q, resolved, scenario.selection, window, 15_000);
          assert.deepEqual(variablesIn(e.expr), [], e.expr);
          // Grafana's grammar, Loki's own refusals, and only labels the Alloy pipeline sets.
          if (q.dialect === "loki") assert.deepEqual(checkLogQL(e.expr).errors, [], e.expr);
          if (q.dialect === "prometheus") assert.equal(e.intervalMs, 15_000);
        }
      }
    }
  });

  it("writes All as the variable's all value and one host as that host", async () => {
    const app = dashboards.find((d) => d.uid === "titan-application");
    assert.ok(app);
    const resolved = await resolveVariables(app.templating.list, labelValues);
    const q = panelQueries(app).find((x) => x.expr.includes("$__rate_interval"));
    assert.ok(q);
    const all = expandQuery(q, resolved, defaultSelection(resolved), window, 15_000).expr;
    assert.match(all, /instance=~"\.\+"/);
    assert.match(all, /\[1m0s\]/);
    const one = scenarios(resolved, "instance").find((s) => s.name === "instance=web-1");
    assert.ok(one);
    assert.match(expandQuery(q, resolved, one.selection, window, 15_000).expr, /instance=~"web-1"/);
  });
});

describe("the Logs dashboard's line-contains box", () => {
  // What a user may well type: a quoted phrase and a Windows path with a trailing backslash.
  const typed = 'say "hi" C:\\Users\\titan\\';

  it('keeps every LogQL query valid with " and \\ typed in, and searches for exactly that text', async () => {
    const logs = dashboards.find((d) => d.uid === "titan-logs");
    assert.ok(logs);
    const resolved = await resolveVariables(logs.templating.list, labelValues);
    assert.equal(resolved.get("search")?.spec.multi, undefined, "search is a text box");
    const selection = new Map([...defaultSelection(resolved), ["search", { values: [typed] }]]);
    const searched = panelQueries(logs).filter((q) => q.dialect === "loki" && q.expr.includes("$search"));
    assert.ok(searched.length >= 4, "the Logs panels filter on $search");
    for (const q of searched) {
      const { expr } = expandQuery(q, resolved, selection, window, 15_000);
      const check = checkLogQL(expr);
      assert.deepEqual(check.errors, [], expr);
      for (const log of check.parsed.logs) {
        const filters = log.stages.filter((s) => s.kind === "line");
        assert.deepEqual(filters, [{ kind: "line", op: "|=", values: [typed] }], expr);
      }
    }
  });
});

/** Every non-row panel of every dashboard with the text Grafana sends for its queries (All everywhere). */
async function expandedPanels() {
  const out = [];
  for (const d of dashboards) {
    const resolved: Map<string, ResolvedVariable> = await resolveVariables(d.templating.list, labelValues);
    for (const panel of allPanels(d)) {
      if (panel.type === "row") continue;
      const queries = panelQueries(d)
        .filter((q) => q.panelId === panel.id)
        .map((q) => ({ ...q, sent: expandQuery(q, resolved, defaultSelection(resolved), window, 15_000).expr }));
      out.push({ dashboard: d.uid, panel, queries });
    }
  }
  return out;
}

// Two web hosts scraped every 15 s, as the seeded series for the real Prometheus engine below.
const SERIES = (metric: string, host: string, extra: string) =>
  `${metric}{job="titan", environment="dev", instance="${host}", endpoint="/process"${extra}}`;
const requests = (host: string, status: string, perScrape: number) => ({
  series: SERIES("http_requests_total", host, `, method="GET", status="${status}"`),
  values: `0+${perScrape}x40`,
});

describe("dashboard PromQL on the real Prometheus engine (promtool)", () => {
  it("the latency panel AppHighLatencyP95 links to shows p95 per instance, exactly as the rule computes it", async () => {
    const rule = alertDefinitions(config).find((a) => a.name === "AppHighLatencyP95");
    assert.ok(rule);
    const where = alertPanels.get(rule.uid);
    assert.ok(where, "the alert links to a panel");
    const panel = (await expandedPanels()).find(
      (p) => p.dashboard === where.dashboardUid && p.panel.id === where.panelId,
    );
    const p95 = panel?.queries.find((q) => q.expr.startsWith("histogram_quantile(0.95,"));
    assert.ok(p95, "the linked panel has a p95 query");
    // web-1 answers within (0.1 s, 1 s], web-2 within (1 s, 10 s]: only web-2 breaches 0.5 s.
    const buckets = (host: string, counts: readonly number[]) =>
      ["0.1", "1", "10", "+Inf"].map((le, i) => ({
        series: SERIES("http_request_duration_seconds_bucket", host, `, method="GET", le="${le}"`),
        values: `0+${counts[i]}x40`,
      }));
    const perHost: ExpectedSample[] = [
      { labels: '{instance="web-1"}', value: 0.955 },
      { labels: '{instance="web-2"}', value: 9.55 },
    ];
    const result = evaluateWithPromtool([
      {
        name: "p95 per host",
        interval: "15s",
        inputSeries: [...buckets("web-1", [0, 4, 4, 4]), ...buckets("web-2", [0, 0, 4, 4])],
        cases: [rule.expr, p95.sent].map((expr) => ({
          expr: `round(${expr}, 0.001)`,
          evalTime: "5m",
          expSamples: perHost,
        })),
      },
    ]);
    assert.ok(result.ok, `the panel and the rule disagree on what p95 is per host:\n${result.output}`);
  });

  it("every ratio panel shows 0, not No data, when nothing failed, and the real ratio when something did", async () => {
    const ratios = (await expandedPanels()).filter(
      (p) => p.panel.type !== "logs" && p.panel.fieldConfig.defaults.unit === "percentunit",
    );
    assert.ok(ratios.length >= 3, "the error-ratio panels (Application stat and graph, Logs graph)");
    const expect = (type: string, perHost: [number, number], total: number): ExpectedSample[] =>
      type === "stat"
        ? [{ labels: "{}", value: total }]
        : [
            { labels: '{instance="web-1"}', value: perHost[0] },
            { labels: '{instance="web-2"}', value: perHost[1] },
          ];
    const cases = (perHost: [number, number], total: number) =>
      ratios.flatMap((p) =>
        p.queries.map((q) => ({
          expr: `round(${q.sent}, 0.001)`,
          evalTime: "5m",
          expSamples: expect(p.panel.type, perHost, total),
        })),
      );
    const result = evaluateWithPromtool([
      {
        // No 5xx was ever counted, so no series with a 5xx status exists at all.
        name: "nothing failed",
        interval: "15s",
        inputSeries: [requests("web-1", "200", 4), requests("web-2", "200", 4)],
        cases: cases([0, 0], 0),
      },
      {
        name: "a quarter of web-2's requests fail",
        interval: "15s",
        inputSeries: [requests("web-1", "200", 4), requests("web-2", "200", 3), requests("web-2", "500", 1)],
        cases: cases([0, 0.25], 0.125),
      },
    ]);
    assert.ok(result.ok, `a ratio panel is wrong or empty:\n${result.output}`);
  });
});
