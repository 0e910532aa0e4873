/**
 * The three dashboards (System, Application, Logs) as typed JSON models. Panels that back an
 * alert carry the alert's threshold as a line (from the same alert definition), and the rule
 * links back to that panel, so the dashboard an alert opens shows the breach.
 */
import type { StackConfig } from "../../facts/config";
import { alertDefinitions, DASHBOARD_UIDS, type AlertDefinition } from "../alerts";
import { REMEDIATION_METRIC } from "../../facts/remediation";
import { DASHBOARD_TAG, LOKI_APP_JOB, LOKI_DS, LOG_LEVELS, PROMETHEUS_DS } from "./constants";
import type {
  CustomVariable,
  Dashboard,
  DashboardLink,
  FieldConfig,
  GridPos,
  LogsPanel,
  LokiTarget,
  Panel,
  PanelLink,
  PrometheusTarget,
  QueryVariable,
  StatPanel,
  TextboxVariable,
  TimeSeriesPanel,
  ValueMapping,
  Variable,
} from "./model";

/** Dashboard JSON schema version written by Grafana 12.0; older versions are migrated on load. */
export const DASHBOARD_SCHEMA_VERSION = 41;

const GRID_WIDTH = 24;

/** Where each alert's panel lives, filled in while the dashboards are built. */
export interface AlertPanel {
  readonly dashboardUid: string;
  readonly panelId: number;
}

export interface BuiltDashboards {
  readonly dashboards: readonly Dashboard[];
  /** Alert uid → the panel that shows the alert's value. */
  readonly alertPanels: ReadonlyMap<string, AlertPanel>;
}

// ---------------------------------------------------------------------------------------
// Selectors. Prometheus targets carry job, instance (the Name tag), role and environment;
// Loki streams carry job, host (= instance), environment and level (constants.LOKI_QUERY_LABELS).

const NODE = 'job="node", environment=~"$environment", instance=~"$instance"';
const ROOT_FS = 'mountpoint="/", fstype!~"tmpfs|rootfs"';
const APP = 'job="titan", environment=~"$environment", instance=~"$instance"';
const APP_ENDPOINT = `${APP}, endpoint=~"$endpoint"`;
const REMEDIATION = 'job="remediation", environment=~"$environment", instance=~"$instance"';
const LOGS = `job="${LOKI_APP_JOB}", environment=~"$environment", host=~"$instance"`;
const JOURNAL = 'job="systemd-journal", environment=~"$environment", host=~"$instance"';

/** The label a per-host panel keeps, as the alert rules aggregate (templates/alerts.ts). */
const PER_HOST = "instance";

/**
 * Share of requests answered 5xx, per host or over all selected hosts. The app's 5xx series only
 * exists from its first 5xx (a labelled counter child is created on first use), so a plain ratio
 * is "No data" when nothing failed; `or 0 * requests` gives 0 wherever requests were served.
 */
const errorRatio = (selector: string, by: "host" | "total") => {
  const sum = by === "host" ? `sum by (${PER_HOST})` : "sum";
  const requests = `${sum} (rate(http_requests_total{${selector}}[$__rate_interval]))`;
  const failed = `${sum} (rate(http_requests_total{${selector}, status=~"5.."}[$__rate_interval]))`;
  return `(${failed} / ${requests}) or (0 * ${requests})`;
};
/** Per host, like AppHighLatencyP95's rule, so the panel the alert links to shows the breaching host. */
const latencyQuantile = (q: number) =>
  `histogram_quantile(${q}, sum by (${PER_HOST}, le) (rate(http_request_duration_seconds_bucket{${APP_ENDPOINT}}[$__rate_interval])))`;

// ---------------------------------------------------------------------------------------
// Small builders

const prom = (refId: string, expr: string, legendFormat: string): PrometheusTarget => ({
  refId,
  datasource: PROMETHEUS_DS,
  expr,
  legendFormat,
  range: true,
  instant: false,
  editorMode: "code",
});

const loki = (refId: string, expr: string, legendFormat?: string): LokiTarget => ({
  refId,
  datasource: LOKI_DS,
  expr,
  ...(legendFormat === undefined ? {} : { legendFormat }),
  queryType: "range",
  editorMode: "code",
});

