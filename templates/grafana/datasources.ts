/** Data source and dashboard-provider provisioning for the grafana host. */
import { SERVICES } from "../../facts/topology";
import { addressOf, type TemplateContext } from "../types";
import { DASHBOARD_FOLDER, DASHBOARDS_DIR, DATASOURCE_UIDS, GRAFANA_ORG_ID } from "./constants";
import { SCRAPE_INTERVAL } from "../prometheus/config";
import type { DashboardProvidersFile, DataSourcesFile } from "./model";

export function dataSourcesFile(ctx: TemplateContext): DataSourcesFile {
  const prometheusUrl = `http://${addressOf(ctx.plan, "prometheus")}:${SERVICES.prometheus.port}`;
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
