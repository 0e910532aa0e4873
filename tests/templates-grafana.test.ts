import assert from "node:assert/strict";
import { describe, it } from "node:test";
import YAML from "yaml";
import { addressPlan, MAX_WEB_HOSTS } from "../facts/addressing";
import { physicalName } from "../facts/naming";
import type { StackConfig } from "../facts/config";
import { loadConfig } from "../infra/config";
import { SERVICES } from "../facts/topology";
import { ALERT_GROUP, alertDefinitions, DASHBOARD_UIDS } from "../templates/alerts";
import { TITAN_LOG_RULES } from "../templates/alloy/config";
import {
  assertRuleUid,
  DASHBOARDS_DIR,
  DATASOURCE_UIDS,
  DEFAULT_RECEIVER,
  GRAFANA_PATHS,
  LOG_LEVELS,
  LOKI_QUERY_LABELS,
  renderGrafanaFiles,
  SLACK_CONTACT_POINT,
  SLACK_TEXT_TEMPLATE,
  SLACK_TITLE_TEMPLATE,
  SLACK_WEBHOOK_ENV,
  REMEDIATION_HMAC_SECRET_ENV,
  type AlertingFile,
  type Dashboard,
  type DashboardProvidersFile,
  type DataSourcesFile,
  type Panel,
  type QueryPanel,
  type Variable,
} from "../templates/grafana";
import { SCRAPE_JOBS, SELF_JOB } from "../facts/scrapeJobs";
import { addressOf, type RenderedFile, type TemplateContext } from "../templates/types";
import { ampTestContext } from "./support/render";

// ---------------------------------------------------------------------------------------
// Fixtures

const WEBHOOK = "https://hooks.slack.com/services/T0TITAN00/B0TITAN00/s3cr3tW3bh00kT0k3nXYZ";

function configWith(values: Record<string, string> = {}): StackConfig {
  const all: Record<string, string> = { allowedCidrs: '["203.0.113.7/32"]', "aws:region": "us-east-1", ...values };
  return loadConfig(
    { get: (key) => all[key], isSecret: (key) => key === "slackWebhookUrl" },
    { project: "titan-observability", stack: "dev" },
  );
}

function contextFor(config: StackConfig): TemplateContext {
  return { config, plan: addressPlan(config.vpcCidr, config.webCount), lokiBucket: "titan-loki-test" };
}

function render(slackWebhookConfigured: boolean, values: Record<string, string> = {}): RenderedFile[] {
  const config = configWith(slackWebhookConfigured ? { slackWebhookUrl: WEBHOOK, ...values } : values);
  return renderGrafanaFiles(contextFor(config), { slackWebhookConfigured });
}

function fileAt(files: readonly RenderedFile[], path: string): RenderedFile {
  const file = files.find((f) => f.path === path);
  assert.ok(file, `no rendered file at ${path}`);
  return file;
}

const yamlAt = <T>(files: readonly RenderedFile[], path: string): T => YAML.parse(fileAt(files, path).content) as T;

function dashboardsOf(files: readonly RenderedFile[]): Dashboard[] {
  return files.filter((f) => f.path.startsWith(`${DASHBOARDS_DIR}/`)).map((f) => JSON.parse(f.content) as Dashboard);
}

function dashboardByUid(files: readonly RenderedFile[], uid: string): Dashboard {
  const dashboard = dashboardsOf(files).find((d) => d.uid === uid);
  assert.ok(dashboard, `no dashboard ${uid}`);
  return dashboard;
}

const queryPanels = (d: Dashboard): QueryPanel[] => d.panels.filter((p): p is QueryPanel => p.type !== "row");
const rulesOf = (files: readonly RenderedFile[]) =>
  yamlAt<AlertingFile>(files, GRAFANA_PATHS.alertRules).groups?.flatMap((g) => g.rules) ?? [];

const NO_WEBHOOK = render(false);
const WITH_WEBHOOK = render(true);
const BOTH = [NO_WEBHOOK, WITH_WEBHOOK];

// ---------------------------------------------------------------------------------------
// A small shape checker: required keys present, no key outside the known lists. Grafana's
// readers ignore unknown keys, so a misspelt key would otherwise pass silently.

interface Shape {
  readonly req: readonly string[];
  readonly opt?: readonly string[];
  /** Shapes of nested objects, or of every element of a nested array. */
  readonly nested?: Readonly<Record<string, ShapeOf>>;
}
type ShapeOf = Shape | ((value: Record<string, unknown>) => Shape);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function checkShape(value: unknown, shapeOf: ShapeOf, where: string, problems: string[] = []): string[] {
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkShape(item, shapeOf, `${where}[${i}]`, problems));
    return problems;
  }
  if (!isObject(value)) {
    problems.push(`${where}: expected an object`);
    return problems;
  }
  const shape = typeof shapeOf === "function" ? shapeOf(value) : shapeOf;
  const known = new Set([...shape.req, ...(shape.opt ?? [])]);
  for (const key of shape.req) if (!(key in value)) problems.push(`${where}: missing ${key}`);
  for (const key of Object.keys(value)) if (!known.has(key)) problems.push(`${where}: unknown key ${key}`);
  for (const [key, nested] of Object.entries(shape.nested ?? {})) {
    if (key in value) checkShape(value[key], nested, `${where}.${key}`, problems);
  }
  return problems;
}

const LEAF: Shape = { req: [] };
const DS_REF: Shape = { req: ["type", "uid"] };
const GRID_POS: Shape = { req: ["h", "w", "x", "y"] };
const PANEL_LINK: Shape = { req: ["title", "url", "targetBlank"] };

const DATASOURCES_FILE: Shape = {
  req: ["apiVersion", "prune", "datasources"],
  nested: {
    datasources: (ds) => ({
      req: ["name", "uid", "type", "access", "orgId", "url", "isDefault", "editable", "jsonData"],
      nested: {
        jsonData:
          ds.type === "prometheus"
            ? {
                req: ["httpMethod", "timeInterval", "prometheusType", "manageAlerts"],
                // metricsStore=amp only (tests/metrics-store-templates.test.ts).
                opt: ["sigV4Auth", "sigV4AuthType", "sigV4Region"],
              }
            : { req: ["maxLines", "timeout"] },
      },
    }),
  },
};

const PROVIDERS_FILE: Shape = {
  req: ["apiVersion", "providers"],
  nested: {
    providers: {
      req: ["name", "orgId", "folder", "type", "disableDeletion", "updateIntervalSeconds", "allowUiUpdates", "options"],
      nested: { options: { req: ["path", "foldersFromFilesStructure"] } },
    },
  },
};

const TARGET = (t: Record<string, unknown>): Shape =>
  isObject(t.datasource) && t.datasource.type === "loki"
    ? {
        req: ["refId", "datasource", "expr", "queryType", "editorMode"],
        opt: ["legendFormat"],
        nested: { datasource: DS_REF },
      }
    : {
        req: ["refId", "datasource", "expr", "legendFormat", "range", "instant", "editorMode"],
        nested: { datasource: DS_REF },
      };

const FIELD_CONFIG: Shape = {
  req: ["defaults", "overrides"],
  nested: {
    defaults: {
      req: ["color", "thresholds", "mappings"],
      opt: ["unit", "min", "max", "decimals", "custom"],
      nested: {
        color: { req: ["mode"], opt: ["fixedColor"] },
        thresholds: { req: ["mode", "steps"], nested: { steps: { req: ["color", "value"] } } },
        mappings: { req: ["type", "options"] },
        custom: {
          req: ["drawStyle", "lineWidth", "fillOpacity", "showPoints", "stacking", "thresholdsStyle"],
          nested: { stacking: { req: ["mode", "group"] }, thresholdsStyle: { req: ["mode"] } },
        },
      },
    },
  },
};

