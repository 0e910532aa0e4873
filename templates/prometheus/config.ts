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
import { AMP_FLUSH_DEADLINE_SECONDS, AMP_LOCAL_RETENTION } from "../../facts/metricsStore";
import { ampRelayUrl } from "../host/ampRelay";
import type { PrometheusConfig, Relabel, RemoteWriteConfig, ScrapeConfig } from "./model";

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
    ...(config.metricsStore === "amp" ? { remote_write: [ampRemoteWrite(ctx)] } : {}),
  };
}

/**
 * The queue, sized for this stack on a t3.small (2 GiB), against Prometheus 2.42's defaults
 * (prometheus/prometheus v2.42.0 config/config.go DefaultQueueConfig: max_shards 200, min_shards 1,
 * max_samples_per_send 500, capacity 2500, batch_send_deadline 5s, min_backoff 30ms, max_backoff
 * 5s; retry_on_http_429 false). Those defaults are sized for 1M samples/s; this stack scrapes every
 * 15 s some tens of thousands of series at webCount 10 (node_exporter on every host, Alloy, the
 * app, the agent, Loki, Grafana, Prometheus), i.e. a few thousand samples/s (the fleet measures it:
 * docs/metrics-store.md).
 */
export const AMP_QUEUE_CONFIG = {
  // Twice 2.42's 500: half as many requests, each signed (SigV4 hashes every body) and billed by
  // sample, not by request; at a few thousand samples/s one shard sends a few requests a second.
  max_samples_per_send: 1000,
  // Five batches per shard, the same ratio as 2.42's 2500/500: room to keep reading the WAL while a
  // send is in flight, without letting one shard hold more than a few seconds of the stack's samples.
  capacity: 5000,
  // 20 shards x 5000 = 100k samples queued at most (2.42's default allows 500k) on a 2 GiB host;
  // at ~100 ms a request a shard moves ~10k samples/s, so 20 give ~200k/s to catch up after an
  // outage, far above the steady rate.
  max_shards: 20,
  // The steady rate fits one shard; Prometheus reshards up to max_shards as it falls behind.
  min_shards: 1,
  // 2.42's value: a batch normally fills in about a second, the deadline only flushes a quiet queue.
  batch_send_deadline: "5s",
  // 2.42's values: retry a failed batch after 30 ms, doubling to 5 s, so after AMP was away sending
  // resumes within 5 s of its return (2.42 retries 5xx and connection errors forever:
  // storage/remote/client.go Store returns RecoverableError, queue_manager.go sendWriteRequestWithBackoff).
  min_backoff: "30ms",
  max_backoff: "5s",
  // 2.42 drops a batch answered 429 unless this is set (client.go: RecoverableError only with
  // retryOnRateLimit); AMP answers 429 when a workspace is over its ingestion rate.
  retry_on_http_429: true,
} as const satisfies RemoteWriteConfig["queue_config"];

/**
 * remote_write to the stack's AMP workspace, through the signing relay on loopback
 * (templates/host/ampRelay.ts): Debian's 2.42 parses a `sigv4` block and then ignores it (its
 * 91-Disable_opentelemetry.patch drops the line of storage/remote/client.go NewWriteClient that
 * installed the sigv4 round tripper; prometheus/prometheus#13030), so it would write unsigned and
 * AMP would refuse every write with 403. The relay signs for service "aps" in the workspace's
 * region with the instance role's IMDSv2 credentials and passes AMP's status back, so Prometheus'
 * retries (5xx, and 429 with retry_on_http_429) work as against AMP itself. No `sigv4` here: the
 * relay knows the workspace URL and region (its env file).
 */
function ampRemoteWrite(ctx: TemplateContext): RemoteWriteConfig {
  if (!ctx.amp) throw new Error("metricsStore is amp but the render context has no AMP workspace endpoints");
  return {
    url: ampRelayUrl(),
    // The remote_name label of prometheus_remote_storage_* metrics.
    name: "amp",
    queue_config: AMP_QUEUE_CONFIG,
  };
}

/** Command-line flags for Debian's unit (ExecStart=/usr/bin/prometheus $ARGS). */
export function prometheusArgs(ctx: TemplateContext): string[] {
  return [
    `--config.file=${PROMETHEUS_CONFIG_PATH}`,
    `--storage.tsdb.path=${PROMETHEUS_TSDB_PATH}`,
    // With amp the workspace is the store and the local TSDB only a short buffer.
    `--storage.tsdb.retention.time=${ctx.config.metricsStore === "amp" ? AMP_LOCAL_RETENTION : `${ctx.config.retention.prometheusDays}d`}`,
    `--web.listen-address=0.0.0.0:${SERVICES.prometheus.port}`,
    // Only with amp: a local stack's flags stay byte-for-byte what they were.
    ...(ctx.config.metricsStore === "amp" ? [`--storage.remote.flush-deadline=${AMP_FLUSH_DEADLINE_SECONDS}s`] : []),
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