interface FieldOptions {
  readonly unit: string;
  readonly min?: number;
  readonly max?: number;
  readonly decimals?: number;
  /** Draws the alert's threshold and colours values past it. */
  readonly alert?: AlertDefinition;
  readonly bars?: boolean;
  readonly stacked?: boolean;
  readonly mappings?: readonly ValueMapping[];
  readonly timeseries: boolean;
}

function fieldConfig(o: FieldOptions): FieldConfig {
  const steps = !o.alert
    ? [{ color: "green", value: null }]
    : o.alert.op === ">"
      ? [
          { color: "green", value: null },
          { color: o.alert.severity === "critical" ? "red" : "orange", value: o.alert.threshold },
        ]
      : [
          { color: "red", value: null },
          { color: "green", value: o.alert.threshold },
        ];
  return {
    defaults: {
      ...(o.unit ? { unit: o.unit } : {}),
      ...(o.min === undefined ? {} : { min: o.min }),
      ...(o.max === undefined ? {} : { max: o.max }),
      ...(o.decimals === undefined ? {} : { decimals: o.decimals }),
      color: { mode: o.timeseries ? "palette-classic" : "thresholds" },
      thresholds: { mode: "absolute", steps },
      mappings: o.mappings ?? [],
      ...(o.timeseries
        ? {
            custom: {
              drawStyle: o.bars ? "bars" : "line",
              lineWidth: 1,
              fillOpacity: o.bars ? 80 : 10,
              showPoints: "never",
              stacking: { mode: o.stacked ? "normal" : "none", group: "A" },
              thresholdsStyle: { mode: o.alert ? "line" : "off" },
            },
          }
        : {}),
    },
    overrides: [],
  };
}

/** A panel waiting for its id and position. */
interface Spec {
  readonly w: number;
  readonly h: number;
  /** Rows start a new line and span the width. */
  readonly row?: boolean;
  readonly alertUid?: string;
  readonly make: (id: number, gridPos: GridPos) => Panel;
}

interface TimeSeriesSpec {
  readonly title: string;
  readonly description: string;
  readonly targets: readonly PrometheusTarget[] | readonly LokiTarget[];
  readonly field: Omit<FieldOptions, "timeseries">;
  readonly w: number;
  readonly h: number;
  readonly legendTable?: boolean;
  readonly links?: readonly PanelLink[];
}

function timeseries(s: TimeSeriesSpec): Spec {
  return {
    w: s.w,
    h: s.h,
    alertUid: s.field.alert?.uid,
    make: (id, gridPos): TimeSeriesPanel => ({
      id,
      type: "timeseries",
      title: s.title,
      description: s.description,
      gridPos,
      datasource: s.targets[0].datasource,
      targets: s.targets,
      fieldConfig: fieldConfig({ ...s.field, timeseries: true }),
      options: {
        legend: {
          displayMode: s.legendTable ? "table" : "list",
          placement: "bottom",
          showLegend: true,
          calcs: s.legendTable ? ["lastNotNull", "max"] : [],
        },
        tooltip: { mode: "multi", sort: "desc" },
      },
      links: s.links ?? [],
    }),
  };
}

function stat(s: Omit<TimeSeriesSpec, "legendTable"> & { readonly targets: readonly PrometheusTarget[] }): Spec {
  return {
    w: s.w,
    h: s.h,
    alertUid: s.field.alert?.uid,
    make: (id, gridPos): StatPanel => ({
      id,
      type: "stat",
      title: s.title,
      description: s.description,
      gridPos,
      datasource: PROMETHEUS_DS,
      targets: s.targets,
      fieldConfig: fieldConfig({ ...s.field, timeseries: false }),
      options: {
        reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false },
        colorMode: "value",
        graphMode: s.field.mappings ? "none" : "area",
        justifyMode: "auto",
        orientation: "auto",
        textMode: "auto",
      },
      links: s.links ?? [],
    }),
  };
}

