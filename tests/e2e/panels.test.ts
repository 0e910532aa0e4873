/** Walking the real dashboards and expanding their queries as Grafana would (no root needed). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildDashboards } from "../../templates/grafana/dashboards";
import { testConfig } from "../support/render";
import { parseLogql } from "./logql";
import { defaultSelection, expandQuery, panelQueries, resolveVariables, scenarios } from "./panels";
import { variablesIn } from "./promql";

const { dashboards } = buildDashboards(testConfig());
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
          if (q.dialect === "loki") assert.doesNotThrow(() => parseLogql(e.expr), e.expr);
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
