/**
 * The alert definitions: one table that renders into Grafana's alert-rule provisioning and
 * into the Prometheus rule file that `promtool test rules` exercises. Thresholds come from the
 * stack config, so a threshold changed there changes both.
 *
 * Every expression yields one series per (instance) with the value the threshold is compared
 * against; the alert fires when `value <op> threshold` holds for `for`.
 */
import type { StackConfig } from "../infra/config";

export type Severity = "critical" | "warning";

export interface AlertDefinition {
  /** Grafana rule uid and Prometheus alert name source: letters, digits, '-', at most 40. */
  readonly uid: string;
  /** Alert name (Prometheus `alert:`, Grafana `title`). */
  readonly name: string;
  readonly severity: Severity;
  /** PromQL giving the compared value, one series per instance (and job where relevant). */
  readonly expr: string;
  readonly op: ">" | "<";
  readonly threshold: number;
  /** How the value reads: a percentage 0-100, seconds, a 0-1 ratio, or a plain number. */
  readonly unit: "percent" | "seconds" | "ratio" | "none";
  /** Pending period as Prometheus/Grafana duration, e.g. "5m". */
  readonly for: string;
  readonly summary: string;
  /**
   * Mentions the value and the host. `{{ $value }}` stands for the value formatted in `unit`
   * (each renderer writes its own formatting) and `{{ $labels.x }}` for a label.
   */
  readonly description: string;
  /** Anchor of the runbook section in README.md. */
  readonly runbook: string;
  /** What to do, in a few sentences: shown in the notification and in README.md's runbook. */
  readonly runbookSteps: string;
  /** Dashboard uid the alert links to. */
  readonly dashboardUid: string;
  /** What the rule does with no data and on query errors (deliberate, per alert). */
  readonly noDataState: "OK" | "NoData" | "Alerting";
  readonly execErrState: "OK" | "Error" | "Alerting";
}

/** Fixed thresholds that are not stack config. */
export const APP_ERROR_RATIO_WARNING = 0.05;
export const APP_P95_LATENCY_WARNING_SECONDS = 0.5;

export const DASHBOARD_UIDS = { system: "titan-system", application: "titan-application", logs: "titan-logs" } as const;

/** Root filesystem, as node_exporter reports it on Debian (ext4 on /). */
const ROOT_FS = 'mountpoint="/",fstype!~"tmpfs|rootfs"';