function logs(s: {
  title: string;
  description: string;
  expr: string;
  w: number;
  h: number;
  links?: readonly PanelLink[];
}): Spec {
  return {
    w: s.w,
    h: s.h,
    make: (id, gridPos): LogsPanel => ({
      id,
      type: "logs",
      title: s.title,
      description: s.description,
      gridPos,
      datasource: LOKI_DS,
      targets: [loki("A", s.expr)],
      options: {
        showTime: true,
        showLabels: false,
        showCommonLabels: false,
        wrapLogMessage: true,
        prettifyLogMessage: false,
        enableLogDetails: true,
        dedupStrategy: "none",
        sortOrder: "Descending",
      },
      links: s.links ?? [],
    }),
  };
}

function row(title: string): Spec {
  return {
    w: GRID_WIDTH,
    h: 1,
    row: true,
    make: (id, gridPos) => ({ id, type: "row", title, gridPos, collapsed: false, panels: [] }),
  };
}

/** Flows panels left to right, wrapping at the grid width; ids count from 1. */
function layout(specs: readonly Spec[]): { panels: Panel[]; alertPanelIds: Map<string, number> } {
  const panels: Panel[] = [];
  const alertPanelIds = new Map<string, number>();
  let x = 0;
  let y = 0;
  let lineHeight = 0;
  for (const spec of specs) {
    if (spec.w > GRID_WIDTH) throw new Error(`panel wider than the grid (${spec.w})`);
    if (spec.row || x + spec.w > GRID_WIDTH) {
      y += lineHeight;
      x = 0;
      lineHeight = 0;
    }
    const id = panels.length + 1;
    panels.push(spec.make(id, { h: spec.h, w: spec.w, x, y }));
    if (spec.alertUid) alertPanelIds.set(spec.alertUid, id);
    x += spec.w;
    lineHeight = Math.max(lineHeight, spec.h);
    if (spec.row) {
      y += spec.h;
      x = 0;
      lineHeight = 0;
    }
  }
  return { panels, alertPanelIds };
}

// ---------------------------------------------------------------------------------------
// Variables and links

const emptyQueryVariable = { current: {}, options: [], regex: "", sort: 1 } as const;

const environmentVariable: QueryVariable = {
  name: "environment",
  label: "Environment",
  description: "The stack's environment label",
  hide: 0,
  type: "query",
  datasource: PROMETHEUS_DS,
  query: 'label_values(up{job="node"}, environment)',
  definition: 'label_values(up{job="node"}, environment)',
  refresh: 2,
  multi: false,
  includeAll: false,
  ...emptyQueryVariable,
};

const instanceVariable: QueryVariable = {
  name: "instance",
  label: "Host",
  description: "Hosts by Name tag (Prometheus instance, Loki host)",
  hide: 0,
  type: "query",
  datasource: PROMETHEUS_DS,
  query: 'label_values(up{job="node", environment=~"$environment"}, instance)',
  definition: 'label_values(up{job="node", environment=~"$environment"}, instance)',
  refresh: 2,
  multi: true,
  includeAll: true,
  allValue: ".+",
  ...emptyQueryVariable,
};

/** The web hosts only: the app's own metrics. */
const appInstanceVariable: QueryVariable = {
  ...instanceVariable,
  description: "Web hosts running Titan",
  query: 'label_values(http_requests_total{job="titan", environment=~"$environment"}, instance)',
  definition: 'label_values(http_requests_total{job="titan", environment=~"$environment"}, instance)',
};

const endpointVariable: QueryVariable = {
  name: "endpoint",
  label: "Endpoint",
  description: "Route templates served by Titan",
  hide: 0,
  type: "query",
  datasource: PROMETHEUS_DS,
  query: 'label_values(http_requests_total{job="titan"}, endpoint)',
  definition: 'label_values(http_requests_total{job="titan"}, endpoint)',
  refresh: 2,
  multi: true,
  includeAll: true,
  allValue: ".+",
  ...emptyQueryVariable,
};

const allOption = { text: "All", value: "$__all", selected: true };

const levelVariable: CustomVariable = {
  name: "level",
  label: "Level",
  description: "Log level (the logfmt level key)",
  hide: 0,
  type: "custom",
  query: LOG_LEVELS.join(","),
  multi: true,
  includeAll: true,
  allValue: ".+",
  current: allOption,
  options: [allOption, ...LOG_LEVELS.map((level) => ({ text: level, value: level, selected: false }))],
};

