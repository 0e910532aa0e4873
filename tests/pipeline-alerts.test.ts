/**
 * Issue 11, items 1-3 as rendered: the Pipeline dashboard and the alerts that link to it, the
 * log-based rule on Loki (its LogQL through tests/e2e/logql.ts), and the notification template
 * naming the host of a Loki alert. The rules' behaviour over time is proven by promtool
 * (tests/templates-prometheus.test.ts) and, for a stopped host, by the end-to-end run.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import YAML from "yaml";
import { ALLOY_DROP_REASONS, alertDefinitions, DASHBOARD_UIDS, type AlertDefinition } from "../templates/alerts";
import {
  DASHBOARDS_DIR,
  DATASOURCE_UIDS,
  GRAFANA_PATHS,
  NOTIFICATION_TEMPLATE,
  renderGrafanaFiles,
  type AlertingFile,
  type AlertRule,
  type Dashboard,
  type QueryPanel,
} from "../templates/grafana";
import { withPipelineDashboard } from "../templates/grafana/pipelineDashboard";
import type { RenderedFile } from "../templates/types";
import { checkLogQL } from "./e2e/logql";
import { testContext } from "./support/render";

const render = (overrides: Record<string, string> = {}): RenderedFile[] =>
  renderGrafanaFiles(testContext(overrides), { slackWebhookConfigured: false });

const dashboardsOf = (files: readonly RenderedFile[]): Dashboard[] =>
  files.filter((f) => f.path.startsWith(`${DASHBOARDS_DIR}/`)).map((f) => JSON.parse(f.content) as Dashboard);

function rulesOf(files: readonly RenderedFile[]): AlertRule[] {
  const file = files.find((f) => f.path === GRAFANA_PATHS.alertRules);
  assert.ok(file, "no alert rules file");
  return (YAML.parse(file.content) as AlertingFile).groups?.flatMap((g) => g.rules) ?? [];
}

/** The panel a rule links to, from the rendered dashboards. */
function linkedPanel(files: readonly RenderedFile[], rule: AlertRule): QueryPanel {
  const dashboard = dashboardsOf(files).find((d) => d.uid === rule.dashboardUid);
  assert.ok(dashboard, `${rule.uid}: no dashboard ${rule.dashboardUid}`);
  const panel = dashboard.panels.find((p) => p.id === rule.panelId);
  assert.ok(panel && panel.type !== "row", `${rule.uid}: no query panel ${rule.panelId} on ${rule.dashboardUid}`);
  return panel;
}

const FILES = render();
const DEFS = alertDefinitions(testContext().config);
const byName = (name: string): AlertDefinition => {
  const def = DEFS.find((d) => d.name === name);
  assert.ok(def, `no alert ${name}`);
  return def;
};

describe("Pipeline dashboard", () => {
  const pipelineAlerts = DEFS.filter((d) => d.dashboardUid === DASHBOARD_UIDS.pipeline);

  it("exists, and holds the alerts on hosts, the log path and the alert path", () => {
    assert.deepEqual(pipelineAlerts.map((d) => d.name).sort(), [
      "GrafanaNotificationsFailing",
      "GrafanaRuleEvaluationFailures",
      "HostMissing",
      "LogsDroppedBeforeLoki",
      "LogsNotReachingLoki",
      "LokiDiscardingLogs",
      "PrometheusConfigReloadFailed",
    ]);
    const pipeline = dashboardsOf(FILES).find((d) => d.uid === DASHBOARD_UIDS.pipeline);
    assert.ok(pipeline, "no Pipeline dashboard rendered");
    assert.equal(pipeline.title, "Titan / Pipeline");
    // Target health beside the pipeline: the `up` of every target.
    const exprs = pipeline.panels.flatMap((p) => (p.type === "row" ? [] : p.targets.map((t) => t.expr)));
    assert.ok(exprs.includes("up"), "no target-health panel");
    // No host missing is the healthy state: the count's 0 reads green, not the threshold's red.
    const missing = pipeline.panels.find((p) => p.title === "Hosts missing");
    assert.ok(missing && missing.type === "stat");
    assert.equal(missing.fieldConfig.defaults.mappings[0]?.options["0"]?.color, "green");
  });

  it("links each of its alerts to a panel that plots the alert's own expression with its threshold", () => {
    const rules = rulesOf(FILES);
    for (const def of pipelineAlerts) {
      const rule = rules.find((r) => r.uid === def.uid);
      assert.ok(rule, def.uid);
      const panel = linkedPanel(FILES, rule);
      assert.ok(
        panel.targets.some((t) => t.expr.includes(def.expr)),
        `${def.name}: panel "${panel.title}" does not plot ${def.expr}`,
      );
      assert.ok(panel.type !== "logs", `${def.name}: a logs panel draws no threshold`);
      const steps = panel.fieldConfig.defaults.thresholds.steps.map((s) => s.value);
      assert.ok(steps.includes(def.threshold), `${def.name}: panel "${panel.title}" has no step at ${def.threshold}`);
    }
  });

  it("is linked from every other dashboard, and links back to each", () => {
    const dashboards = dashboardsOf(FILES);
    for (const d of dashboards) {
      const urls = d.links.map((l) => l.url);
      for (const other of dashboards.filter((o) => o.uid !== d.uid)) {
        assert.equal(urls.filter((u) => u === `/d/${other.uid}`).length, 1, `${d.uid} → ${other.uid}`);
      }
    }
  });

  it("refuses a dashboard set without a panel of error lines per host for the log-based alert", () => {
    // Without the Logs dashboard there is nothing to link the rule to: a clear error, not a broken rule.
    assert.throws(
      () => withPipelineDashboard(testContext().config, { dashboards: [], alertPanels: new Map() }),
      /alert titan-app-error-log-lines: no panel of error lines per host on dashboard titan-logs/,
    );
  });
});