const PANEL = (p: Record<string, unknown>): Shape => {
  const base = ["id", "type", "title", "gridPos"];
  switch (p.type) {
    case "row":
      return { req: [...base, "collapsed", "panels"], nested: { gridPos: GRID_POS } };
    case "logs":
      return {
        req: [...base, "description", "datasource", "targets", "options", "links"],
        nested: {
          gridPos: GRID_POS,
          datasource: DS_REF,
          targets: TARGET,
          links: PANEL_LINK,
          options: {
            req: [
              "showTime",
              "showLabels",
              "showCommonLabels",
              "wrapLogMessage",
              "prettifyLogMessage",
              "enableLogDetails",
              "dedupStrategy",
              "sortOrder",
            ],
          },
        },
      };
    case "stat":
      return {
        req: [...base, "description", "datasource", "targets", "fieldConfig", "options", "links"],
        nested: {
          gridPos: GRID_POS,
          datasource: DS_REF,
          targets: TARGET,
          fieldConfig: FIELD_CONFIG,
          links: PANEL_LINK,
          options: {
            req: ["reduceOptions", "colorMode", "graphMode", "justifyMode", "orientation", "textMode"],
            nested: { reduceOptions: { req: ["calcs", "fields", "values"] } },
          },
        },
      };
    case "timeseries":
      return {
        req: [...base, "description", "datasource", "targets", "fieldConfig", "options", "links"],
        nested: {
          gridPos: GRID_POS,
          datasource: DS_REF,
          targets: TARGET,
          fieldConfig: FIELD_CONFIG,
          links: PANEL_LINK,
          options: {
            req: ["legend", "tooltip"],
            nested: {
              legend: { req: ["displayMode", "placement", "showLegend", "calcs"] },
              tooltip: { req: ["mode", "sort"] },
            },
          },
        },
      };
    default:
      return { req: ["a known panel type, not " + String(p.type)] };
  }
};

const OPTION: Shape = { req: ["text", "value", "selected"] };
const VARIABLE = (v: Record<string, unknown>): Shape => {
  const base = ["name", "label", "description", "hide", "type"];
  switch (v.type) {
    case "query":
      return {
        req: [...base, "datasource", "query", "definition", "refresh", "multi", "includeAll", "sort", "regex"],
        opt: ["allValue", "current", "options"],
        nested: { datasource: DS_REF, current: LEAF },
      };
    case "custom":
      return {
        req: [...base, "query", "multi", "includeAll", "current", "options"],
        opt: ["allValue"],
        nested: { current: OPTION, options: OPTION },
      };
    case "textbox":
      return { req: [...base, "query", "current", "options"], nested: { current: OPTION, options: OPTION } };
    default:
      return { req: ["a known variable type, not " + String(v.type)] };
  }
};

const DASHBOARD: Shape = {
  req: [
    "uid",
    "title",
    "description",
    "tags",
    "timezone",
    "editable",
    "graphTooltip",
    "time",
    "refresh",
    "schemaVersion",
    "version",
    "links",
    "templating",
    "panels",
  ],
  nested: {
    time: { req: ["from", "to"] },
    links: {
      req: ["title", "type", "url", "icon", "tooltip", "tags", "asDropdown", "includeVars", "keepTime", "targetBlank"],
    },
    templating: { req: ["list"], nested: { list: VARIABLE } },
    panels: PANEL,
  },
};

const ALERT_MODEL = (m: Record<string, unknown>): Shape => {
  switch (m.type) {
    case "reduce":
      return { req: ["refId", "datasource", "type", "expression", "reducer"], nested: { datasource: DS_REF } };
    case "threshold":
      return {
        req: ["refId", "datasource", "type", "expression", "conditions"],
        nested: {
          datasource: DS_REF,
          conditions: { req: ["evaluator"], nested: { evaluator: { req: ["type", "params"] } } },
        },
      };
    default:
      if ("queryType" in m) {
        return {
          req: ["refId", "datasource", "expr", "queryType", "editorMode", "intervalMs", "maxDataPoints"],
          nested: { datasource: DS_REF },
        };
      }
      return {
        req: [
          "refId",
          "datasource",
          "expr",
          "instant",
          "range",
          "editorMode",
          "legendFormat",
          "intervalMs",
          "maxDataPoints",
        ],
        nested: { datasource: DS_REF },
      };
  }
};

const RULES_FILE: Shape = {
  req: ["apiVersion", "groups"],
  nested: {
    groups: {
      req: ["orgId", "name", "folder", "interval", "rules"],
      nested: {
        rules: {
          req: [
            "uid",
            "title",
            "condition",
            "data",
            "dashboardUid",
            "panelId",
            "noDataState",
            "execErrState",
            "for",
            "annotations",
            "labels",
            "isPaused",
          ],
          nested: {
            data: {
              req: ["refId", "datasourceUid", "model"],
              opt: ["relativeTimeRange"],
              nested: { relativeTimeRange: { req: ["from", "to"] }, model: ALERT_MODEL },
            },
            annotations: {
              req: ["summary", "description", "value", "runbook", "__dashboardUid__", "__panelId__"],
              opt: ["runbook_url"],
            },
            labels: { req: ["severity"], opt: ["remediation"] },
          },
        },
      },
    },
  },
};

const TEMPLATES_FILE: Shape = {
  req: ["apiVersion", "templates"],
  nested: { templates: { req: ["orgId", "name", "template"] } },
};

const CONTACT_POINT_SETTINGS = (r: Record<string, unknown>): Shape =>
  r.type === "webhook"
    ? {
        req: ["url", "httpMethod", "hmacConfig"],
        nested: { hmacConfig: { req: ["secret", "header", "timestampHeader"] } },
      }
    : { req: ["url", "title", "text"] };
const CONTACT_POINTS_FILE: Shape = {
  req: ["apiVersion"],
  opt: ["contactPoints", "deleteContactPoints"],
  nested: {
    contactPoints: {
      req: ["orgId", "name", "receivers"],
      nested: {
        receivers: (r) => ({
          req: ["uid", "type", "settings", "disableResolveMessage"],
          nested: { settings: CONTACT_POINT_SETTINGS(r) },
        }),
      },
    },
    deleteContactPoints: { req: ["orgId", "uid"] },
  },
};

const ROUTE: Shape = {
  req: ["receiver", "object_matchers", "group_wait", "group_interval", "repeat_interval", "continue"],
};
const POLICIES_FILE: Shape = {
  req: ["apiVersion", "policies"],
  nested: {
    policies: {
      req: ["orgId", "receiver", "group_by", "group_wait", "group_interval", "repeat_interval", "routes"],
      nested: { routes: ROUTE },
    },
  },
};

// ---------------------------------------------------------------------------------------
// Query analysis

