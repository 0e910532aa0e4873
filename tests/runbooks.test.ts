import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { alertDefinitions, runbookAnchor } from "../templates/alerts";
import { runbookMarkdown } from "../templates/docs";
import { testConfig } from "./support/render";

/** Names the runbook headings must write as their owners do, never in lower case. */
const PROPER = ["CPU", "Loki", "Grafana", "Prometheus", "Alloy", "Titan", "Slack", "S3"];

describe("runbook headings", () => {
  const defs = alertDefinitions(testConfig());

  it("write product names and acronyms as they are spelled (High CPU usage, Logs dropped before Loki)", () => {
    for (const def of defs) {
      for (const name of PROPER) {
        const lower = new RegExp(`\\b${name.toLowerCase()}\\b`);
        assert.doesNotMatch(
          def.title,
          lower,
          `${def.uid}: title ${JSON.stringify(def.title)} writes ${name} in lower case`,
        );
      }
      assert.match(def.title, /^[A-Z]/, `${def.uid}: title starts with a capital`);
    }
    const headings = [...runbookMarkdown(testConfig()).matchAll(/^### (.+)$/gm)].map((m) => m[1]);
    assert.ok(headings.includes("High CPU usage"), headings.join(", "));
    assert.ok(headings.includes("Logs dropped before Loki"), headings.join(", "));
  });

  it("keep the anchors alerts already link to (a published runbook_url keeps working)", () => {
    const anchors = defs.map((d) => d.runbook);
    for (const anchor of [
      "high-cpu-usage",
      "logs-dropped-before-loki",
      "app-high-latency-p95",
      "root-disk-almost-full",
    ])
      assert.ok(anchors.includes(anchor), anchor);
    assert.equal(new Set(anchors).size, anchors.length, "anchors are unique");
  });

  it("derive each anchor as GitHub does from the heading", () => {
    assert.equal(runbookAnchor("App high latency (p95)"), "app-high-latency-p95");
    assert.equal(runbookAnchor("High CPU usage"), "high-cpu-usage");
    assert.equal(runbookAnchor("A_b: c-d"), "a_b-c-d");
    for (const def of defs) assert.equal(def.runbook, runbookAnchor(def.title));
  });
});
