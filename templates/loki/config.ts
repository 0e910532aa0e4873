/**
 * /etc/loki/config.yml for the loki host: Loki 3.7 as a single binary, chunks and TSDB index in
 * the stack's S3 bucket through the instance profile, retention by the compactor from the stack
 * config, limits sized for one small host. The path is the one the Debian package's unit reads
 * (`loki -config.file /etc/loki/config.yml`).
 */
import YAML from "yaml";
import { SERVICES } from "../../facts/topology";
import type { RenderedFile, TemplateContext } from "../types";
import { VERSIONS } from "../../facts/versions";
import { instanceMemoryMiB } from "../../facts/instanceMemory";
import type { LokiConfig } from "./model";

/** The packaged unit (tools/packaging/loki.service). */
export const LOKI_SERVICE = "loki";
export const LOKI_CONFIG_PATH = "/etc/loki/config.yml";
/**
 * Written by the push right after LOKI_CONFIG_PATH; loki.service has a ConditionPathExists= on
 * it (templates/host/units.ts). The package ships its own example at LOKI_CONFIG_PATH, so that
 * path existing proves nothing: this one only the push writes.
 */
export const LOKI_CONFIGURED_PATH = "/etc/loki/titan-configured";
/** The package runs Loki as user `loki`; the file is readable by group `loki`, not by all. */
export const LOKI_CONFIG_OWNER = { owner: "root", group: "loki", mode: 0o640 } as const;
export const LOKI_DATA_DIR = "/var/lib/loki";
export const LOKI_GRPC_PORT = 9096;
/**
 * The address Loki's components advertise to each other: one process on one host, so loopback,
 * as upstream's own single-binary config does (grafana/loki cmd/loki/loki-local-config.yaml,
 * `common.instance_addr: 127.0.0.1`). Clients still reach the HTTP port on every interface.
 */
export const LOKI_INSTANCE_ADDR = "127.0.0.1";
/**
 * Where the gRPC server listens: loopback, since only Loki itself calls it. Consistent with
 * single-binary mode: the ring advertises LOKI_INSTANCE_ADDR with the gRPC port, and the
 * querier worker, left unconfigured, dials 127.0.0.1 on the gRPC port (grafana/loki
 * pkg/querier/worker_service.go InitWorkerService); dskit's server binds
 * server.grpc_listen_address (dskit server/server.go).
 */
export const LOKI_GRPC_LISTEN_ADDRESS = "127.0.0.1";
/**
 * Share of the host's memory the WAL replay may fill before it flushes to storage. Loki's
 * default is 4GB whatever the host (pkg/ingester/wal.go defaultCeiling, flag
 * -ingester.wal-replay-memory-ceiling, whose help suggests a high share of the memory): on a
 * 2 GiB host a replay after a crash would be OOM-killed and crash again. Half leaves room for
 * the rest of Loki and the host.
 */
export const LOKI_REPLAY_MEMORY_SHARE = 0.5;

/** `ingester.wal.replay_memory_ceiling` for the Loki host's instance type, in whole MB. */
export function lokiReplayMemoryCeiling(instanceType: string): string {
  const mib = instanceMemoryMiB(instanceType);
  if (typeof mib !== "number")
    throw new Error(`lokiInstanceType = ${JSON.stringify(instanceType)}: expected ${mib.expected}`);
  return `${Math.floor(mib * LOKI_REPLAY_MEMORY_SHARE)}MB`;
}
/**
 * First day of the tsdb/v13 schema period. A new schema is added as a new period with a later
 * date; this one must never change once the stack holds data.
 */
export const LOKI_SCHEMA_FROM = "2025-01-01";

/** Loki's retention in hours for the configured number of days (the compactor deletes past it). */
export function lokiRetentionHours(days: number): number {
  if (!Number.isInteger(days) || days < 1)
    throw new Error(`Loki retention must be a whole number of days, got ${days}`);
  return days * 24;
}

export function lokiConfig(ctx: TemplateContext): LokiConfig {
  const { config } = ctx;
  const retentionHours = lokiRetentionHours(config.retention.lokiDays);
  return {
    target: "all",
    auth_enabled: false,
    server: {
      http_listen_port: SERVICES.loki.port,
      grpc_listen_address: LOKI_GRPC_LISTEN_ADDRESS,
      grpc_listen_port: LOKI_GRPC_PORT,
      log_level: "info",
    },
    common: {
      instance_addr: LOKI_INSTANCE_ADDR,
      path_prefix: LOKI_DATA_DIR,
      replication_factor: 1,
      ring: { kvstore: { store: "inmemory" } },
    },
    ingester: { wal: { replay_memory_ceiling: lokiReplayMemoryCeiling(config.instanceTypes.loki) } },
    schema_config: {
      configs: [
        {
          from: LOKI_SCHEMA_FROM,
          store: "tsdb",
          object_store: "s3",
          schema: "v13",
          index: { prefix: "index_", period: "24h" },
        },
      ],
    },
    storage_config: {
      use_thanos_objstore: false,
      aws: { bucketnames: ctx.lokiBucket, region: config.region, s3forcepathstyle: false },
      tsdb_shipper: {
        active_index_directory: `${LOKI_DATA_DIR}/tsdb-index`,
        cache_location: `${LOKI_DATA_DIR}/tsdb-cache`,
      },
    },
    compactor: {
      working_directory: `${LOKI_DATA_DIR}/compactor`,
      compaction_interval: "10m",
      retention_enabled: true,
      retention_delete_delay: "2h",
      retention_delete_worker_count: 50,
      delete_request_store: "s3",
    },
    limits_config: {
      retention_period: `${retentionHours}h`,
      ingestion_rate_mb: 4,
      ingestion_burst_size_mb: 8,
      per_stream_rate_limit: "2MB",
      per_stream_rate_limit_burst: "4MB",
      max_global_streams_per_user: 1000,
      max_label_names_per_series: 15,
      max_line_size: "256KB",
      reject_old_samples: true,
      reject_old_samples_max_age: "168h",
      max_query_series: 500,
      max_query_parallelism: 4,
      max_entries_limit_per_query: 5000,
      max_query_lookback: `${retentionHours}h`,
      discover_service_name: [],
    },
    analytics: { reporting_enabled: false },
  };
}

