/**
 * The subset of Grafana's file formats this project renders, as TypeScript types (target:
 * Grafana 12.x). Every rendered file is built from these types, and the tests check the
 * rendered files against the same key lists, so a misspelt key fails the build or a test
 * instead of being silently ignored by Grafana's lenient YAML/JSON readers.
 */

/** A data source reference as dashboards and queries carry it. */
export interface DataSourceRef {
  readonly type: string;
  readonly uid: string;
}

// ---------------------------------------------------------------------------------------
// Data source provisioning: provisioning/datasources/*.yaml (apiVersion 1)

export interface PrometheusJsonData {
  readonly httpMethod: "POST" | "GET";
  /** Lowest step Grafana uses, normally the scrape interval. */
  readonly timeInterval: string;
  readonly prometheusType: "Prometheus";
  /** Grafana-managed alerting owns the rules; hide Prometheus' own rule UI. */
  readonly manageAlerts: boolean;
  /**
   * With metricsStore=amp: sign every request with SigV4. Grafana's data source service reads
   * these keys (pkg/services/datasources/service/datasource.go httpClientOptions: sigV4Auth,
   * sigV4Region, sigV4AuthType, ...) and the Prometheus data source signs for service "aps"
   * (pkg/tsdb/prometheus/prometheus.go extendClientOpts).
   */
  readonly sigV4Auth?: true;
  /** grafana-aws-sdk's auth type names (pkg/awsds/settings.go): ec2_iam_role is the instance's role. */
  readonly sigV4AuthType?: "ec2_iam_role";
  readonly sigV4Region?: string;
}

export interface LokiJsonData {
  readonly maxLines: number;
  readonly timeout: number;
}

export interface DataSourceConfig {
  readonly name: string;
  readonly uid: string;
  readonly type: "prometheus" | "loki";
  readonly access: "proxy";
  readonly orgId: number;
  readonly url: string;
  readonly isDefault: boolean;
  readonly editable: boolean;
  readonly jsonData: PrometheusJsonData | LokiJsonData;
}

export interface DataSourcesFile {
  readonly apiVersion: 1;
  /** Remove provisioned data sources that are no longer in any file (Grafana 11.1+). */
  readonly prune: boolean;
  readonly datasources: readonly DataSourceConfig[];
}

// ---------------------------------------------------------------------------------------
// Dashboard provider provisioning: provisioning/dashboards/*.yaml (apiVersion 1)

export interface DashboardProvider {
  readonly name: string;
  readonly orgId: number;
  /** Folder title; dashboards and alert rules share it. */
  readonly folder: string;
  readonly type: "file";
  readonly disableDeletion: boolean;
  readonly updateIntervalSeconds: number;
  readonly allowUiUpdates: boolean;
  readonly options: { readonly path: string; readonly foldersFromFilesStructure: boolean };
}

export interface DashboardProvidersFile {
  readonly apiVersion: 1;
  readonly providers: readonly DashboardProvider[];
}

// ---------------------------------------------------------------------------------------
// Dashboard JSON model (the subset used here)

export interface GridPos {
  readonly h: number;
  readonly w: number;
  readonly x: number;
  readonly y: number;
}

export interface PrometheusTarget {
  readonly refId: string;
  readonly datasource: DataSourceRef;
  readonly expr: string;
  readonly legendFormat: string;
  readonly range: boolean;
  readonly instant: boolean;
  readonly editorMode: "code";
}

export interface LokiTarget {
  readonly refId: string;
  readonly datasource: DataSourceRef;
  readonly expr: string;
  readonly legendFormat?: string;
  readonly queryType: "range";
  readonly editorMode: "code";
}

export type Target = PrometheusTarget | LokiTarget;

export interface ThresholdStep {
  readonly color: string;
  /** null is the base step ("-Infinity"). */
  readonly value: number | null;
}

export interface ValueMapping {
  readonly type: "value";
  readonly options: Readonly<Record<string, { readonly text: string; readonly color: string; readonly index: number }>>;
}

export interface FieldDefaults {
  readonly unit?: string;
  readonly min?: number;
  readonly max?: number;
  readonly decimals?: number;
  readonly color: { readonly mode: "palette-classic" | "thresholds" | "fixed"; readonly fixedColor?: string };
  readonly thresholds: { readonly mode: "absolute"; readonly steps: readonly ThresholdStep[] };
  readonly mappings: readonly ValueMapping[];
  readonly custom?: {
    readonly drawStyle: "line" | "bars";
    readonly lineWidth: number;
    readonly fillOpacity: number;
    readonly showPoints: "auto" | "never";
    readonly stacking: { readonly mode: "none" | "normal"; readonly group: string };
    readonly thresholdsStyle: { readonly mode: "off" | "line" | "dashed" };
  };
}

export interface FieldConfig {
  readonly defaults: FieldDefaults;
  readonly overrides: readonly unknown[];
}

