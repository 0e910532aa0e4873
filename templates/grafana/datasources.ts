/** Data source and dashboard-provider provisioning for the grafana host. */
import { SERVICES } from "../../facts/topology";
import { addressOf, type TemplateContext } from "../types";
import { DASHBOARD_FOLDER, DASHBOARDS_DIR, DATASOURCE_UIDS, GRAFANA_ORG_ID } from "./constants";
import { SCRAPE_INTERVAL } from "../prometheus/config";
import type { DashboardProvidersFile, DataSourcesFile } from "./model";

/**
 * The Prometheus data source keeps its name and uid on either store, so dashboards and alert rules
 * are the same files; with metricsStore=amp it points at the workspace (TemplateContext.amp) and
 * signs with the Grafana host's instance role (its settings: templates/host/grafanaServer.ts).
 */
export function dataSourcesFile(ctx: TemplateContext): DataSourcesFile {
  if (ctx.config.metricsStore === "amp" && !ctx.amp) {
    throw new Error("metricsStore is amp but the render context has no AMP workspace endpoints");
  }
  const prometheusUrl = ctx.amp
    ? ctx.amp.queryUrl
    : `http://${addressOf(ctx.plan, "prometheus")}:${SERVICES.prometheus.port}`;
  const lokiUrl = `http://${addressOf(ctx.plan, "loki")}:${SERVICES.loki.port}`;
  return {
    apiVersion: 1,
    // A data source renamed or dropped here is removed from Grafana instead of lingering.
    prune: true,
    datasources: [
      {
        name: "Prometheus",
        uid: DATASOURCE_UIDS.prometheus,
        type: "prometheus",
        access: "proxy",
        orgId: GRAFANA_ORG_ID,
        url: prometheusUrl,
        isDefault: true,
        editable: false,
        jsonData: {
          httpMethod: "POST",
          timeInterval: SCRAPE_INTERVAL,
          prometheusType: "Prometheus",
          manageAlerts: false,
          ...(ctx.amp ? { sigV4Auth: true, sigV4AuthType: "ec2_iam_role", sigV4Region: ctx.amp.region } : {}),
        },
      },
      {
        name: "Loki",
        uid: DATASOURCE_UIDS.loki,
        type: "loki",
        access: "proxy",
        orgId: GRAFANA_ORG_ID,
        url: lokiUrl,
        isDefault: false,
        editable: false,
        jsonData: { maxLines: 1000, timeout: 60 },
      },
    ],
  };
}

export function dashboardProvidersFile(): DashboardProvidersFile {
  return {
    apiVersion: 1,
    providers: [
      {
        name: "titan",
        orgId: GRAFANA_ORG_ID,
        folder: DASHBOARD_FOLDER,
        type: "file",
        // A dashboard file removed from the directory is removed from Grafana.
        disableDeletion: false,
        updateIntervalSeconds: 30,
        // The files are the source of truth: UI edits would be overwritten on the next push.
        allowUiUpdates: false,
        options: { path: DASHBOARDS_DIR, foldersFromFilesStructure: false },
      },
    ],
  };
}
