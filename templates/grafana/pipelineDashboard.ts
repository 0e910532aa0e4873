/**
 * The Pipeline dashboard: is the monitoring itself working? Target health and missing hosts
 * beside the log path (Alloy → Loki) and the alert path (Prometheus' configuration, Grafana's
 * rule evaluation and notifications). Each pipeline alert links to the panel that plots its own
 * expression with its threshold, and the log-based alert links to the Logs dashboard's panel of
 * error lines per host.
 *
 * No variables: one Prometheus serves one stack, so every series here is this stack's.
 */
import type { StackConfig } from "../../facts/config";
import { alertDefinitions, DASHBOARD_UIDS, type AlertDefinition } from "../alerts";
import {
  dashboardShell,
  layout,
  panelLinkTo,
  prom,
  stat,
  timeseries,
  type AlertPanel,
  type BuiltDashboards,
  type Spec,
} from "./dashboards";
import type { Dashboard, DashboardLink, Panel, ValueMapping } from "./model";

const UID = DASHBOARD_UIDS.pipeline;

function byUid(alerts: readonly AlertDefinition[], uid: string): AlertDefinition {
  const alert = alerts.find((a) => a.uid === uid);
  if (!alert) throw new Error(`the Pipeline dashboard needs alert ${uid}, which the alert table does not define`);
  return alert;
}

const okFailed = (ok: string, failed: string): ValueMapping[] => [
  {
    type: "value",
    options: { "0": { text: failed, color: "red", index: 0 }, "1": { text: ok, color: "green", index: 1 } },
  },
];

/** A time series of an alert's own expression, with its threshold drawn. */
const alertSeries = (alert: AlertDefinition, title: string, description: string, legend: string, w = 12): Spec =>
  timeseries({
    title,
    description: `${description} Alert ${alert.name} fires when this stays ${alert.op} ${alert.threshold} for ${alert.for}.`,
    targets: [prom("A", alert.expr, legend)],
    field: { unit: "short", min: 0, alert, bars: true },
    w,
    h: 8,
  });

function pipelineSpecs(alerts: readonly AlertDefinition[]): Spec[] {
  const alert = (uid: string) => byUid(alerts, uid);
  const missing = alert("titan-host-missing");
  const reload = alert("titan-prometheus-reload-failed");
  return [
    stat({
      title: "Hosts missing",
      description: `Hosts the stack deployed that Prometheus does not scrape at all (stopped, terminated or untagged). ${missing.name} fires for each after ${missing.for}.`,
      // One series per missing host; none is the healthy state, shown as 0.
      targets: [prom("A", `count(${missing.expr}) or vector(0)`, "missing")],
      // The threshold step starts at 0 (red at 0 and above): the mapping paints the healthy 0 green.
      field: {
        unit: "short",
        decimals: 0,
        alert: missing,
        mappings: [{ type: "value", options: { "0": { text: "none", color: "green", index: 0 } } }],
      },
      w: 6,
      h: 5,
    }),
    stat({
      title: "Scrape targets",
      description: "Prometheus' `up` for every target: DOWN means the scrape failed.",
      targets: [prom("A", "up", "{{job}} · {{instance}}")],
      field: { unit: "", alert: alert("titan-target-down"), mappings: okFailed("UP", "DOWN") },
      w: 18,
      h: 5,
    }),
    timeseries({
      title: "Hosts scraped per role",
      description: "node_exporter targets per role: a stopped host disappears from this count instead of going DOWN.",
      targets: [prom("A", 'count by (role) (up{job="node"})', "{{role}}")],
      field: { unit: "short", min: 0, decimals: 0 },
      w: 12,
      h: 8,
      links: [panelLinkTo(DASHBOARD_UIDS.system, "System dashboard")],
    }),
    timeseries({
      title: "Log entries Alloy sent to Loki",
      description: "Entries per second each web host's Alloy delivered to Loki (loki_write_sent_entries_total).",
      targets: [
        prom(
          "A",
          'sum by (instance) (rate(loki_write_sent_entries_total{job="alloy"}[$__rate_interval]))',
          "{{instance}}",
        ),
      ],
      field: { unit: "short", min: 0 },
      w: 12,
      h: 8,
    }),
    alertSeries(
      alert("titan-logs-dropped"),
      "Log entries dropped by Alloy",
      "Entries Alloy gave up on in 5 minutes: lost lines.",
      "{{instance}}",
    ),
    alertSeries(
      alert("titan-logs-not-reaching-loki"),
      "Pushes to Loki retried",
      "Pushes Alloy had to retry in 5 minutes: Loki unreachable, failing or refusing.",
      "{{instance}}",
    ),
    alertSeries(
      alert("titan-loki-discarding"),
      "Entries Loki discarded",
      "Entries Loki refused in 5 minutes, by reason (rate or stream limits, old or oversized lines).",
      "{{instance}} {{reason}}",
    ),
    stat({
      title: "Prometheus configuration",
      description: `Whether Prometheus' last configuration reload worked. ${reload.name} fires after ${reload.for} of FAILED.`,
      targets: [prom("A", reload.expr, "{{instance}}")],
      field: { unit: "", alert: reload, mappings: okFailed("LOADED", "FAILED") },
      w: 12,
      h: 8,
    }),
    alertSeries(
      alert("titan-grafana-rule-eval-failures"),
      "Grafana rule evaluation failures",
      "Alert-rule evaluations Grafana could not complete in 10 minutes: those rules cannot fire.",
      "{{instance}}",
    ),
    alertSeries(
      alert("titan-grafana-notifications-failing"),
      "Grafana notifications failed",
      "Notifications Grafana could not deliver in 10 minutes, by integration.",
      "{{instance}} {{integration}}",
    ),
  ];
}