export interface PanelLink {
  readonly title: string;
  readonly url: string;
  readonly targetBlank: boolean;
}

interface PanelBase {
  readonly id: number;
  readonly title: string;
  readonly gridPos: GridPos;
}

export interface TimeSeriesPanel extends PanelBase {
  readonly type: "timeseries";
  readonly description: string;
  readonly datasource: DataSourceRef;
  readonly targets: readonly Target[];
  readonly fieldConfig: FieldConfig;
  readonly options: {
    readonly legend: {
      readonly displayMode: "list" | "table";
      readonly placement: "bottom" | "right";
      readonly showLegend: boolean;
      readonly calcs: readonly string[];
    };
    readonly tooltip: { readonly mode: "single" | "multi"; readonly sort: "none" | "desc" };
  };
  readonly links: readonly PanelLink[];
}

export interface StatPanel extends PanelBase {
  readonly type: "stat";
  readonly description: string;
  readonly datasource: DataSourceRef;
  readonly targets: readonly Target[];
  readonly fieldConfig: FieldConfig;
  readonly options: {
    readonly reduceOptions: { readonly calcs: readonly string[]; readonly fields: string; readonly values: boolean };
    readonly colorMode: "value" | "background" | "none";
    readonly graphMode: "area" | "none";
    readonly justifyMode: "auto";
    readonly orientation: "auto" | "horizontal" | "vertical";
    readonly textMode: "auto" | "value_and_name";
  };
  readonly links: readonly PanelLink[];
}

export interface LogsPanel extends PanelBase {
  readonly type: "logs";
  readonly description: string;
  readonly datasource: DataSourceRef;
  readonly targets: readonly LokiTarget[];
  readonly options: {
    readonly showTime: boolean;
    readonly showLabels: boolean;
    readonly showCommonLabels: boolean;
    readonly wrapLogMessage: boolean;
    readonly prettifyLogMessage: boolean;
    readonly enableLogDetails: boolean;
    readonly dedupStrategy: "none";
    readonly sortOrder: "Descending" | "Ascending";
  };
  readonly links: readonly PanelLink[];
}

export interface RowPanel extends PanelBase {
  readonly type: "row";
  readonly collapsed: boolean;
  readonly panels: readonly never[];
}

export type Panel = TimeSeriesPanel | StatPanel | LogsPanel | RowPanel;
export type QueryPanel = Exclude<Panel, RowPanel>;

export interface VariableOption {
  readonly text: string;
  readonly value: string;
  readonly selected: boolean;
}

interface VariableBase {
  readonly name: string;
  readonly label: string;
  readonly description: string;
  /** 0 = shown, 2 = hidden. */
  readonly hide: 0 | 2;
}

export interface QueryVariable extends VariableBase {
  readonly type: "query";
  readonly datasource: DataSourceRef;
  /** The classic `label_values(...)` form, which every Grafana version reads. */
  readonly query: string;
  readonly definition: string;
  /** 2 = refresh on time-range change. */
  readonly refresh: 1 | 2;
  readonly multi: boolean;
  readonly includeAll: boolean;
  readonly allValue?: string;
  readonly sort: 1;
  readonly regex: string;
  readonly current: Readonly<Record<string, never>>;
  readonly options: readonly never[];
}

export interface CustomVariable extends VariableBase {
  readonly type: "custom";
  /** Comma-separated values. */
  readonly query: string;
  readonly multi: boolean;
  readonly includeAll: boolean;
  readonly allValue?: string;
  readonly current: VariableOption;
  readonly options: readonly VariableOption[];
}

export interface TextboxVariable extends VariableBase {
  readonly type: "textbox";
  readonly query: string;
  readonly current: VariableOption;
  readonly options: readonly VariableOption[];
}

export type Variable = QueryVariable | CustomVariable | TextboxVariable;

export interface DashboardLink {
  readonly title: string;
  readonly type: "link";
  readonly url: string;
  readonly icon: "dashboard" | "doc";
  readonly tooltip: string;
  readonly tags: readonly string[];
  readonly asDropdown: boolean;
  readonly includeVars: boolean;
  readonly keepTime: boolean;
  readonly targetBlank: boolean;
}

export interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly timezone: "browser";
  readonly editable: boolean;
  /** 1 = shared crosshair across panels. */
  readonly graphTooltip: 0 | 1 | 2;
  readonly time: { readonly from: string; readonly to: string };
  readonly refresh: string;
  readonly schemaVersion: number;
  readonly version: number;
  readonly links: readonly DashboardLink[];
  readonly templating: { readonly list: readonly Variable[] };
  readonly panels: readonly Panel[];
}

// ---------------------------------------------------------------------------------------
// Alerting file provisioning: provisioning/alerting/*.yaml (apiVersion 1)

export interface RelativeTimeRange {
  readonly from: number;
  readonly to: number;
}