describe("LogsDroppedBeforeLoki", () => {
  const dropped = alertDefinitions(testContext().config).find((d) => d.uid === "titan-logs-dropped");

  it("reads a drop as Loki refusing the lines or being unreachable, not as a client-side limit", () => {
    assert.ok(dropped);
    assert.match(dropped.description, /Loki refused them or could not be reached until the retries ran out/);
    assert.doesNotMatch(dropped.description, /lines too long|stream limits/);
  });

  it("explains each reason Alloy's loki.write emits, and none it never emits", () => {
    assert.ok(dropped);
    // grafana/alloy internal/component/common/loki/client (v1.18.1-v1.19): the reasons shards.go and
    // endpoint.go increment; line_too_long is declared in metrics.go but never incremented.
    const emitted = ["ingester_error", "rate_limited", "stream_limited", "queue_is_full"];
    assert.deepEqual(
      ALLOY_DROP_REASONS.map((r) => r.reason),
      emitted,
    );
    for (const reason of emitted) assert.ok(dropped.runbookSteps.includes(`${reason}: `), reason);
    assert.doesNotMatch(dropped.runbookSteps, /line_too_long|retries exhausted:/);
    // A non-429 4xx drops the whole batch at once, under ingester_error.
    assert.match(
      ALLOY_DROP_REASONS[0].means,
      /Loki refused the batch \(any 4xx but 429 drops it at once.*or was unreachable until the retries ran out/,
    );
  });
});

describe("log-based alert", () => {
  const def = byName("AppErrorLogLines");

  it("is a Grafana rule on the Loki data source, counting error lines per web host over a minute", () => {
    const rule = rulesOf(FILES).find((r) => r.uid === def.uid);
    assert.ok(rule);
    const [query] = rule.data;
    assert.equal(query.datasourceUid, DATASOURCE_UIDS.loki);
    assert.ok("expr" in query.model);
    assert.equal(query.model.expr, def.expr);
    assert.match(def.expr, /^sum by \(host\) \(count_over_time\(\{job="titan", level="error"\}\[1m\]\)\)$/);
    assert.equal(rule.for, "5m");
  });

  it("compares against logErrorLinesPerMinute from the stack config", () => {
    const threshold = (files: RenderedFile[]) => {
      const c = rulesOf(files).find((r) => r.uid === def.uid)?.data[2].model;
      assert.ok(c && "conditions" in c);
      return c.conditions[0].evaluator.params[0];
    };
    assert.equal(threshold(FILES), 60);
    assert.equal(threshold(render({ logErrorLinesPerMinute: "250" })), 250);
  });

  it("passes Grafana's LogQL grammar and the Alloy label contract (tests/e2e/logql.ts)", () => {
    assert.deepEqual(checkLogQL(def.expr).errors, []);
    // The check can fail: the same query grouped by Prometheus' label name is refused.
    const wrong = def.expr.replace("sum by (host)", "sum by (instance)");
    assert.notDeepEqual(checkLogQL(wrong).errors, []);
  });

  it("links to the Logs dashboard's panel of error lines per host", () => {
    const rule = rulesOf(FILES).find((r) => r.uid === def.uid);
    assert.ok(rule);
    assert.equal(rule.dashboardUid, DASHBOARD_UIDS.logs);
    const panel = linkedPanel(FILES, rule);
    assert.equal(panel.datasource.uid, DATASOURCE_UIDS.loki);
    assert.ok(
      panel.targets.some((t) => t.expr.includes("sum by (host)") && t.expr.includes('level="error"')),
      `panel "${panel.title}" does not count error lines per host`,
    );
  });

  it("names its host in the Slack message, as the Prometheus rules name their instance", () => {
    assert.match(NOTIFICATION_TEMPLATE, /or \.Labels\.instance \.Labels\.host "n\/a"/);
    assert.match(NOTIFICATION_TEMPLATE, /with or \.CommonLabels\.instance \.CommonLabels\.host/);
  });
});