/**
 * Grafana's Loki data source inserts a text box's value into the query unescaped: in grafana/grafana
 * public/app/plugins/datasource/loki/datasource.ts, interpolateQueryExpr escapes a variable only
 * when it is multi-value or has All (a text box is neither; older releases escaped `'` alone).
 * The panels therefore quote it with backticks, a raw LogQL string.
 */
const searchVariable: TextboxVariable = {
  name: "search",
  label: "Line contains",
  description: "Only log lines containing this text (exactly as typed; any text but a backtick)",
  hide: 0,
  type: "textbox",
  query: "",
  current: { text: "", value: "", selected: false },
  options: [{ text: "", value: "", selected: false }],
};

const DASHBOARD_TITLES = {
  [DASHBOARD_UIDS.system]: "System",
  [DASHBOARD_UIDS.application]: "Application",
  [DASHBOARD_UIDS.logs]: "Logs",
} as const;

/** Links to the other two dashboards, carrying the time range and the shared variables. */
function linksFrom(uid: string): DashboardLink[] {
  return Object.entries(DASHBOARD_TITLES)
    .filter(([other]) => other !== uid)
    .map(([other, title]) => ({
      title,
      type: "link",
      url: `/d/${other}`,
      icon: "dashboard",
      tooltip: `Titan ${title} dashboard`,
      tags: [],
      asDropdown: false,
      includeVars: true,
      keepTime: true,
      targetBlank: false,
    }));
}

/** A panel link that opens another dashboard with the same time range and variables. */
const panelLinkTo = (uid: keyof typeof DASHBOARD_TITLES, title: string): PanelLink => ({
  title,
  url: `/d/${uid}?\${__url_time_range}&\${__all_variables}`,
  targetBlank: false,
});

function dashboard(
  uid: keyof typeof DASHBOARD_TITLES,
  description: string,
  variables: readonly Variable[],
  panels: readonly Panel[],
): Dashboard {
  return dashboardShell(uid, DASHBOARD_TITLES[uid], description, variables, panels);
}

/** Every Titan dashboard's frame: tag, time range, refresh, links to the others; `title` without the "Titan / " prefix. */
function dashboardShell(
  uid: string,
  title: string,
  description: string,
  variables: readonly Variable[],
  panels: readonly Panel[],
): Dashboard {
  return {
    uid,
    title: `Titan / ${title}`,
    description,
    tags: [DASHBOARD_TAG],
    timezone: "browser",
    editable: false,
    graphTooltip: 1,
    time: { from: "now-1h", to: "now" },
    refresh: "30s",
    schemaVersion: DASHBOARD_SCHEMA_VERSION,
    version: 1,
    links: linksFrom(uid),
    templating: { list: variables },
    panels,
  };
}

// ---------------------------------------------------------------------------------------
// The dashboards

function alertByUid(alerts: readonly AlertDefinition[], uid: string): AlertDefinition {
  const alert = alerts.find((a) => a.uid === uid);
  if (!alert) throw new Error(`no alert definition with uid ${uid}`);
  return alert;
}