export interface PrometheusAlertQueryModel {
  readonly refId: string;
  readonly datasource: DataSourceRef;
  readonly expr: string;
  readonly instant: true;
  readonly range: false;
  readonly editorMode: "code";
  readonly legendFormat: string;
  readonly intervalMs: number;
  readonly maxDataPoints: number;
}

/**
 * A LogQL alert query. Grafana's Loki backend (grafana/grafana pkg/tsdb/loki/parse_query.go)
 * accepts queryType "instant" or "range" and refuses any other value.
 */
export interface LokiAlertQueryModel {
  readonly refId: string;
  readonly datasource: DataSourceRef;
  readonly expr: string;
  readonly queryType: "instant";
  readonly editorMode: "code";
  readonly intervalMs: number;
  readonly maxDataPoints: number;
}

export interface ReduceExpressionModel {
  readonly refId: string;
  readonly datasource: DataSourceRef;
  readonly type: "reduce";
  readonly expression: string;
  readonly reducer: "last";
}

export interface ThresholdExpressionModel {
  readonly refId: string;
  readonly datasource: DataSourceRef;
  readonly type: "threshold";
  readonly expression: string;
  readonly conditions: readonly [{ readonly evaluator: { readonly type: "gt" | "lt"; readonly params: [number] } }];
}

export interface AlertQuery<M> {
  readonly refId: string;
  readonly relativeTimeRange?: RelativeTimeRange;
  readonly datasourceUid: string;
  readonly model: M;
}

export type AnyAlertQuery =
  | AlertQuery<PrometheusAlertQueryModel>
  | AlertQuery<LokiAlertQueryModel>
  | AlertQuery<ReduceExpressionModel>
  | AlertQuery<ThresholdExpressionModel>;

export interface AlertRule {
  readonly uid: string;
  readonly title: string;
  readonly condition: string;
  readonly data: readonly AnyAlertQuery[];
  readonly dashboardUid: string;
  readonly panelId: number;
  readonly noDataState: "OK" | "NoData" | "Alerting";
  readonly execErrState: "OK" | "Error" | "Alerting";
  readonly for: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly isPaused: boolean;
}

export interface AlertRuleGroup {
  readonly orgId: number;
  readonly name: string;
  /** Folder title (shared with the dashboards' folder). */
  readonly folder: string;
  readonly interval: string;
  readonly rules: readonly AlertRule[];
}

export interface SlackSettings {
  /** An environment reference such as ${TITAN_SLACK_WEBHOOK_URL}, never the URL itself. */
  readonly url: string;
  readonly title: string;
  readonly text: string;
}

/** Grafana's HMAC signing of a webhook (grafana/alerting receivers/webhook/v1/config.go hmacConfig). */
export interface WebhookHmacConfig {
  /** An environment reference such as ${TITAN_REMEDIATION_HMAC_SECRET}, never the secret itself. */
  readonly secret: string;
  readonly header: string;
  /** When set, the signed bytes are "<unix seconds>:" + body and the seconds travel in this header. */
  readonly timestampHeader: string;
}

export interface WebhookSettings {
  readonly url: string;
  readonly httpMethod: "POST";
  readonly hmacConfig: WebhookHmacConfig;
}

export type ContactPointReceiver =
  | {
      readonly uid: string;
      readonly type: "slack";
      readonly settings: SlackSettings;
      readonly disableResolveMessage: boolean;
    }
  | {
      readonly uid: string;
      readonly type: "webhook";
      readonly settings: WebhookSettings;
      readonly disableResolveMessage: boolean;
    };

export interface ContactPoint {
  readonly orgId: number;
  readonly name: string;
  readonly receivers: readonly ContactPointReceiver[];
}

export type MatchOperator = "=" | "!=" | "=~" | "!~";
export type ObjectMatcher = readonly [string, MatchOperator, string];

export interface Route {
  readonly receiver: string;
  readonly object_matchers: readonly ObjectMatcher[];
  readonly group_wait: string;
  readonly group_interval: string;
  readonly repeat_interval: string;
  readonly continue: boolean;
}

/** The root of the notification policy tree; provisioning it replaces the whole tree. */
export interface NotificationPolicy {
  readonly orgId: number;
  readonly receiver: string;
  readonly group_by: readonly string[];
  readonly group_wait: string;
  readonly group_interval: string;
  readonly repeat_interval: string;
  readonly routes: readonly Route[];
}

export interface NotificationTemplate {
  readonly orgId: number;
  readonly name: string;
  readonly template: string;
}

export interface AlertingFile {
  readonly apiVersion: 1;
  readonly groups?: readonly AlertRuleGroup[];
  /** Rules to delete by uid (provisioning never deletes a rule that is merely left out). */
  readonly deleteRules?: readonly { readonly orgId: number; readonly uid: string }[];
  readonly contactPoints?: readonly ContactPoint[];
  readonly deleteContactPoints?: readonly { readonly orgId: number; readonly uid: string }[];
  readonly policies?: readonly NotificationPolicy[];
  readonly templates?: readonly NotificationTemplate[];
}