export function pipelineDashboard(config: StackConfig): {
  readonly dashboard: Dashboard;
  readonly alertPanels: ReadonlyMap<string, AlertPanel>;
} {
  const alerts = alertDefinitions(config);
  const { panels, alertPanelIds } = layout(pipelineSpecs(alerts));
  const alertPanels = new Map<string, AlertPanel>();
  for (const [alertUid, panelId] of alertPanelIds) {
    // TargetDown is drawn here too but links to the System dashboard, as its definition says.
    if (byUid(alerts, alertUid).dashboardUid === UID) alertPanels.set(alertUid, { dashboardUid: UID, panelId });
  }
  const dashboard = dashboardShell(
    UID,
    "Pipeline",
    "Is the monitoring working? Missing hosts and targets, the log path to Loki, and the alert path.",
    [],
    panels,
  );
  return { dashboard, alertPanels };
}

/**
 * The Logs dashboard's panel of error lines per host: a Loki time series counting
 * level="error" lines grouped by host, the same count the log-based alert compares.
 */
function errorLinesPanel(dashboards: readonly Dashboard[]): Panel | undefined {
  const logs = dashboards.find((d) => d.uid === DASHBOARD_UIDS.logs);
  return logs?.panels.find(
    (p) =>
      p.type === "timeseries" &&
      p.targets.some((t) => /sum by \(host\)/.test(t.expr) && t.expr.includes('level="error"')),
  );
}

/** A header link to the Pipeline dashboard, shaped like the links between the other dashboards. */
const PIPELINE_LINK: DashboardLink = {
  title: "Pipeline",
  type: "link",
  url: `/d/${UID}`,
  icon: "dashboard",
  tooltip: "Titan Pipeline dashboard",
  tags: [],
  asDropdown: false,
  includeVars: true,
  keepTime: true,
  targetBlank: false,
};

/** The three dashboards plus Pipeline (each linking to it), with a panel for every alert. */
export function withPipelineDashboard(config: StackConfig, built: BuiltDashboards): BuiltDashboards {
  const pipeline = pipelineDashboard(config);
  const linked = built.dashboards.map((d) =>
    d.links.some((l) => l.url === PIPELINE_LINK.url) ? d : { ...d, links: [...d.links, PIPELINE_LINK] },
  );
  const dashboards = [...linked, pipeline.dashboard];
  const alertPanels = new Map([...built.alertPanels, ...pipeline.alertPanels]);
  for (const alert of alertDefinitions(config)) {
    if (alert.datasource !== "loki" || alertPanels.has(alert.uid)) continue;
    const panel = errorLinesPanel(dashboards);
    if (!panel || alert.dashboardUid !== DASHBOARD_UIDS.logs) {
      throw new Error(`alert ${alert.uid}: no panel of error lines per host on dashboard ${alert.dashboardUid}`);
    }
    alertPanels.set(alert.uid, { dashboardUid: alert.dashboardUid, panelId: panel.id });
  }
  return { dashboards, alertPanels };
}