/** Comments placed above keys, by dotted path. */
const COMMENTS: Readonly<Record<string, string>> = {
  target: " Single binary: every component in one process on the one loki host.",
  auth_enabled:
    " No tenants and no authentication. Safe only because the loki security group admits :3100\n" +
    " from the web (push), Grafana (queries) and Prometheus (metrics) security groups alone.",
  "server.grpc_listen_address": " Internal only: Loki calls itself over gRPC; nothing else may.",
  "server.grpc_listen_port": " Not opened in any security group either.",
  "ingester.wal.replay_memory_ceiling":
    " Half the host's memory (from lokiInstanceType), not Loki's 4GB default: a WAL replay after\n" +
    " a crash must fit the host, or it is OOM-killed and crashes again.",
  "common.instance_addr":
    " Advertised by every component. Without it Loki reads its address from the network\n" +
    " interfaces (over netlink) at start-up and stops when it finds none it likes.",
  "common.ring": " One instance, so the ring lives in memory (no memberlist, no consul).",
  "storage_config.use_thanos_objstore":
    " Loki 3.7 defaults to the legacy object-store clients; say so, so an upgrade that flips the\n" +
    " default fails loudly in -verify-config instead of silently ignoring the aws block.",
  "storage_config.aws": " S3 through the instance profile: no keys here, the AWS SDK's default chain finds the role.",
  "schema_config.configs": " TSDB index, schema v13, one index table per day. Add periods; never edit one.",
  compactor: " The compactor applies retention and deletes expired chunks from S3.",
  "compactor.delete_request_store": " Required once retention is enabled: where delete requests live.",
  "compactor.retention_delete_delay": " Grace period before marked chunks are really deleted.",
  "limits_config.retention_period": " lokiRetentionDays x 24h; the bucket's lifecycle rule expires a day later.",
  "limits_config.ingestion_rate_mb": " Per tenant: a few web hosts at most, on one small instance.",
  "limits_config.per_stream_rate_limit": " One runaway log file cannot starve the others.",
  "limits_config.max_global_streams_per_user":
    " Labels are low-cardinality by contract (job, host, role, environment, filename, level,\n" +
    " unit): a few hundred streams at most; more means a label leak.",
  "limits_config.reject_old_samples_max_age": " A week: a replaced host may resend an old file, not older.",
  "limits_config.max_query_series": " Keep one heavy dashboard query from exhausting the host's memory.",
  "limits_config.max_query_lookback": " Nothing older than retention exists; do not scan for it.",
  "limits_config.discover_service_name": " Do not invent a service_name label: the label set is the contract.",
  analytics: " No usage reports to grafana.com.",
};

export function renderLokiYaml(config: LokiConfig): string {
  const doc = new YAML.Document(config);
  doc.commentBefore = ` Loki ${VERSIONS.loki.version} configuration. Rendered by templates/loki/config.ts; do not edit on the host.`;
  for (const [path, comment] of Object.entries(COMMENTS)) {
    const keys = path.split(".");
    const parent: unknown = keys.length === 1 ? doc.contents : doc.getIn(keys.slice(0, -1), true);
    if (!YAML.isMap(parent)) throw new Error(`no YAML map at ${keys.slice(0, -1).join(".")}`);
    const pair = parent.items.find((p) => YAML.isScalar(p.key) && p.key.value === keys[keys.length - 1]);
    if (!pair || !YAML.isScalar(pair.key)) throw new Error(`no key ${path} to comment`);
    pair.key.commentBefore = comment;
  }
  return doc.toString({ lineWidth: 0 });
}

export function renderLokiConfig(ctx: TemplateContext): RenderedFile {
  return { path: LOKI_CONFIG_PATH, content: renderLokiYaml(lokiConfig(ctx)), ...LOKI_CONFIG_OWNER };
}

/**
 * What the push gives the loki host: the configuration, then the mark that lets the unit start
 * (placed in this order, so the mark never exists without the configuration).
 */
export function renderLokiFiles(ctx: TemplateContext): RenderedFile[] {
  return [
    renderLokiConfig(ctx),
    {
      path: LOKI_CONFIGURED_PATH,
      content:
        "# Written by the configuration push after config.yml. loki.service starts only once this\n" +
        "# file exists (ConditionPathExists in its drop-in): never on the package's example config.\n",
      owner: "root",
      group: "root",
      mode: 0o644,
    },
  ];
}