function systemSpecs(alerts: readonly AlertDefinition[]): Spec[] {
  const alert = (uid: string) => alertByUid(alerts, uid);
  const upMappings: ValueMapping[] = [
    {
      type: "value",
      options: { "0": { text: "DOWN", color: "red", index: 0 }, "1": { text: "UP", color: "green", index: 1 } },
    },
  ];
  return [
    stat({
      title: "Scrape targets",
      description: "Prometheus' `up` for every target of the selected hosts: DOWN means the scrape failed.",
      targets: [prom("A", 'up{environment=~"$environment", instance=~"$instance"}', "{{job}} · {{instance}}")],
      field: { unit: "", alert: alert("titan-target-down"), mappings: upMappings },
      w: 24,
      h: 4,
    }),
    timeseries({
      title: "CPU utilisation",
      description: "Share of CPU time not idle, averaged over the host's cores.",
      targets: [
        prom(
          "A",
          `100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{${NODE}, mode="idle"}[$__rate_interval])))`,
          "{{instance}}",
        ),
      ],
      field: { unit: "percent", min: 0, max: 100, alert: alert("titan-cpu-high") },
      w: 12,
      h: 8,
    }),
    timeseries({
      title: "Load average",
      description: "1, 5 and 15 minute load averages (runnable and uninterruptible tasks).",
      targets: [
        prom("A", `node_load1{${NODE}}`, "{{instance}} 1m"),
        prom("B", `node_load5{${NODE}}`, "{{instance}} 5m"),
        prom("C", `node_load15{${NODE}}`, "{{instance}} 15m"),
      ],
      field: { unit: "short", min: 0 },
      w: 12,
      h: 8,
    }),
    timeseries({
      title: "Memory used",
      description: "Memory not available to new processes (MemAvailable against MemTotal).",
      targets: [
        prom(
          "A",
          `100 * (1 - node_memory_MemAvailable_bytes{${NODE}} / node_memory_MemTotal_bytes{${NODE}})`,
          "{{instance}}",
        ),
      ],
      field: { unit: "percent", min: 0, max: 100, alert: alert("titan-memory-high") },
      w: 8,
      h: 8,
    }),
    timeseries({
      title: "Memory available",
      description: "MemAvailable: memory that can be given to processes without swapping.",
      targets: [prom("A", `node_memory_MemAvailable_bytes{${NODE}}`, "{{instance}}")],
      field: { unit: "bytes", min: 0 },
      w: 8,
      h: 8,
    }),
    timeseries({
      title: "Root disk used",
      description: "Used share of the root filesystem.",
      targets: [
        prom(
          "A",
          `100 * (1 - node_filesystem_avail_bytes{${NODE}, ${ROOT_FS}} / node_filesystem_size_bytes{${NODE}, ${ROOT_FS}})`,
          "{{instance}}",
        ),
      ],
      field: { unit: "percent", min: 0, max: 100, alert: alert("titan-root-disk-critical") },
      w: 8,
      h: 8,
    }),
    timeseries({
      title: "Disk I/O",
      description: "Bytes read and written per block device.",
      targets: [
        prom(
          "A",
          `sum by (instance, device) (rate(node_disk_read_bytes_total{${NODE}, device!~"loop.*|ram.*"}[$__rate_interval]))`,
          "{{instance}} {{device}} read",
        ),
        prom(
          "B",
          `sum by (instance, device) (rate(node_disk_written_bytes_total{${NODE}, device!~"loop.*|ram.*"}[$__rate_interval]))`,
          "{{instance}} {{device}} written",
        ),
      ],
      field: { unit: "Bps", min: 0 },
      w: 12,
      h: 8,
    }),
    timeseries({
      title: "Network I/O",
      description: "Bytes received and sent per network interface (loopback excluded).",
      targets: [
        prom(
          "A",
          `sum by (instance, device) (rate(node_network_receive_bytes_total{${NODE}, device!="lo"}[$__rate_interval]))`,
          "{{instance}} {{device}} received",
        ),
        prom(
          "B",
          `sum by (instance, device) (rate(node_network_transmit_bytes_total{${NODE}, device!="lo"}[$__rate_interval]))`,
          "{{instance}} {{device}} sent",
        ),
      ],
      field: { unit: "Bps", min: 0 },
      w: 12,
      h: 8,
    }),
    timeseries({
      title: "Clock offset",
      description:
        "How far each host's clock is from its time source, either way, and the kernel's maximum error (16s once nothing disciplines the clock).",
      targets: [
        prom("A", `abs(node_timex_offset_seconds{${NODE}})`, "{{instance}} offset"),
        prom("B", `node_timex_maxerror_seconds{${NODE}}`, "{{instance}} maximum error"),
      ],
      field: { unit: "s", min: 0, alert: alert("titan-clock-skew") },
      w: 12,
      h: 8,
    }),
    stat({
      title: "Clock synchronised",
      description: "The kernel's synchronisation status: NOT SYNCED means no time daemon disciplines the clock.",
      targets: [prom("A", `node_timex_sync_status{${NODE}}`, "{{instance}}")],
      field: {
        unit: "",
        alert: alert("titan-clock-not-synchronising"),
        mappings: [
          {
            type: "value",
            options: {
              "0": { text: "NOT SYNCED", color: "red", index: 0 },
              "1": { text: "SYNCED", color: "green", index: 1 },
            },
          },
        ],
      },
      w: 12,
      h: 8,
    }),
  ];
}