/** Metrics node_exporter 1.5, the Titan app and Prometheus really expose (series names). */
const KNOWN_METRICS = new Set([
  "up",
  "node_cpu_seconds_total",
  "node_load1",
  "node_load5",
  "node_load15",
  "node_memory_MemAvailable_bytes",
  "node_memory_MemTotal_bytes",
  "node_filesystem_avail_bytes",
  "node_filesystem_size_bytes",
  "node_disk_read_bytes_total",
  "node_disk_written_bytes_total",
  "node_network_receive_bytes_total",
  "node_network_transmit_bytes_total",
  // prometheus/node_exporter collector/timex.go (adjtimex(2)): namespace node, subsystem timex.
  "node_timex_offset_seconds",
  "node_timex_maxerror_seconds",
  "node_timex_sync_status",
  "http_requests_total",
  "http_request_duration_seconds_bucket",
  "http_requests_in_flight",
  "titan_process_failures_total",
  "titan_log_lines_total",
  "titan_transactions_created_total",
  // The remediation agent (app/remediation/audit.py), zero-initialised for every {action, result}.
  "titan_remediation_actions_total",
  // Pipeline: grafana/alloy internal/component/common/loki/client/metrics.go (loki.write),
  "loki_write_sent_entries_total",
  "loki_write_dropped_entries_total",
  "loki_write_batch_retries_total",
  // grafana/loki pkg/validation/validate.go,
  "loki_discarded_samples_total",
  // Prometheus' own (its /metrics),
  "prometheus_config_last_reload_successful",
  // grafana/grafana pkg/services/ngalert/metrics/{scheduler,multi_org_alertmanager}.go.
  "grafana_alerting_rule_evaluation_failures_total",
  "grafana_alerting_notifications_failed_total",
]);

/** Labels those series carry: target labels plus each metric's own. */
const KNOWN_PROM_LABELS = new Set([
  "job",
  "instance",
  "role",
  "environment",
  "mode",
  "mountpoint",
  "fstype",
  "device",
  "method",
  "endpoint",
  "status",
  "le",
  "level",
  "reason",
  "integration",
  "action",
  "result",
]);

const PROMQL_FUNCTIONS = new Set([
  "sum",
  "avg",
  "max",
  "count",
  "rate",
  "increase",
  "histogram_quantile",
  "label_values",
  "absent",
  "vector",
  // The clock rules (node-mixin's): |offset|, its trend, and sync status over a window.
  "abs",
  "deriv",
  "min_over_time",
  // RemediationKeepsBeingNeeded counts whole decisions.
  "round",
]);
const PROMQL_KEYWORDS = new Set(["by", "without", "on", "ignoring", "or", "and"]);

/** The Alloy pipeline's stream labels (the contract with the Alloy stage). */
const ALLOY_LABEL_CONTRACT = new Set(["job", "host", "role", "environment", "filename", "level", "unit"]);
const LOKI_JOBS = new Set(["titan", "systemd-journal"]);

const stripStrings = (expr: string) => expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');

interface PromQlParts {
  metrics: Set<string>;
  functions: Set<string>;
  labels: Set<string>;
  jobs: Set<string>;
}

function analysePromQl(expr: string): PromQlParts {
  const parts: PromQlParts = { metrics: new Set(), functions: new Set(), labels: new Set(), jobs: new Set() };
  for (const m of expr.matchAll(/\{([^}]*)\}/g)) {
    for (const matcher of m[1].matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      parts.labels.add(matcher[1]);
      if (matcher[1] === "job") parts.jobs.add(matcher[3]);
    }
  }
  for (const m of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const label of m[1].split(",").map((s) => s.trim())) if (label) parts.labels.add(label);
  }
  const bare = stripStrings(expr)
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(?:by|without)\s*\([^)]*\)/g, " ");
  // label_values(metric{...}, label): the last argument is a label, not a metric.
  const withoutLabelArg = bare.replace(/,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)/g, (_, label: string) => {
    parts.labels.add(label);
    return ")";
  });
  for (const m of withoutLabelArg.matchAll(/\b([A-Za-z_:][A-Za-z0-9_:]*)\b(\s*\()?/g)) {
    if (PROMQL_KEYWORDS.has(m[1])) continue;
    if (m[2]) parts.functions.add(m[1]);
    else parts.metrics.add(m[1]);
  }
  return parts;
}

interface LogQlParts {
  labels: Set<string>;
  jobs: Set<string>;
  levels: Set<string>;
}

function analyseLogQl(expr: string): LogQlParts {
  const parts: LogQlParts = { labels: new Set(), jobs: new Set(), levels: new Set() };
  const selectors = [...expr.matchAll(/\{([^}]*)\}/g)];
  assert.ok(selectors.length > 0, `no stream selector in ${expr}`);
  for (const s of selectors) {
    for (const m of s[1].matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      parts.labels.add(m[1]);
      if (m[1] === "job") parts.jobs.add(m[3]);
      if (m[1] === "level") parts.levels.add(m[3]);
    }
  }
  for (const m of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const label of m[1].split(",").map((s) => s.trim())) if (label) parts.labels.add(label);
  }
  return parts;
}

function allTargets(d: Dashboard) {
  return queryPanels(d).flatMap((p) => p.targets.map((t) => ({ panel: p, target: t })));
}

/** Every `$name` / `${name}` a string references, Grafana's own `$__...` excluded. */
const variableRefs = (text: string) =>
  [...text.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]).filter((n) => !n.startsWith("__"));

