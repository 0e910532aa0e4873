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

export interface PrometheusConfig {
  readonly global: {
    readonly scrape_interval: string;
    readonly scrape_timeout: string;
    readonly evaluation_interval: string;
  };
  readonly scrape_configs: readonly ScrapeConfig[];
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