const appErrorRatioPanel = (alert: AlertDefinition, selector: string, w: number, h: number, link: PanelLink) =>
  timeseries({
    title: "Error ratio (5xx / all)",
    description: "Share of requests answered with a 5xx status, per host.",
    targets: [prom("A", errorRatio(selector, "host"), "{{instance}}")],
    field: { unit: "percentunit", min: 0, alert },
    w,
    h,
    links: [link],
  });

function applicationSpecs(alerts: readonly AlertDefinition[]): Spec[] {
  const alert = (uid: string) => alertByUid(alerts, uid);
  return [
    stat({
      title: "Requests",
      description: "HTTP requests served over the selected time range.",
      targets: [prom("A", `sum(increase(http_requests_total{${APP_ENDPOINT}}[$__range]))`, "requests")],
      field: { unit: "short", decimals: 0 },
      w: 6,
      h: 4,
    }),
    stat({
      title: "Request rate",
      description: "HTTP requests per second.",
      targets: [prom("A", `sum(rate(http_requests_total{${APP_ENDPOINT}}[$__rate_interval]))`, "requests/s")],
      field: { unit: "reqps" },
      w: 6,
      h: 4,
    }),
    stat({
      title: "Error ratio",
      description: "Share of requests answered with a 5xx status, all selected hosts.",
      targets: [prom("A", errorRatio(APP_ENDPOINT, "total"), "5xx ratio")],
      field: { unit: "percentunit" },
      w: 6,
      h: 4,
    }),
    stat({
      title: "In flight",
      description: "Requests being served right now.",
      targets: [prom("A", `sum(http_requests_in_flight{${APP}})`, "in flight")],
      field: { unit: "short", decimals: 0 },
      w: 6,
      h: 4,
    }),
    timeseries({
      title: "Request rate by endpoint",
      description: "Requests per second by route template.",
      targets: [
        prom("A", `sum by (endpoint) (rate(http_requests_total{${APP_ENDPOINT}}[$__rate_interval]))`, "{{endpoint}}"),
      ],
      field: { unit: "reqps", min: 0 },
      w: 12,
      h: 8,
      legendTable: true,
    }),
    timeseries({
      title: "Responses by status",
      description: "Requests per second by HTTP status.",
      targets: [
        prom("A", `sum by (status) (rate(http_requests_total{${APP_ENDPOINT}}[$__rate_interval]))`, "{{status}}"),
      ],
      field: { unit: "reqps", min: 0, stacked: true },
      w: 12,
      h: 8,
    }),
    appErrorRatioPanel(
      alert("titan-app-error-ratio"),
      APP_ENDPOINT,
      12,
      8,
      panelLinkTo(DASHBOARD_UIDS.logs, "Error logs for this time range"),
    ),
    timeseries({
      title: "Latency p50 / p95 / p99",
      description: "Request duration quantiles per host from the http_request_duration_seconds histogram.",
      targets: [
        prom("A", latencyQuantile(0.5), "{{instance}} p50"),
        prom("B", latencyQuantile(0.95), "{{instance}} p95"),
        prom("C", latencyQuantile(0.99), "{{instance}} p99"),
      ],
      field: { unit: "s", min: 0, alert: alert("titan-app-latency-p95") },
      w: 12,
      h: 8,
    }),
    timeseries({
      title: "Requests in flight",
      description: "Requests being served, per host (sum over gunicorn workers).",
      targets: [prom("A", `sum by (instance) (http_requests_in_flight{${APP}})`, "{{instance}}")],
      field: { unit: "short", min: 0 },
      w: 8,
      h: 8,
    }),
    timeseries({
      title: "Transactions created",
      description: "Transactions stored by POST /api/transactions, per second.",
      targets: [
        prom(
          "A",
          `sum by (instance) (rate(titan_transactions_created_total{${APP}}[$__rate_interval]))`,
          "{{instance}}",
        ),
      ],
      field: { unit: "ops", min: 0 },
      w: 8,
      h: 8,
    }),
    timeseries({
      title: "Process failures",
      description: "Simulated failures returned by /process, per second.",
      targets: [
        prom("A", `sum by (instance) (rate(titan_process_failures_total{${APP}}[$__rate_interval]))`, "{{instance}}"),
      ],
      field: { unit: "ops", min: 0 },
      w: 8,
      h: 8,
    }),
    timeseries({
      title: "Log lines by level",
      description: "Lines written to app.log and error.log per second, by level (the app's own counter).",
      targets: [prom("A", `sum by (level) (rate(titan_log_lines_total{${APP}}[$__rate_interval]))`, "{{level}}")],
      field: { unit: "short", min: 0, stacked: true },
      w: 12,
      h: 8,
    }),
    logs({
      title: "Error logs",
      description: "The app's error-level lines from Loki for the selected hosts.",
      expr: `{${LOGS}, level="error"}`,
      w: 12,
      h: 8,
      links: [panelLinkTo(DASHBOARD_UIDS.logs, "All logs")],
    }),
    ...selfHealingSpecs(alerts),
  ];
}

