/**
 * prometheus.yml and Debian's /etc/default/prometheus for the prometheus host: every target
 * found through EC2 discovery on this stack's tags, labelled with the host's Name, role and
 * environment; retention from the stack config.
 */
import { SERVICES } from "../../facts/topology";
import { physicalName } from "../../facts/naming";
import { SCRAPE_JOBS, SELF_JOB } from "../../facts/scrapeJobs";
import type { RenderedFile, TemplateContext } from "../types";
import { toYaml } from "../yaml";
import type { PrometheusConfig, Relabel, ScrapeConfig } from "./model";

export const PROMETHEUS_CONFIG_PATH = "/etc/prometheus/prometheus.yml";
export const PROMETHEUS_DEFAULTS_PATH = "/etc/default/prometheus";
/** Debian's default TSDB directory, on the data volume mounted at /var/lib/prometheus. */
export const PROMETHEUS_TSDB_PATH = "/var/lib/prometheus/metrics2";
export const SCRAPE_INTERVAL = "15s";
/** Written by the Prometheus push from its stdin (infra/delivery/prometheusSecrets.ts), never rendered. */
export const PROMETHEUS_SECRETS_DIR = "/etc/prometheus/secrets";
export const GRAFANA_METRICS_PASSWORD_FILE = `${PROMETHEUS_SECRETS_DIR}/grafana_metrics_password`;

export interface PrometheusRenderOptions {
  /** Test-only: an EC2 API endpoint for discovery (the local end-to-end run's fake). */
  readonly ec2Endpoint?: string;
}

/** EC2 discovery meta labels become the target's instance, role and environment. */
const TARGET_RELABELS: readonly Relabel[] = [
  { source_labels: ["__meta_ec2_tag_Name"], target_label: "instance" },
  { source_labels: ["__meta_ec2_tag_Role"], target_label: "role" },
  { source_labels: ["__meta_ec2_tag_Environment"], target_label: "environment" },
];

export function prometheusConfig(ctx: TemplateContext, options: PrometheusRenderOptions = {}): PrometheusConfig {
  const { config } = ctx;
  const discovered: ScrapeConfig[] = SCRAPE_JOBS.map((job) => ({
    job_name: job.job,
    metrics_path: job.metricsPath,
    ec2_sd_configs: [
      {
        // promtool before 3.14 cannot check ec2_sd_configs offline without an explicit region.
        region: config.region,
        port: SERVICES[job.service].port,
        refresh_interval: "60s",
        filters: [
          { name: "tag:Scrape", values: ["true"] },
          { name: "tag:Project", values: [config.project] },
          { name: "tag:Environment", values: [config.environment] },
          { name: "tag:Role", values: [...job.roles] },
          { name: "instance-state-name", values: ["running"] },
        ],
        ...(options.ec2Endpoint ? { endpoint: options.ec2Endpoint } : {}),
      },
    ],
    relabel_configs: TARGET_RELABELS,
    ...("basicAuthUser" in job
      ? { basic_auth: { username: job.basicAuthUser, password_file: GRAFANA_METRICS_PASSWORD_FILE } }
      : {}),
  }));
  const self: ScrapeConfig = {
    job_name: SELF_JOB,
    static_configs: [
      {
        targets: [`localhost:${SERVICES.prometheus.port}`],
        labels: {
          instance: physicalName(config, "prometheus"),
          role: "prometheus",
          environment: config.environment,
        },
      },
    ],
  };
  return {
    global: { scrape_interval: SCRAPE_INTERVAL, scrape_timeout: "10s", evaluation_interval: "1m" },
    scrape_configs: [self, ...discovered],
  };
}

/** Command-line flags for Debian's unit (ExecStart=/usr/bin/prometheus $ARGS). */
export function prometheusArgs(ctx: TemplateContext): string[] {
  return [
    `--config.file=${PROMETHEUS_CONFIG_PATH}`,
    `--storage.tsdb.path=${PROMETHEUS_TSDB_PATH}`,
    `--storage.tsdb.retention.time=${ctx.config.retention.prometheusDays}d`,
    `--web.listen-address=0.0.0.0:${SERVICES.prometheus.port}`,
  ];
}

export function renderPrometheusFiles(ctx: TemplateContext, options: PrometheusRenderOptions = {}): RenderedFile[] {
  const header =
    "# Rendered by templates/prometheus/config.ts; changes here are overwritten on the next `pulumi up`.\n";
  return [
    {
      path: PROMETHEUS_CONFIG_PATH,
      content: header + toYaml(prometheusConfig(ctx, options)),
      mode: 0o640,
      owner: "root",
      group: "prometheus",
    },
    {
      path: PROMETHEUS_DEFAULTS_PATH,
      // Reload is SIGHUP (Debian's ExecReload), so the lifecycle API stays off.
      content: `${header}ARGS="${prometheusArgs(ctx).join(" ")}"\n`,
      mode: 0o644,
      owner: "root",
      group: "root",
    },
  ];
}
