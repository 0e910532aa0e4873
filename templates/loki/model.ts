/**
 * The subset of Loki 3.7's configuration file that this stack renders, typed. Key names follow
 * Loki's configuration reference for the 3.7 line (the pinned version is in facts/versions.ts).
 * Only what is rendered is modelled; the *_KEYS lists are what the tests hold the output to.
 */

export interface LokiServer {
  readonly http_listen_port: number;
  readonly grpc_listen_address: string;
  readonly grpc_listen_port: number;
  readonly log_level: "debug" | "info" | "warn" | "error";
}

export interface LokiCommon {
  /**
   * The address every component advertises. Set, Loki never looks its address up from the
   * network interfaces (grafana/loki pkg/loki/config_wrapper.go, applyInstanceConfigs: only this
   * key feeds the frontend and memberlist addresses as well as the rings).
   */
  readonly instance_addr: string;
  readonly path_prefix: string;
  readonly replication_factor: number;
  /** No instance_addr of its own: the ring inherits common.instance_addr. */
  readonly ring: {
    readonly kvstore: { readonly store: "inmemory" };
  };
}

/**
 * Legacy S3 client (`storage_config.aws`), the default of the 3.7 line. No access keys: the
 * client falls back to the AWS SDK's default chain, i.e. the instance profile.
 */
export interface LokiAwsStorage {
  readonly bucketnames: string;
  readonly region: string;
  readonly s3forcepathstyle: boolean;
}

export interface LokiStorageConfig {
  /** Explicitly false: this config uses the legacy `aws` block (see versions.ts). */
  readonly use_thanos_objstore: false;
  readonly aws: LokiAwsStorage;
  readonly tsdb_shipper: {
    readonly active_index_directory: string;
    readonly cache_location: string;
  };
}

export interface LokiPeriodConfig {
  /** YYYY-MM-DD; the first day this schema applies. */
  readonly from: string;
  readonly store: "tsdb";
  readonly object_store: "s3";
  readonly schema: "v13";
  readonly index: { readonly prefix: string; readonly period: "24h" };
}

export interface LokiCompactor {
  readonly working_directory: string;
  readonly compaction_interval: string;
  readonly retention_enabled: true;
  readonly retention_delete_delay: string;
  readonly retention_delete_worker_count: number;
  /** Required when retention is enabled: the object store that keeps delete requests. */
  readonly delete_request_store: "s3";
}

export interface LokiLimits {
  readonly retention_period: string;
  readonly ingestion_rate_mb: number;
  readonly ingestion_burst_size_mb: number;
  readonly per_stream_rate_limit: string;
  readonly per_stream_rate_limit_burst: string;
  readonly max_global_streams_per_user: number;
  readonly max_label_names_per_series: number;
  readonly max_line_size: string;
  readonly reject_old_samples: boolean;
  readonly reject_old_samples_max_age: string;
  readonly max_query_series: number;
  readonly max_query_parallelism: number;
  readonly max_entries_limit_per_query: number;
  readonly max_query_lookback: string;
  /** Empty: no `service_name` label is invented, so the label set stays the Alloy contract. */
  readonly discover_service_name: readonly string[];
}

/** The WAL's replay budget; WAL on and its dir under path_prefix are Loki's defaults. */
export interface LokiIngester {
  readonly wal: { readonly replay_memory_ceiling: string };
}

export interface LokiConfig {
  readonly target: "all";
  readonly auth_enabled: false;
  readonly server: LokiServer;
  readonly common: LokiCommon;
  readonly ingester: LokiIngester;
  readonly schema_config: { readonly configs: readonly LokiPeriodConfig[] };
  readonly storage_config: LokiStorageConfig;
  readonly compactor: LokiCompactor;
  readonly limits_config: LokiLimits;
  readonly analytics: { readonly reporting_enabled: false };
}

/** Every key the renderer may emit, per block: anything else in the output is a bug. */
export const LOKI_TOP_LEVEL_KEYS = [
  "target",
  "auth_enabled",
  "server",
  "common",
  "ingester",
  "schema_config",
  "storage_config",
  "compactor",
  "limits_config",
  "analytics",
] as const satisfies readonly (keyof LokiConfig)[];

export const LOKI_BLOCK_KEYS = {
  server: ["http_listen_port", "grpc_listen_address", "grpc_listen_port", "log_level"],
  common: ["instance_addr", "path_prefix", "replication_factor", "ring"],
  ingester: ["wal"],
  storage_config: ["use_thanos_objstore", "aws", "tsdb_shipper"],
  compactor: [
    "working_directory",
    "compaction_interval",
    "retention_enabled",
    "retention_delete_delay",
    "retention_delete_worker_count",
    "delete_request_store",
  ],
  limits_config: [
    "retention_period",
    "ingestion_rate_mb",
    "ingestion_burst_size_mb",
    "per_stream_rate_limit",
    "per_stream_rate_limit_burst",
    "max_global_streams_per_user",
    "max_label_names_per_series",
    "max_line_size",
    "reject_old_samples",
    "reject_old_samples_max_age",
    "max_query_series",
    "max_query_parallelism",
    "max_entries_limit_per_query",
    "max_query_lookback",
    "discover_service_name",
  ],
  analytics: ["reporting_enabled"],
} as const satisfies {
  server: readonly (keyof LokiServer)[];
  common: readonly (keyof LokiCommon)[];
  ingester: readonly (keyof LokiIngester)[];
  storage_config: readonly (keyof LokiStorageConfig)[];
  compactor: readonly (keyof LokiCompactor)[];
  limits_config: readonly (keyof LokiLimits)[];
  analytics: readonly "reporting_enabled"[];
};

/** Keys of the S3 block; credentials (access_key_id, secret_access_key, s3 URLs) never appear. */
export const LOKI_AWS_KEYS = [
  "bucketnames",
  "region",
  "s3forcepathstyle",
] as const satisfies readonly (keyof LokiAwsStorage)[];