/**
 * An alert's own expression narrowed to the dashboard's selection: its `job="..."` matcher
 * becomes `selector`, so the panel plots exactly what the rule compares, for the chosen hosts.
 */
function narrowed(alert: AlertDefinition, job: string, selector: string): string {
  const matcher = `job="${job}"`;
  if (!alert.expr.includes(matcher)) throw new Error(`alert ${alert.uid}: no ${matcher} in ${alert.expr}`);
  return alert.expr.replaceAll(matcher, selector);
}

/** The remediation loop: whether the app answers, what the agents decided, and the two alerts on them. */
function selfHealingSpecs(alerts: readonly AlertDefinition[]): Spec[] {
  const notAnswering = alertByUid(alerts, "titan-app-not-answering");
  const failing = alertByUid(alerts, "titan-remediation-failing");
  const repeated = alertByUid(alerts, "titan-remediation-repeated");
  return [
    row("Self-healing"),
    stat({
      title: "App answering",
      description:
        "Whether Prometheus' last scrape of the app succeeded, per host: NO for a minute raises AppNotAnswering, which the remediation agent answers by restarting the app.",
      targets: [prom("A", narrowed(notAnswering, "titan", APP), "{{instance}}")],
      field: {
        unit: "",
        alert: notAnswering,
        mappings: [
          {
            type: "value",
            options: { "0": { text: "NO", color: "red", index: 0 }, "1": { text: "YES", color: "green", index: 1 } },
          },
        ],
      },
      w: 6,
      h: 8,
    }),
    timeseries({
      title: "Self-healing actions",
      description:
        "The remediation agents' decisions per interval, by action and result: acted, failed, refused, rate_limited, dry_run, duplicate, disabled (the journal of titan-remediation has one line for each).",
      targets: [
        prom(
          "A",
          `sum by (action, result) (increase(${REMEDIATION_METRIC}{${REMEDIATION}}[$__rate_interval]))`,
          "{{action}} {{result}}",
        ),
      ],
      field: { unit: "short", min: 0, bars: true, stacked: true },
      w: 18,
      h: 8,
      legendTable: true,
    }),
    timeseries({
      title: "Failed fixes (30m)",
      description:
        "Fixes that failed in the last 30 minutes, per host and action, on every host: above 0 raises RemediationFailing.",
      // The rule's own expression and window (every host: the legend names each).
      targets: [prom("A", failing.expr, "{{instance}} {{action}}")],
      field: { unit: "short", min: 0, alert: failing },
      w: 12,
      h: 8,
    }),
    timeseries({
      title: "Fixes needed (1h)",
      description:
        "Per host and action in the last hour, on every host: fixes applied plus three for each one the rate limit held back; above 2 raises RemediationKeepsBeingNeeded.",
      targets: [prom("A", repeated.expr, "{{instance}} {{action}}")],
      field: { unit: "short", min: 0, alert: repeated },
      w: 12,
      h: 8,
    }),
  ];
}