function durationSeconds(text: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(text);
  assert.ok(m, `not a simple duration: ${text}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as "s" | "m" | "h"];
}

// ---------------------------------------------------------------------------------------

describe("Grafana files", () => {
  it("renders the same set of paths with and without a webhook, owned root:grafana 0640", () => {
    const paths = (files: RenderedFile[]) => files.map((f) => f.path).sort();
    assert.deepEqual(paths(NO_WEBHOOK), paths(WITH_WEBHOOK));
    assert.equal(new Set(paths(NO_WEBHOOK)).size, NO_WEBHOOK.length, "duplicate paths");
    for (const path of Object.values(GRAFANA_PATHS)) fileAt(NO_WEBHOOK, path);
    assert.equal(dashboardsOf(NO_WEBHOOK).length, Object.keys(DASHBOARD_UIDS).length);
    for (const file of [...NO_WEBHOOK, ...WITH_WEBHOOK]) {
      assert.ok(
        file.path.startsWith("/etc/grafana/provisioning/") || file.path.startsWith(`${DASHBOARDS_DIR}/`),
        file.path,
      );
      assert.equal(file.mode, 0o640, file.path);
      assert.equal(file.owner, "root", file.path);
      assert.equal(file.group, "grafana", file.path);
      assert.ok(file.content.endsWith("\n"), `${file.path} ends without a newline`);
    }
  });

  it("is deterministic, and dashboards are 2-space JSON", () => {
    assert.deepEqual(render(true), WITH_WEBHOOK);
    for (const file of NO_WEBHOOK.filter((f) => f.path.endsWith(".json"))) {
      assert.equal(file.content, JSON.stringify(JSON.parse(file.content), null, 2) + "\n", file.path);
    }
  });

  it("matches the typed models: required keys present, no unknown keys", () => {
    for (const files of BOTH) {
      const problems = [
        ...checkShape(yamlAt(files, GRAFANA_PATHS.datasources), DATASOURCES_FILE, "datasources"),
        ...checkShape(yamlAt(files, GRAFANA_PATHS.dashboardProvider), PROVIDERS_FILE, "providers"),
        ...checkShape(yamlAt(files, GRAFANA_PATHS.alertRules), RULES_FILE, "rules"),
        ...checkShape(yamlAt(files, GRAFANA_PATHS.notificationTemplates), TEMPLATES_FILE, "templates"),
        ...checkShape(yamlAt(files, GRAFANA_PATHS.contactPoints), CONTACT_POINTS_FILE, "contactPoints"),
        ...checkShape(yamlAt(files, GRAFANA_PATHS.notificationPolicies), POLICIES_FILE, "policies"),
        ...dashboardsOf(files).flatMap((d) => checkShape(d, DASHBOARD, d.uid)),
      ];
      assert.deepEqual(problems, []);
    }
  });

  it("matches the typed models with metricsStore=amp too (the SigV4 data source)", () => {
    const ctx = ampTestContext();
    const files = renderGrafanaFiles(ctx, { slackWebhookConfigured: true });
    assert.deepEqual(checkShape(yamlAt(files, GRAFANA_PATHS.datasources), DATASOURCES_FILE, "datasources"), []);
  });

  it("the shape checker itself catches unknown and missing keys", () => {
    const rules = yamlAt<{ groups: { rules: Record<string, unknown>[] }[] }>(NO_WEBHOOK, GRAFANA_PATHS.alertRules);
    rules.groups[0].rules[0].noDataStat = "OK";
    delete rules.groups[0].rules[1].condition;
    const problems = checkShape(rules, RULES_FILE, "rules");
    assert.ok(
      problems.some((p) => p.includes("unknown key noDataStat")),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => p.includes("missing condition")),
      problems.join("\n"),
    );
    const dashboard = JSON.parse(JSON.stringify(dashboardByUid(NO_WEBHOOK, DASHBOARD_UIDS.system))) as {
      panels: Record<string, unknown>[];
    };
    dashboard.panels[1].fieldConfg = {};
    assert.ok(checkShape(dashboard, DASHBOARD, "system").some((p) => p.includes("unknown key fieldConfg")));
  });
});

describe("Grafana data sources and dashboard provider", () => {
  const ctx = contextFor(configWith({ vpcCidr: "172.20.0.0/20" }));
  const file = YAML.parse(
    fileAt(renderGrafanaFiles(ctx, { slackWebhookConfigured: false }), GRAFANA_PATHS.datasources).content,
  ) as DataSourcesFile;

  it("points Prometheus and Loki at their fixed private addresses and ports, with fixed uids", () => {
    const byType = new Map(file.datasources.map((ds) => [ds.type, ds]));
    assert.equal(
      byType.get("prometheus")?.url,
      `http://${addressOf(ctx.plan, "prometheus")}:${SERVICES.prometheus.port}`,
    );
    assert.equal(byType.get("loki")?.url, `http://${addressOf(ctx.plan, "loki")}:${SERVICES.loki.port}`);
    assert.equal(byType.get("prometheus")?.uid, DATASOURCE_UIDS.prometheus);
    assert.equal(byType.get("loki")?.uid, DATASOURCE_UIDS.loki);
    assert.deepEqual(
      file.datasources.filter((ds) => ds.isDefault).map((ds) => ds.type),
      ["prometheus"],
    );
    assert.ok(file.datasources.every((ds) => ds.access === "proxy" && !ds.editable));
    assert.equal(file.prune, true);
  });

  it("provisions the dashboards read-only from their directory into the alert rules' folder", () => {
    const providers = yamlAt<DashboardProvidersFile>(NO_WEBHOOK, GRAFANA_PATHS.dashboardProvider).providers;
    assert.equal(providers.length, 1);
    assert.equal(providers[0].allowUiUpdates, false);
    assert.equal(providers[0].folder, ALERT_GROUP.folder);
    assert.equal(providers[0].options.path, DASHBOARDS_DIR);
    assert.equal(providers[0].type, "file");
  });
});