export function alertDefinitions(config: StackConfig): AlertDefinition[] {
  const t = config.thresholds;
  return [
    {
      uid: "titan-root-disk-critical",
      name: "RootDiskAlmostFull",
      severity: "critical",
      expr: `100 * (1 - node_filesystem_avail_bytes{${ROOT_FS}} / node_filesystem_size_bytes{${ROOT_FS}})`,
      op: ">",
      threshold: t.rootDiskCriticalPercent,
      unit: "percent",
      for: "1m",
      summary: `Root disk above ${t.rootDiskCriticalPercent}% on {{ $labels.instance }}`,
      description: `The root filesystem of {{ $labels.instance }} is {{ $value }} used (threshold ${t.rootDiskCriticalPercent}%). A full root disk stops logging, package installs and the TSDB.`,
      runbook: "root-disk-almost-full",
      runbookSteps:
        "SSH to the host and run `sudo du -xh --max-depth=2 / | sort -h | tail -20` to find what grew. Usual suspects: /var/log (check logrotate ran: `sudo logrotate -d /etc/logrotate.d/titan`), the apt cache (`sudo apt-get clean`), a file left by the disk-fill demo. If the data is legitimate, raise rootVolumeSizeGb and run `pulumi up`.",
      dashboardUid: DASHBOARD_UIDS.system,
      // No data means node_exporter is gone: TargetDown reports that, not this rule.
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-cpu-high",
      name: "HighCpuUsage",
      severity: "warning",
      expr: '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))',
      op: ">",
      threshold: t.cpuWarningPercent,
      unit: "percent",
      for: "5m",
      summary: `CPU above ${t.cpuWarningPercent}% for 5 minutes on {{ $labels.instance }}`,
      description: `CPU utilisation on {{ $labels.instance }} is {{ $value }} (threshold ${t.cpuWarningPercent}%, sustained 5 minutes).`,
      runbook: "high-cpu-usage",
      runbookSteps:
        "Open the System dashboard for the host and see which process is busy with `top -o %CPU` over SSH. On a web host the load demo or a traffic spike is the usual cause: check the Application dashboard's request rate. Sustained and legitimate: raise the role's instance type or webCount.",
      dashboardUid: DASHBOARD_UIDS.system,
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-memory-high",
      name: "HighMemoryUsage",
      severity: "warning",
      expr: "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)",
      op: ">",
      threshold: t.memoryWarningPercent,
      unit: "percent",
      for: "5m",
      summary: `Memory above ${t.memoryWarningPercent}% for 5 minutes on {{ $labels.instance }}`,
      description: `Memory used on {{ $labels.instance }} is {{ $value }} (threshold ${t.memoryWarningPercent}%, sustained 5 minutes).`,
      runbook: "high-memory-usage",
      runbookSteps:
        "Check `free -m` and `ps aux --sort=-rss | head` over SSH. Prometheus grows with its series count (look for a jump in `prometheus_tsdb_head_series`), Loki with active streams, gunicorn with workers. Restart the leaking service with `sudo systemctl restart <unit>` as a stopgap, then raise the instance type.",
      dashboardUid: DASHBOARD_UIDS.system,
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-target-down",
      name: "TargetDown",
      severity: "critical",
      expr: "up",
      op: "<",
      threshold: 1,
      unit: "none",
      for: "2m",
      summary: "{{ $labels.job }} on {{ $labels.instance }} is down",
      description:
        "Prometheus has failed to scrape {{ $labels.job }} on {{ $labels.instance }} for 2 minutes (up = {{ $value }}).",
      runbook: "target-down",
      runbookSteps:
        "Find the target on Prometheus' /targets page and read its error. On the host: `systemctl status <unit>` and `journalctl -u <unit> -n 50` (titan, alloy, loki, grafana-server, prometheus-node-exporter). A stopped instance shows for every job of that host at once; a security-group change shows as connection timeouts.",
      dashboardUid: DASHBOARD_UIDS.system,
      // No `up` series at all means Prometheus itself is unreachable: that is an alert.
      noDataState: "Alerting",
      execErrState: "Alerting",
    },
    {
      uid: "titan-app-error-ratio",
      name: "AppHighErrorRatio",
      severity: "warning",
      expr: 'sum by (instance) (rate(http_requests_total{job="titan",status=~"5.."}[5m])) / sum by (instance) (rate(http_requests_total{job="titan"}[5m]))',
      op: ">",
      threshold: APP_ERROR_RATIO_WARNING,
      unit: "ratio",
      for: "5m",
      summary: "Titan answers more than 5% of requests with 5xx on {{ $labels.instance }}",
      description: `{{ $value }} of the requests to Titan on {{ $labels.instance }} failed with 5xx over 5 minutes (threshold ${APP_ERROR_RATIO_WARNING * 100}%).`,
      runbook: "app-high-error-ratio",
      runbookSteps:
        "Open the Application dashboard beside the Logs dashboard for the instance: the error panels show which endpoint fails and the error lines say why. /process fails by design at TITAN_FAILURE_RATE (5% of that endpoint); a jump above it usually means SQLite or the disk is failing (`journalctl -u titan`).",
      dashboardUid: DASHBOARD_UIDS.application,
      // No traffic means no ratio; TargetDown covers a dead app.
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-app-latency-p95",
      name: "AppHighLatencyP95",
      severity: "warning",
      expr: 'histogram_quantile(0.95, sum by (instance, le) (rate(http_request_duration_seconds_bucket{job="titan"}[5m])))',
      op: ">",
      threshold: APP_P95_LATENCY_WARNING_SECONDS,
      unit: "seconds",
      for: "5m",
      summary: `Titan p95 latency above ${APP_P95_LATENCY_WARNING_SECONDS}s on {{ $labels.instance }}`,
      description: `The 95th percentile of Titan's request duration on {{ $labels.instance }} is {{ $value }} (threshold ${APP_P95_LATENCY_WARNING_SECONDS}s, sustained 5 minutes).`,
      runbook: "app-high-latency-p95",
      runbookSteps:
        "Compare p50, p95 and p99 on the Application dashboard: all rising together means saturation (check in-flight requests and CPU; raise TITAN_WORKERS or webCount); p99 alone means a slow dependency such as SQLite on a busy disk. The load demo causes this on purpose.",
      dashboardUid: DASHBOARD_UIDS.application,
      noDataState: "OK",
      execErrState: "Error",
    },
  ];
}

/** The group every rule lives in, evaluated every minute. */
export const ALERT_GROUP = { name: "titan", folder: "Titan", interval: "1m" } as const;
