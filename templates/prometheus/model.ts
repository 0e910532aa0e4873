/** The subset of Prometheus' configuration and rule-file formats this project renders. */

export interface Relabel {
  readonly source_labels?: readonly string[];
  readonly target_label?: string;
  readonly regex?: string;
  readonly replacement?: string;
  readonly action?: "replace" | "keep" | "drop" | "labelmap";
}

export interface Ec2SdConfig {
  readonly region: string;
  readonly port: number;
  readonly refresh_interval: string;
  readonly filters: readonly { readonly name: string; readonly values: readonly string[] }[];
  /** Only for the local end-to-end run, which points discovery at a fake EC2 API. */
  readonly endpoint?: string;
}

export interface ScrapeConfig {
  readonly job_name: string;
  readonly metrics_path?: string;
  readonly static_configs?: readonly {
    readonly targets: readonly string[];
    readonly labels?: Record<string, string>;
  }[];
  readonly ec2_sd_configs?: readonly Ec2SdConfig[];
  readonly relabel_configs?: readonly Relabel[];
  /** prometheus/common config/http_config.go BasicAuth: the password is read from the file per request. */
  readonly basic_auth?: { readonly username: string; readonly password_file: string };
}

/**
 * Prometheus 2.42's remote_write block, the fields this project sets (prometheus/prometheus v2.42.0
 * config/config.go RemoteWriteConfig and QueueConfig; `sigv4` is prometheus/common sigv4 v0.1.0
 * sigv4/sigv4_config.go SigV4Config: region, access_key, secret_key, profile, role_arn).
 */
export interface RemoteWriteConfig {
  readonly url: string;
  readonly name?: string;
  readonly queue_config?: {
    readonly capacity: number;
    readonly max_shards: number;
    readonly min_shards: number;
    readonly max_samples_per_send: number;
    readonly batch_send_deadline: string;
    readonly min_backoff: string;
    readonly max_backoff: string;
    readonly retry_on_http_429: boolean;
  };
  /** Only the region: no keys, no profile, no role, so the AWS SDK's default chain finds the instance role. */
  readonly sigv4?: { readonly region: string };
}

export interface PrometheusConfig {
  readonly global: {
    readonly scrape_interval: string;
    readonly scrape_timeout: string;
    readonly evaluation_interval: string;
  };
  readonly scrape_configs: readonly ScrapeConfig[];
  readonly remote_write?: readonly RemoteWriteConfig[];
}

export interface AlertingRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
}

export interface RuleFile {
  readonly groups: readonly {
    readonly name: string;
    readonly interval: string;
    readonly rules: readonly AlertingRule[];
  }[];
}

/** `promtool test rules` input. */
export interface RuleTestFile {
  readonly rule_files: readonly string[];
  readonly evaluation_interval: string;
  readonly tests: readonly {
    readonly name: string;
    readonly interval: string;
    readonly input_series: readonly { readonly series: string; readonly values: string }[];
    readonly alert_rule_test: readonly {
      readonly eval_time: string;
      readonly alertname: string;
      readonly exp_alerts: readonly {
        readonly exp_labels: Record<string, string>;
        readonly exp_annotations: Record<string, string>;
      }[];
    }[];
  }[];
}