function logsSpecs(alerts: readonly AlertDefinition[]): Spec[] {
  // A raw string: Grafana inserts a text box's value as typed (see searchVariable), and nothing
  // is special between backticks but a backtick, so `"` and `\` typed there stay plain text.
  const search = " |= `$search`";
  return [
    timeseries({
      title: "Log volume by level",
      description: "Lines per interval from the app's log files, by level.",
      targets: [
        loki("A", `sum by (level) (count_over_time({${LOGS}, level=~"$level"}${search} [$__interval]))`, "{{level}}"),
      ],
      field: { unit: "short", min: 0, bars: true, stacked: true },
      w: 24,
      h: 7,
    }),
    row("Incident view: error rate next to error logs"),
    appErrorRatioPanel(
      alertByUid(alerts, "titan-app-error-ratio"),
      APP,
      12,
      10,
      panelLinkTo(DASHBOARD_UIDS.application, "Application dashboard"),
    ),
    logs({
      title: "Error logs",
      description: "Error-level lines from the app, newest first.",
      expr: `{${LOGS}, level="error"}${search}`,
      w: 12,
      h: 10,
      links: [panelLinkTo(DASHBOARD_UIDS.application, "Application dashboard")],
    }),
    timeseries({
      title: "Error lines per host",
      description: "Error-level lines per interval, by host.",
      targets: [
        loki("A", `sum by (host) (count_over_time({${LOGS}, level="error"}${search} [$__interval]))`, "{{host}}"),
      ],
      field: { unit: "short", min: 0, bars: true },
      w: 24,
      h: 6,
    }),
    row("All logs"),
    logs({
      title: "Titan logs",
      description: "The app's log lines filtered by host, level and text.",
      expr: `{${LOGS}, level=~"$level"}${search}`,
      w: 24,
      h: 14,
    }),
    logs({
      title: "System journal",
      description: "systemd journal of the selected web hosts (titan, titan-traffic, Alloy, node_exporter units).",
      expr: `{${JOURNAL}}${search}`,
      w: 24,
      h: 10,
      links: [panelLinkTo(DASHBOARD_UIDS.system, "System dashboard")],
    }),
  ];
}

export function buildDashboards(config: StackConfig): BuiltDashboards {
  const alerts = alertDefinitions(config);
  const alertPanels = new Map<string, AlertPanel>();
  const build = (
    uid: keyof typeof DASHBOARD_TITLES,
    description: string,
    variables: readonly Variable[],
    specs: readonly Spec[],
  ): Dashboard => {
    const { panels, alertPanelIds } = layout(specs);
    for (const [alertUid, panelId] of alertPanelIds) {
      // An alert shown on several dashboards links to the one its definition names.
      if (alertByUid(alerts, alertUid).dashboardUid === uid) alertPanels.set(alertUid, { dashboardUid: uid, panelId });
    }
    return dashboard(uid, description, variables, panels);
  };
  const dashboards = [
    build(
      DASHBOARD_UIDS.system,
      "Every host: scrape health, CPU, load, memory, root disk, disk and network I/O.",
      [environmentVariable, instanceVariable],
      systemSpecs(alerts),
    ),
    build(
      DASHBOARD_UIDS.application,
      "The Titan app: traffic, errors, latency, saturation, business counters and the self-healing loop.",
      [environmentVariable, appInstanceVariable, endpointVariable],
      applicationSpecs(alerts),
    ),
    build(
      DASHBOARD_UIDS.logs,
      "The app's logs from Loki next to its error rate, for incidents.",
      // Only web hosts ship logs (Alloy runs there), so only they are offered.
      [environmentVariable, appInstanceVariable, levelVariable, searchVariable],
      logsSpecs(alerts),
    ),
  ];
  return { dashboards, alertPanels };
}

/** Builders the Pipeline dashboard (pipelineDashboard.ts) shares with these three. */
export { dashboardShell, layout, linksFrom, panelLinkTo, prom, stat, timeseries, type Spec };