describe("Grafana dashboards", () => {
  const dashboards = dashboardsOf(NO_WEBHOOK);
  const datasources = yamlAt<DataSourcesFile>(NO_WEBHOOK, GRAFANA_PATHS.datasources).datasources;
  const dsType = new Map(datasources.map((ds) => [ds.uid, ds.type]));

  it("are the three dashboards of the alert table, with unique uids across all provisioned things", () => {
    assert.deepEqual(dashboards.map((d) => d.uid).sort(), Object.values(DASHBOARD_UIDS).sort());
    const uids = [
      ...dashboards.map((d) => d.uid),
      ...datasources.map((d) => d.uid),
      ...rulesOf(NO_WEBHOOK).map((r) => r.uid),
    ];
    assert.equal(new Set(uids).size, uids.length, `duplicate uid in ${uids.join(", ")}`);
  });

  it("reference only provisioned data sources, by uid and matching type", () => {
    for (const d of dashboards) {
      for (const { panel, target } of allTargets(d)) {
        assert.equal(dsType.get(target.datasource.uid), target.datasource.type, `${d.uid}/${panel.title}`);
        assert.deepEqual(panel.datasource, target.datasource, `${d.uid}/${panel.title}: panel and target disagree`);
      }
      for (const v of d.templating.list) {
        if (v.type === "query") assert.equal(dsType.get(v.datasource.uid), v.datasource.type, `${d.uid}/$${v.name}`);
      }
    }
  });

  it("use only metrics, labels and jobs that really exist", () => {
    const jobs = new Set<string>([...SCRAPE_JOBS.map((j) => j.job), SELF_JOB]);
    const promQueries = dashboards.flatMap((d) => [
      ...allTargets(d)
        .filter(({ target }) => target.datasource.type === "prometheus")
        .map(({ panel, target }) => ({ where: `${d.uid}/${panel.title}`, expr: target.expr })),
      ...d.templating.list
        .filter((v) => v.type === "query")
        .map((v) => ({ where: `${d.uid}/$${v.name}`, expr: v.query })),
    ]);
    assert.ok(promQueries.length > 20);
    const seen = new Set<string>();
    for (const { where, expr } of promQueries) {
      const parts = analysePromQl(expr);
      assert.ok(parts.metrics.size > 0, `${where}: no metric in ${expr}`);
      for (const m of parts.metrics) {
        assert.ok(KNOWN_METRICS.has(m), `${where}: unknown metric ${m}`);
        seen.add(m);
      }
      for (const f of parts.functions) assert.ok(PROMQL_FUNCTIONS.has(f), `${where}: unexpected function ${f}`);
      for (const l of parts.labels) assert.ok(KNOWN_PROM_LABELS.has(l), `${where}: unknown label ${l}`);
      for (const j of parts.jobs) assert.ok(jobs.has(j), `${where}: unknown job ${j}`);
    }
    // Every metric the app and node_exporter sections promise is on a dashboard.
    assert.deepEqual(
      [...KNOWN_METRICS].filter((m) => !seen.has(m)),
      [],
    );
  });

  it("the PromQL analysis catches a made-up metric", () => {
    const parts = analysePromQl('sum by (instance) (rate(titan_requests_total{job="titan"}[$__rate_interval]))');
    assert.deepEqual([...parts.metrics], ["titan_requests_total"]);
    assert.ok(!KNOWN_METRICS.has("titan_requests_total"));
    assert.deepEqual([...parts.labels].sort(), ["instance", "job"]);
  });

  it("use only the Loki labels of the Alloy contract, and export exactly those", () => {
    const used = new Set<string>();
    const logQueries = dashboards.flatMap((d) =>
      allTargets(d)
        .filter(({ target }) => target.datasource.type === "loki")
        .map(({ panel, target }) => ({ where: `${d.uid}/${panel.title}`, expr: target.expr })),
    );
    assert.ok(logQueries.length >= 5);
    for (const { where, expr } of logQueries) {
      const parts = analyseLogQl(expr);
      for (const label of parts.labels) {
        assert.ok(
          (LOKI_QUERY_LABELS as readonly string[]).includes(label),
          `${where}: label ${label} not in LOKI_QUERY_LABELS`,
        );
        used.add(label);
      }
      assert.ok(parts.jobs.size > 0, `${where}: no job matcher`);
      for (const job of parts.jobs) assert.ok(LOKI_JOBS.has(job), `${where}: unknown Loki job ${job}`);
      for (const level of parts.levels) {
        assert.ok((LOG_LEVELS as readonly string[]).includes(level) || level === "$level", `${where}: level ${level}`);
      }
      assert.ok(!/\binstance\s*=/.test(expr), `${where}: Loki streams carry host, not instance`);
    }
    for (const label of LOKI_QUERY_LABELS) assert.ok(ALLOY_LABEL_CONTRACT.has(label), `${label} is not set by Alloy`);
    assert.deepEqual([...used].sort(), [...LOKI_QUERY_LABELS].sort(), "LOKI_QUERY_LABELS lists labels no query uses");
  });

  it("use Grafana's interval variables for range windows", () => {
    const alertExprs = alertDefinitions(configWith()).map((a) => a.expr);
    for (const d of dashboards) {
      for (const { panel, target } of allTargets(d)) {
        // A panel plotting an alert's own expression keeps the alert's window: it shows the alert's value.
        if (alertExprs.some((e) => target.expr.includes(e))) continue;
        for (const m of target.expr.matchAll(/\[([^\]]+)\]/g)) {
          const allowed = target.datasource.type === "loki" ? ["$__interval"] : ["$__rate_interval", "$__range"];
          assert.ok(allowed.includes(m[1]), `${d.uid}/${panel.title}: window [${m[1]}]`);
        }
        if (/\b(rate|increase)\(/.test(target.expr)) assert.match(target.expr, /\[\$__(rate_interval|range)\]/);
      }
    }
  });

  it("define every variable their queries and links use", () => {
    for (const d of dashboards) {
      const defined = new Set(d.templating.list.map((v) => v.name));
      const texts = [...allTargets(d).map(({ target }) => target.expr), ...d.templating.list.map((v) => v.query)];
      for (const text of texts) {
        for (const name of variableRefs(text)) assert.ok(defined.has(name), `${d.uid}: $${name} is not defined`);
      }
    }
  });

  const variable = (d: Dashboard, name: string): Variable => {
    const v = d.templating.list.find((x) => x.name === name);
    assert.ok(v, `${d.uid} has no $${name}`);
    return v;
  };

  it("have the required variables", () => {
    const system = dashboardByUid(NO_WEBHOOK, DASHBOARD_UIDS.system);
    const app = dashboardByUid(NO_WEBHOOK, DASHBOARD_UIDS.application);
    const logs = dashboardByUid(NO_WEBHOOK, DASHBOARD_UIDS.logs);
    for (const d of [system, app, logs]) {
      variable(d, "environment");
      const instance = variable(d, "instance");
      assert.ok(instance.type === "query" && instance.multi && instance.includeAll, `${d.uid}: $instance`);
    }
    const systemInstance = variable(system, "instance");
    assert.ok(systemInstance.type === "query");
    assert.match(systemInstance.query, /^label_values\(up\{job="node".*\}, instance\)$/);
    const endpoint = variable(app, "endpoint");
    assert.ok(endpoint.type === "query" && endpoint.multi && endpoint.includeAll);
    assert.equal(endpoint.query, 'label_values(http_requests_total{job="titan"}, endpoint)');
    const level = variable(logs, "level");
    assert.ok(level.type === "custom");
    assert.deepEqual(level.query.split(","), [...LOG_LEVELS]);
    // Every value the Alloy pipeline can give the label, "other" included, can be picked.
    assert.deepEqual([...LOG_LEVELS], [...TITAN_LOG_RULES.levels, TITAN_LOG_RULES.otherLevel]);
  });

  it("have panels with unique ids and non-overlapping positions on the 24-column grid", () => {
    for (const d of dashboards) {
      const ids = d.panels.map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length, `${d.uid}: duplicate panel id`);
      const cells = new Set<string>();
      for (const p of d.panels) {
        const { x, y, w, h } = p.gridPos;
        assert.ok(
          w > 0 && h > 0 && x >= 0 && y >= 0 && x + w <= 24,
          `${d.uid}/${p.title}: gridPos ${x},${y},${w},${h}`,
        );
        for (let i = x; i < x + w; i++) {
          for (let j = y; j < y + h; j++) {
            assert.ok(!cells.has(`${i},${j}`), `${d.uid}/${p.title} overlaps another panel`);
            cells.add(`${i},${j}`);
          }
        }
      }
    }
  });

  it("link to each other, keeping time and variables", () => {
    for (const d of dashboards) {
      const targets = d.links.map((l) => l.url.replace(/^\/d\//, ""));
      const others = dashboards.map((o) => o.uid).filter((uid) => uid !== d.uid);
      assert.deepEqual(targets.sort(), others.sort(), d.uid);
      assert.ok(d.links.every((l) => l.keepTime && l.includeVars));
    }
  });

  it("put the app's error rate next to its error logs for incidents", () => {
    const logs = dashboardByUid(NO_WEBHOOK, DASHBOARD_UIDS.logs);
    const panels = queryPanels(logs);
    const errorRate = panels.find(
      (p) => p.datasource.type === "prometheus" && /status=~"5\.\."/.test(p.targets[0].expr),
    );
    const errorLogs = panels.find((p: Panel) => p.type === "logs" && /level="error"/.test(p.targets[0].expr));
    assert.ok(errorRate && errorLogs, "error-rate and error-log panels");
    assert.equal(errorRate.gridPos.y, errorLogs.gridPos.y, "side by side");
    assert.equal(errorRate.gridPos.x + errorRate.gridPos.w, errorLogs.gridPos.x);
    assert.ok(errorRate.links.some((l) => l.url.startsWith(`/d/${DASHBOARD_UIDS.application}`)));
    const app = dashboardByUid(NO_WEBHOOK, DASHBOARD_UIDS.application);
    assert.ok(queryPanels(app).some((p) => p.links.some((l) => l.url.startsWith(`/d/${DASHBOARD_UIDS.logs}`))));
  });

  it("show the self-healing loop on the Application dashboard: decisions by action and result, and its three alerts", () => {
    const app = dashboardByUid(NO_WEBHOOK, DASHBOARD_UIDS.application);
    const rowAt = app.panels.findIndex((p) => p.type === "row" && p.title === "Self-healing");
    assert.ok(rowAt >= 0, "no Self-healing row");
    const below = queryPanels({ ...app, panels: app.panels.slice(rowAt + 1) });
    const actions = below.find((p) => p.title === "Self-healing actions");
    assert.ok(actions, "no Self-healing actions panel");
    assert.match(actions.targets[0].expr, /^sum by \(action, result\) \(increase\(titan_remediation_actions_total\{/);
    assert.equal(actions.targets[0].legendFormat, "{{action}} {{result}}");
    const rules = rulesOf(NO_WEBHOOK);
    for (const uid of ["titan-app-not-answering", "titan-remediation-failing", "titan-remediation-repeated"]) {
      const rule = rules.find((r) => r.uid === uid);
      assert.ok(rule && rule.dashboardUid === DASHBOARD_UIDS.application, uid);
      assert.ok(
        below.some((p) => p.id === rule.panelId),
        `${uid} links to panel ${rule.panelId}, not one in the Self-healing row`,
      );
    }
  });

  it("draw the alert thresholds from the config", () => {
    const cpuPanel = (files: RenderedFile[]) => {
      const panel = queryPanels(dashboardByUid(files, DASHBOARD_UIDS.system)).find(
        (p) => p.title === "CPU utilisation",
      );
      assert.ok(panel && panel.type === "timeseries");
      return panel.fieldConfig.defaults.thresholds.steps.map((s) => s.value);
    };
    assert.deepEqual(cpuPanel(NO_WEBHOOK), [null, 80]);
    assert.deepEqual(cpuPanel(render(false, { cpuWarningPercent: "93" })), [null, 93]);
  });
});

describe("Grafana alert rules", () => {
  const config = configWith();
  const definitions = alertDefinitions(config);
  const file = yamlAt<AlertingFile>(NO_WEBHOOK, GRAFANA_PATHS.alertRules);
  const rules = rulesOf(NO_WEBHOOK);

  it("form one group, evaluated every minute, in the dashboards' folder", () => {
    assert.equal(file.groups?.length, 1);
    const group = file.groups[0];
    assert.equal(group.interval, "1m");
    assert.equal(group.name, ALERT_GROUP.name);
    assert.equal(group.folder, ALERT_GROUP.folder);
    assert.deepEqual(
      rules.map((r) => r.uid),
      definitions.map((d) => d.uid),
    );
  });

  it("have uids Grafana accepts", () => {
    for (const rule of rules) {
      assert.ok(rule.uid.length <= 40, rule.uid);
      assert.match(rule.uid, /^[A-Za-z0-9_-]+$/);
    }
    assert.equal(new Set(rules.map((r) => r.title)).size, rules.length, "duplicate titles");
    assert.throws(() => assertRuleUid("x".repeat(41)), /1-40/);
    assert.throws(() => assertRuleUid("titan.cpu"), /1-40/);
    assert.throws(() => assertRuleUid(""), /1-40/);
    assert.equal(assertRuleUid("titan-cpu_high-1"), "titan-cpu_high-1");
  });

  it("query Prometheus instantly, reduce to the last value and compare with the definition's threshold", () => {
    const dsUids = new Set<string>(Object.values(DATASOURCE_UIDS));
    for (const def of definitions) {
      const rule = rules.find((r) => r.uid === def.uid);
      assert.ok(rule, def.uid);
      const refIds = rule.data.map((q) => q.refId);
      assert.deepEqual(refIds, ["A", "B", "C"]);
      assert.equal(rule.condition, "C");
      for (const q of rule.data) {
        assert.equal(q.model.refId, q.refId);
        assert.equal(q.model.datasource.uid, q.datasourceUid);
        assert.ok(dsUids.has(q.datasourceUid) || q.datasourceUid === "__expr__", `${def.uid}/${q.refId}`);
      }
      const [a, b, c] = rule.data;
      if (def.datasource === "loki") {
        // grafana/grafana pkg/tsdb/loki/parse_query.go: queryType is "instant" or "range", anything else fails.
        assert.ok("queryType" in a.model && a.model.queryType === "instant", `${def.uid}: an instant LogQL query`);
        assert.equal(a.datasourceUid, DATASOURCE_UIDS.loki);
      } else {
        assert.ok("instant" in a.model && a.model.instant && !a.model.range, `${def.uid}: an instant PromQL query`);
        assert.equal(a.datasourceUid, DATASOURCE_UIDS.prometheus);
      }
      assert.ok("expr" in a.model);
      assert.equal(a.model.expr, def.expr);
      assert.ok(a.relativeTimeRange && a.relativeTimeRange.from >= 300, "range covers the 5m windows");
      assert.ok("reducer" in b.model && b.model.type === "reduce");
      assert.equal(b.model.expression, "A");
      assert.equal(b.model.reducer, "last");
      assert.ok("conditions" in c.model && c.model.type === "threshold");
      assert.equal(c.model.expression, "B");
      assert.deepEqual(c.model.conditions[0].evaluator, {
        type: def.op === ">" ? "gt" : "lt",
        params: [def.threshold],
      });
      assert.equal(rule.for, def.for);
      assert.equal(rule.noDataState, def.noDataState);
      assert.equal(rule.execErrState, def.execErrState);
      assert.deepEqual(
        rule.labels,
        def.remediation === undefined
          ? { severity: def.severity }
          : { severity: def.severity, remediation: def.remediation },
      );
      assert.equal(rule.isPaused, false);
    }
  });

  it("follow a threshold changed in config", () => {
    const threshold = (files: RenderedFile[], uid: string) => {
      const c = rulesOf(files).find((r) => r.uid === uid)?.data[2].model;
      assert.ok(c && "conditions" in c);
      return c.conditions[0].evaluator.params[0];
    };
    const changed = render(false, {
      cpuWarningPercent: "91",
      rootDiskCriticalPercent: "42",
      memoryWarningPercent: "77",
    });
    assert.equal(threshold(NO_WEBHOOK, "titan-cpu-high"), 80);
    assert.equal(threshold(changed, "titan-cpu-high"), 91);
    assert.equal(threshold(changed, "titan-root-disk-critical"), 42);
    assert.equal(threshold(changed, "titan-memory-high"), 77);
    const summary = rulesOf(changed).find((r) => r.uid === "titan-cpu-high")?.annotations.summary;
    assert.match(summary ?? "", /91%/);
  });

  it("carry summary, description with value and host, runbook and dashboard panel", () => {
    const dashboards = new Map(dashboardsOf(NO_WEBHOOK).map((d) => [d.uid, d]));
    for (const def of definitions) {
      const rule = rules.find((r) => r.uid === def.uid);
      assert.ok(rule);
      const a = rule.annotations;
      assert.equal(a.runbook, def.runbookSteps);
      assert.equal(a.runbook_url, undefined, "no runbook link without a known runbooks address");
      assert.equal(a.__dashboardUid__, def.dashboardUid);
      assert.equal(rule.dashboardUid, def.dashboardUid);
      assert.equal(a.__panelId__, String(rule.panelId));
      const panel = dashboards.get(def.dashboardUid)?.panels.find((p) => p.id === rule.panelId);
      assert.ok(panel && panel.type !== "row", `${def.uid}: panel ${rule.panelId} on ${def.dashboardUid}`);
      // Loki streams name the host `host`; Prometheus targets `instance`.
      const hostLabel = def.datasource === "loki" ? "host" : "instance";
      assert.match(a.description, new RegExp(`\\{\\{ \\$labels\\.${hostLabel} \\}\\}`));
      // An absence rule's value is always 1: its description names the host instead.
      if (!def.expectedSeries) assert.match(a.description, /\$values\.B\.Value/);
      assert.match(a.value, /\$values\.B\.Value/);
      for (const text of Object.values(a)) {
        assert.ok(!/\$value\b(?!s)/.test(text), `${def.uid}: Prometheus-style $value left in ${text}`);
        assert.ok(!text.includes("${"), `${def.uid}: environment reference in an annotation: ${text}`);
        for (const m of text.matchAll(/\$values\.([A-Za-z]+)\./g)) {
          assert.ok(
            rule.data.some((q) => q.refId === m[1]),
            `${def.uid}: $values.${m[1]} is no refId`,
          );
        }
        assert.equal((text.match(/\{\{/g) ?? []).length, (text.match(/\}\}/g) ?? []).length, text);
      }
    }
  });

  it("link each rule to its runbook section when docs/runbooks.md's address is known", () => {
    const base = "https://git.example.com/ops/titan/blob/main/docs/runbooks.md";
    const files = renderGrafanaFiles(contextFor(config), { slackWebhookConfigured: false, runbookBaseUrl: base });
    for (const def of definitions) {
      const rule = rulesOf(files).find((r) => r.uid === def.uid);
      assert.equal(rule?.annotations.runbook_url, `${base}#${def.runbook}`);
    }
    assert.throws(
      () => renderGrafanaFiles(contextFor(config), { slackWebhookConfigured: false, runbookBaseUrl: "README.md#x" }),
      /http\(s\) URL/,
    );
  });

  it("keep `$` out of values Grafana interpolates from its environment", () => {
    for (const rule of rules) {
      for (const text of [rule.title, rule.uid, rule.condition, ...Object.values(rule.labels)]) {
        assert.ok(!text.includes("$"), `${rule.uid}: ${text}`);
      }
    }
  });
});

describe("Grafana notifications", () => {
  const policyOf = (files: RenderedFile[]) => {
    const policies = yamlAt<AlertingFile>(files, GRAFANA_PATHS.notificationPolicies).policies;
    assert.equal(policies?.length, 1);
    return policies[0];
  };
  /** The root's and the severity routes' receivers (the remediation routes are tested below). */
  const receiversOf = (files: RenderedFile[]) => {
    const p = policyOf(files);
    return [
      p.receiver,
      ...p.routes.filter((r) => !r.object_matchers.some(([l]) => l === "remediation")).map((r) => r.receiver),
    ];
  };
  const slackPoints = (file: AlertingFile) =>
    (file.contactPoints ?? []).filter((cp) => cp.receivers.some((r) => r.type === "slack"));

  it("without a webhook: no Slack contact point, and every route ends at Grafana's default receiver", () => {
    const contactPoints = yamlAt<AlertingFile>(NO_WEBHOOK, GRAFANA_PATHS.contactPoints);
    assert.deepEqual(slackPoints(contactPoints), []);
    assert.deepEqual(
      contactPoints.deleteContactPoints?.filter((d) => d.uid === SLACK_CONTACT_POINT.uid),
      [{ orgId: 1, uid: SLACK_CONTACT_POINT.uid }],
    );
    assert.deepEqual(new Set(receiversOf(NO_WEBHOOK)), new Set([DEFAULT_RECEIVER]));
    assert.ok(!NO_WEBHOOK.some((f) => f.content.includes(SLACK_WEBHOOK_ENV)), "webhook reference without a webhook");
  });

  it("with a webhook: Slack via the environment reference, and the secret appears nowhere", () => {
    const file = yamlAt<AlertingFile>(WITH_WEBHOOK, GRAFANA_PATHS.contactPoints);
    const slack = slackPoints(file);
    assert.equal(slack.length, 1);
    const [receiver] = slack[0].receivers;
    assert.ok(receiver.type === "slack");
    assert.equal(receiver.settings.url, "${TITAN_SLACK_WEBHOOK_URL}");
    assert.equal(receiver.settings.url, `\${${SLACK_WEBHOOK_ENV}}`);
    assert.equal(receiver.disableResolveMessage, false, "resolved notifications must be on");
    for (const value of [receiver.settings.title, receiver.settings.text]) {
      assert.ok(!value.includes("$"), `interpolated setting contains $: ${value}`);
    }
    assert.ok(!(file.deleteContactPoints ?? []).some((d) => d.uid === SLACK_CONTACT_POINT.uid));
    const secretPart = WEBHOOK.split("/").pop() ?? "";
    for (const f of WITH_WEBHOOK) {
      assert.ok(!f.content.includes(WEBHOOK) && !f.content.includes(secretPart), `${f.path} contains the webhook`);
      assert.ok(!/hooks\.slack\.com|xox[abp]-|T0TITAN00/.test(f.content), `${f.path} contains a secret-looking string`);
    }
    assert.deepEqual(new Set(receiversOf(WITH_WEBHOOK)), new Set([slack[0].name]));
  });

  it("contact point settings carry no `$` but the two environment references (Slack URL, remediation HMAC secret)", () => {
    const allowed = new Set([`\${${SLACK_WEBHOOK_ENV}}`, `\${${REMEDIATION_HMAC_SECRET_ENV}}`]);
    const strings = (v: unknown): string[] =>
      typeof v === "string" ? [v] : typeof v === "object" && v !== null ? Object.values(v).flatMap(strings) : [];
    for (const files of [...BOTH, render(true, { remediation: "off" }), render(false, { webCount: "3" })]) {
      const file = yamlAt<AlertingFile>(files, GRAFANA_PATHS.contactPoints);
      for (const cp of file.contactPoints ?? []) {
        for (const text of [cp.name, ...cp.receivers.flatMap((r) => [r.uid, ...strings(r.settings)])]) {
          assert.ok(!text.includes("$") || allowed.has(text), `${cp.name}: ${text}`);
        }
      }
      for (const text of strings(yamlAt<AlertingFile>(files, GRAFANA_PATHS.notificationPolicies).policies)) {
        assert.ok(!text.includes("$"), `policy value ${text}`);
      }
    }
  });

  it("group by alert and host and route both severities, critical repeating sooner", () => {
    for (const files of BOTH) {
      const policy = policyOf(files);
      for (const label of ["alertname", "instance"]) assert.ok(policy.group_by.includes(label), label);
      const route = (severity: string) => {
        const r = policy.routes.find((x) =>
          x.object_matchers.some(([l, op, v]) => l === "severity" && op === "=" && v === severity),
        );
        assert.ok(r, `no route for ${severity}`);
        return r;
      };
      const critical = route("critical");
      const warning = route("warning");
      assert.ok(durationSeconds(critical.repeat_interval) < durationSeconds(warning.repeat_interval));
      assert.ok(durationSeconds(critical.group_wait) <= durationSeconds(warning.group_wait));
      for (const r of [policy, ...policy.routes]) {
        assert.ok(durationSeconds(r.repeat_interval) >= durationSeconds(r.group_interval), "repeat >= group interval");
      }
      const severities = new Set(alertDefinitions(configWith()).map((d) => d.severity));
      for (const s of severities) route(s);
    }
  });

  it("use a notification template that defines what the contact point calls", () => {
    const templates = yamlAt<AlertingFile>(WITH_WEBHOOK, GRAFANA_PATHS.notificationTemplates).templates;
    assert.equal(templates?.length, 1);
    const text = templates[0].template;
    const defined = [...text.matchAll(/\{\{-? define "([^"]+)" -?\}\}/g)].map((m) => m[1]);
    const called = [...text.matchAll(/\{\{-? template "([^"]+)"/g)].map((m) => m[1]);
    const slack = yamlAt<AlertingFile>(WITH_WEBHOOK, GRAFANA_PATHS.contactPoints).contactPoints?.[0].receivers[0];
    assert.ok(slack?.type === "slack");
    const settings = slack.settings;
    for (const name of [SLACK_TITLE_TEMPLATE, SLACK_TEXT_TEMPLATE]) {
      assert.ok(defined.includes(name), `${name} is not defined`);
    }
    assert.equal(settings.title, `{{ template "${SLACK_TITLE_TEMPLATE}" . }}`);
    assert.equal(settings.text, `{{ template "${SLACK_TEXT_TEMPLATE}" . }}`);
    for (const name of called) assert.ok(defined.includes(name), `${name} is called but not defined`);
    // Block actions and their `end`s balance.
    const opens = (text.match(/\{\{-?\s*(if|range|with|define)\b/g) ?? []).length;
    const ends = (text.match(/\{\{-?\s*end\b/g) ?? []).length;
    assert.equal(opens, ends);
    // Reads well both ways and carries what an on-call engineer needs.
    for (const needle of [
      "RESOLVED",
      "FIRING",
      ".Alerts.Firing",
      ".Alerts.Resolved",
      ".Labels.severity",
      ".Labels.instance",
      ".Annotations.summary",
      ".Annotations.description",
      ".Annotations.value",
      ".Annotations.runbook_url",
      ".Annotations.runbook ",
      ".DashboardURL",
    ]) {
      assert.ok(text.includes(needle), `template lacks ${needle}`);
    }
  });
});

describe("Grafana remediation routing", () => {
  const contactPointsOf = (files: RenderedFile[]) => yamlAt<AlertingFile>(files, GRAFANA_PATHS.contactPoints);
  const webhooksOf = (files: RenderedFile[]) =>
    (contactPointsOf(files).contactPoints ?? []).filter((cp) => cp.receivers.some((r) => r.type === "webhook"));
  const policyOf = (files: RenderedFile[]) => {
    const [policy] = yamlAt<AlertingFile>(files, GRAFANA_PATHS.notificationPolicies).policies ?? [];
    assert.ok(policy);
    return policy;
  };
  const remediationDeletes = (files: RenderedFile[]) =>
    (contactPointsOf(files).deleteContactPoints ?? [])
      .map((d) => d.uid)
      .filter((uid) => uid.startsWith("titan-remediation-"));
  const webSlots = (n: number) => Array.from({ length: n }, (_, i) => `web-${i + 1}`);
  const allUids = webSlots(MAX_WEB_HOSTS).map((slot) => `titan-remediation-${slot}`);

  /**
   * Where Grafana's Alertmanager sends an alert with these labels: the child routes in order, a
   * match stops the walk unless it continues; no match at all falls back to the root's receiver.
   */
  function receiversFor(files: RenderedFile[], labels: Record<string, string>): string[] {
    const policy = policyOf(files);
    const matches = ([label, op, value]: readonly [string, string, string]) => {
      const actual = labels[label] ?? "";
      const re = new RegExp(`^(?:${value})$`);
      return op === "="
        ? actual === value
        : op === "!="
          ? actual !== value
          : op === "=~"
            ? re.test(actual)
            : !re.test(actual);
    };
    const out: string[] = [];
    for (const route of policy.routes) {
      if (!route.object_matchers.every(matches)) continue;
      out.push(route.receiver);
      if (!route.continue) return out;
    }
    return [...out, policy.receiver];
  }

  for (const mode of ["on", "dry-run"] as const) {
    it(`${mode}: one signed webhook per web host, to its agent's private address, resolved messages off`, () => {
      const files = render(true, { remediation: mode, webCount: "3" });
      const ctx = contextFor(configWith({ webCount: "3" }));
      const web = ctx.plan.hosts.filter((h) => h.role === "web");
      const points = webhooksOf(files);
      assert.deepEqual(
        points.map((cp) => cp.name),
        web.map((h) => `titan-remediation-${h.name}`),
      );
      for (const [i, cp] of points.entries()) {
        assert.equal(cp.receivers.length, 1);
        const [r] = cp.receivers;
        assert.ok(r.type === "webhook");
        assert.equal(r.uid, `titan-remediation-${web[i].name}`);
        assert.deepEqual(r.settings, {
          url: `http://${web[i].privateIp}:${SERVICES.remediation.port}/grafana`,
          httpMethod: "POST",
          hmacConfig: {
            secret: "${TITAN_REMEDIATION_HMAC_SECRET}",
            header: "X-Grafana-Alerting-Signature",
            timestampHeader: "X-Grafana-Alerting-Timestamp",
          },
        });
        // The agent acts on firing alerts only: no resolved notifications to it.
        assert.equal(r.disableResolveMessage, true);
      }
      // The slots past webCount are deleted, so a smaller webCount removes what a larger one made.
      assert.deepEqual(remediationDeletes(files), allUids.slice(3));
    });
  }

  it("routes labelled alerts to their own host's agent first, and on to Slack (or the default receiver)", () => {
    for (const slack of [true, false]) {
      const files = render(slack, { webCount: "2" });
      const config = configWith({ webCount: "2" });
      const policy = policyOf(files);
      const [first, second, ...rest] = policy.routes;
      for (const [route, slot] of [
        [first, "web-1"],
        [second, "web-2"],
      ] as const) {
        assert.equal(route.receiver, `titan-remediation-${slot}`);
        assert.deepEqual(route.object_matchers, [
          ["remediation", "=~", ".+"],
          ["instance", "=", physicalName(config, slot)],
        ]);
        assert.equal(route.continue, true, "Slack must still get the alert");
        assert.ok(durationSeconds(route.group_wait) <= 10, "the agent acts without waiting for a group");
      }
      assert.ok(rest.every((r) => !r.object_matchers.some(([l]) => l === "remediation")));
      const severityReceiver = slack ? SLACK_CONTACT_POINT.name : DEFAULT_RECEIVER;
      const web2 = physicalName(config, "web-2");
      for (const def of alertDefinitions(config).filter((d) => d.datasource === "prometheus")) {
        const labels = {
          alertname: def.name,
          severity: def.severity,
          instance: web2,
          ...(def.remediation ? { remediation: def.remediation } : {}),
        };
        assert.deepEqual(
          receiversFor(files, labels),
          def.remediation ? ["titan-remediation-web-2", severityReceiver] : [severityReceiver],
          def.name,
        );
      }
      // A labelled alert from a host without an agent (the prometheus host's disk) reaches Slack only.
      assert.deepEqual(
        receiversFor(files, {
          alertname: "RootDiskAlmostFull",
          severity: "critical",
          remediation: "free-disk",
          instance: physicalName(config, "prometheus"),
        }),
        [severityReceiver],
      );
    }
  });

  it("off: no remediation contact point or route, and every one an earlier deploy could have made is deleted", () => {
    for (const slack of [true, false]) {
      const files = render(slack, { remediation: "off", webCount: "4" });
      assert.deepEqual(webhooksOf(files), []);
      assert.ok(policyOf(files).routes.every((r) => !r.object_matchers.some(([l]) => l === "remediation")));
      assert.deepEqual(remediationDeletes(files), allUids);
      assert.ok(!files.some((f) => f.content.includes(REMEDIATION_HMAC_SECRET_ENV)), "secret reference while off");
      // The Slack side is unchanged.
      assert.equal(
        (contactPointsOf(files).contactPoints ?? []).length,
        slack ? 1 : 0,
        "only the Slack contact point when remediation is off",
      );
    }
  });

  it("routes only to contact points the same files create, and deletes none of them", () => {
    const variants: Record<string, string>[] = [
      {},
      { webCount: "10" },
      { remediation: "off" },
      { remediation: "dry-run", webCount: "2" },
    ];
    for (const values of variants) {
      for (const slack of [true, false]) {
        const files = render(slack, values);
        const created = new Set((contactPointsOf(files).contactPoints ?? []).map((cp) => cp.name));
        const deleted = new Set((contactPointsOf(files).deleteContactPoints ?? []).map((d) => d.uid));
        const policy = policyOf(files);
        for (const receiver of [policy.receiver, ...policy.routes.map((r) => r.receiver)]) {
          assert.ok(created.has(receiver) || receiver === DEFAULT_RECEIVER, `${receiver} is not provisioned`);
        }
        for (const cp of contactPointsOf(files).contactPoints ?? []) {
          for (const r of cp.receivers) assert.ok(!deleted.has(r.uid), `${r.uid} is created and deleted`);
        }
      }
    }
  });
});
