/**
 * The alert definitions: one table that renders into Grafana's alert-rule provisioning and
 * into the Prometheus rule file that `promtool test rules` exercises. Thresholds come from the
 * stack config, so a threshold changed there changes both.
 *
 * Every expression yields one series per (instance) with the value the threshold is compared
 * against; the alert fires when `value <op> threshold` holds for `for`. LogQL rules (data source
 * "loki") are Grafana-managed only: promtool cannot run them, the LogQL grammar check does.
 */
import { addressPlan } from "../facts/addressing";
import type { StackConfig } from "../facts/config";
import { physicalName } from "../facts/naming";
import type { JobName } from "../facts/scrapeJobs";
import { REMEDIATION_METRIC, type RemediationAction } from "../facts/remediation";
import type { Role } from "../facts/topology";
import { TITAN_JOB } from "./alloy/config";

export type Severity = "critical" | "warning";

export interface AlertDefinition {
  /** Grafana rule uid and Prometheus alert name source: letters, digits, '-', at most 40. */
  readonly uid: string;
  /** Alert name (Prometheus `alert:`, Grafana `title`). */
  readonly name: string;
  readonly severity: Severity;
  /** Which data source runs `expr`: PromQL on Prometheus, or LogQL on Loki (Grafana only). */
  readonly datasource: "prometheus" | "loki";
  /** The query giving the compared value, one series per instance (and job where relevant). */
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
  /** Heading of the alert's runbook section, as a reader would write it ("High CPU usage"). */
  readonly title: string;
  /** Anchor of the runbook section: the heading's anchor as GitHub derives it (runbookAnchor). */
  readonly runbook: string;
  /** What to do, in a few sentences: shown in the notification and in docs/runbooks.md. */
  readonly runbookSteps: string;
  /** Dashboard uid the alert links to. */
  readonly dashboardUid: string;
  /** What the rule does with no data and on query errors (deliberate, per alert). */
  readonly noDataState: "OK" | "NoData" | "Alerting";
  readonly execErrState: "OK" | "Error" | "Alerting";
  /**
   * Absence rules only: the label sets of the series the stack deployed, one per host. The
   * expression yields 1 for each one missing; tests read this to know what must (not) fire.
   */
  readonly expectedSeries?: readonly Readonly<Record<string, string>>[];
  /**
   * The fix the web host's remediation agent applies when this fires (the `remediation` label;
   * facts/remediation.ts REMEDIATION_ACTIONS). Only alerts whose `instance` is a web host.
   */
  readonly remediation?: RemediationAction;
}

/**
 * The reasons Alloy's loki.write counts dropped entries under, each with what it means for
 * this stack (grafana/alloy internal/component/common/loki/client, v1.18.1 to v1.19: shards.go
 * sendBatch and queue append, endpoint.go enqueue). Any status that is not 429 or 5xx (a 4xx:
 * Loki refusing the batch, e.g. lines too old, out of order or too long) drops the whole batch
 * at once as ingester_error, as do 5xx and connection errors once the retries run out.
 * metrics.go also declares line_too_long and zero-initialises it, but nothing increments it:
 * it is not listed, and a line Loki finds too long arrives as a 400, so ingester_error.
 */
export const ALLOY_DROP_REASONS: readonly { readonly reason: string; readonly means: string }[] = [
  {
    reason: "ingester_error",
    means:
      "Loki refused the batch (any 4xx but 429 drops it at once: check LokiDiscardingLogs for why, e.g. timestamps too old or lines too long) or was unreachable until the retries ran out (5xx or connection errors: see LogsNotReachingLoki and `systemctl status loki` on the loki host).",
  },
  {
    reason: "rate_limited",
    means: "Loki answered 429 to the last retry: it refuses the volume, see LokiDiscardingLogs.",
  },
  {
    reason: "stream_limited",
    means: "a batch reached Alloy's own max_streams: a label with too many values on the web host.",
  },
  {
    reason: "queue_is_full",
    means:
      "Alloy's send queue was full and loki.write drops rather than waits (block_on_overflow off): the drops follow a burst or a slow Loki.",
  },
];

/** Prometheus job names the rules select on (facts/scrapeJobs.ts SCRAPE_JOBS). */
const TITAN_SCRAPE_JOB = "titan" satisfies JobName;
const REMEDIATION_SCRAPE_JOB = "remediation" satisfies JobName;

/** Fixed thresholds that are not stack config. */
export const APP_ERROR_RATIO_WARNING = 0.05;
/** node-mixin's NodeClockSkewDetected threshold. */
export const CLOCK_SKEW_SECONDS = 0.05;
export const APP_P95_LATENCY_WARNING_SECONDS = 0.5;

export const DASHBOARD_UIDS = {
  system: "titan-system",
  application: "titan-application",
  logs: "titan-logs",
  pipeline: "titan-pipeline",
} as const;

/** Every host the address plan deploys, as Prometheus labels its node_exporter target. */
export function deployedHosts(config: StackConfig): { instance: string; role: Role }[] {
  return addressPlan(config.vpcCidr, config.webCount).hosts.map((h) => ({
    instance: physicalName(config, h.name),
    role: h.role,
  }));
}

/**
 * 1 for each deployed host without an `up{job="node"}` series. EC2 discovery keeps only running
 * instances (our `instance-state-name` filter), so a stopped or terminated host's targets are
 * dropped and their series go stale: `up < 1` never sees it, absence against the plan does.
 */
function missingHostsExpr(hosts: readonly { instance: string; role: Role }[]): string {
  const absent = hosts.map((h) => `absent(up{job="node", instance="${h.instance}", role="${h.role}"})`);
  return `max by (instance, role) (${absent.join(" or ")})`;
}

/** Root filesystem, as node_exporter reports it on Debian (ext4 on /). */
const ROOT_FS = 'mountpoint="/",fstype!~"tmpfs|rootfs"';

/**
 * The anchor GitHub gives a Markdown heading: lower case, every character but a word character
 * (letter, mark, digit, connector), '-' or ' ' dropped, each space a '-' (gjtorikian/html-pipeline
 * lib/html/pipeline/toc_filter.rb: PUNCTUATION_REGEXP = /[^\p{Word}\- ]/u, then `downcase`,
 * `gsub(PUNCTUATION_REGEXP, "")`, `tr(" ", "-")`).
 */
export const runbookAnchor = (title: string): string =>
  title
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{Nd}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");

export function alertDefinitions(config: StackConfig): AlertDefinition[] {
  return alertTable(config).map((def) => ({ ...def, runbook: runbookAnchor(def.title) }));
}

function alertTable(config: StackConfig): Omit<AlertDefinition, "runbook">[] {
  const t = config.thresholds;
  const hosts = deployedHosts(config);
  return [
    {
      uid: "titan-root-disk-critical",
      name: "RootDiskAlmostFull",
      severity: "critical",
      datasource: "prometheus",
      expr: `100 * (1 - node_filesystem_avail_bytes{${ROOT_FS}} / node_filesystem_size_bytes{${ROOT_FS}})`,
      op: ">",
      threshold: t.rootDiskCriticalPercent,
      unit: "percent",
      for: "1m",
      summary: `Root disk above ${t.rootDiskCriticalPercent}% on {{ $labels.instance }}`,
      description: `The root filesystem of {{ $labels.instance }} is {{ $value }} used (threshold ${t.rootDiskCriticalPercent}%). A full root disk stops logging, package installs and the TSDB.`,
      title: "Root disk almost full",
      runbookSteps:
        "On a web host with remediation on (the default) the remediation agent frees space at once: it stops the disk-fill demo and removes its files, and rotates and compresses the app's logs, nothing else (`journalctl -u titan-remediation -u titan-free-disk -n 50` shows what it did and how many bytes it freed). If the alert stays, or on another host, SSH to the host and run `sudo du -xh --max-depth=2 / | sort -h | tail -20` to find what grew. Usual suspects: /var/log (check logrotate ran: `sudo logrotate -d /etc/logrotate.d/titan`), the apt cache (`sudo apt-get clean`), a file left by the disk-fill demo. If the data is legitimate, raise rootVolumeSizeGb and run `npm run deploy`.",
      dashboardUid: DASHBOARD_UIDS.system,
      // No data means node_exporter is gone: TargetDown reports that, not this rule.
      noDataState: "OK",
      execErrState: "Error",
      remediation: "free-disk",
    },
    {
      uid: "titan-cpu-high",
      name: "HighCpuUsage",
      severity: "warning",
      datasource: "prometheus",
      expr: '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))',
      op: ">",
      threshold: t.cpuWarningPercent,
      unit: "percent",
      for: "5m",
      summary: `CPU above ${t.cpuWarningPercent}% for 5 minutes on {{ $labels.instance }}`,
      description: `CPU utilisation on {{ $labels.instance }} is {{ $value }} (threshold ${t.cpuWarningPercent}%, sustained 5 minutes).`,
      title: "High CPU usage",
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
      datasource: "prometheus",
      expr: "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)",
      op: ">",
      threshold: t.memoryWarningPercent,
      unit: "percent",
      for: "5m",
      summary: `Memory above ${t.memoryWarningPercent}% for 5 minutes on {{ $labels.instance }}`,
      description: `Memory used on {{ $labels.instance }} is {{ $value }} (threshold ${t.memoryWarningPercent}%, sustained 5 minutes).`,
      title: "High memory usage",
      runbookSteps:
        "Check `free -m` and `ps aux --sort=-rss | head` over SSH. Prometheus grows with its series count (look for a jump in `prometheus_tsdb_head_series`), Loki with active streams, gunicorn with workers. Restart the leaking service with `sudo systemctl restart <unit>` as a stopgap, then raise the instance type.",
      dashboardUid: DASHBOARD_UIDS.system,
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-clock-skew",
      name: "ClockSkewDetected",
      severity: "warning",
      datasource: "prometheus",
      // prometheus/node_exporter docs/node-mixin/alerts/alerts.libsonnet NodeClockSkewDetected:
      // offset beyond 0.05s and not shrinking (offset and its 5m derivative share a sign), for 10m.
      // As one compared value that always has a series (a healthy host reads 0 or its small
      // offset, so the end-to-end run sees data): |offset|, times 0 while offset and trend have
      // opposite signs (converging).
      expr: 'abs(node_timex_offset_seconds{job="node"}) * (node_timex_offset_seconds{job="node"} * deriv(node_timex_offset_seconds{job="node"}[5m]) >= bool 0)',
      op: ">",
      threshold: CLOCK_SKEW_SECONDS,
      unit: "seconds",
      for: "10m",
      summary: "Clock on {{ $labels.instance }} is off by more than 50ms",
      description: `The system clock of {{ $labels.instance }} is {{ $value }} away from its time source and not converging (threshold ${CLOCK_SKEW_SECONDS * 1000}ms, sustained 10 minutes). Signed AWS API calls (EC2 discovery) and Loki refuse clocks that are far enough off.`,
      title: "Clock skew detected",
      // `--replace <urn>` is pulumi up's (pulumi/pulumi pkg/cmd/pulumi/operations/up.go), passed on
      // by deploy.sh; `pulumi stack --show-urns` lists the URNs (pkg/cmd/pulumi/stack/stack.go).
      runbookSteps:
        "SSH to the host and run `timedatectl timesync-status`: the server should be the Amazon Time Sync Service (169.254.169.123) and the offset small. `journalctl -u systemd-timesyncd -n 50` shows why it cannot reach it or steps. If timesyncd is not running, `sudo systemctl restart systemd-timesyncd`; a host that keeps drifting after that is replaced with `npm run deploy -- --replace <its instance URN>` (`npm run pulumi -- stack --show-urns` lists them). See ClockNotSynchronising when the kernel reports no synchronisation at all.",
      dashboardUid: DASHBOARD_UIDS.system,
      // No timex series means node_exporter is gone: TargetDown reports that.
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-clock-not-synchronising",
      name: "ClockNotSynchronising",
      severity: "warning",
      datasource: "prometheus",
      // Same file, NodeClockNotSynchronising: the kernel reported unsynchronised for 5 minutes and
      // its maximum error reached 16s (the kernel's ceiling once no daemon disciplines it), for 10m.
      // As one value with a series on every host: the lowest sync status over 5m, plus 1 while the
      // maximum error is below 16s; 0 means both conditions hold.
      expr: 'min_over_time(node_timex_sync_status{job="node"}[5m]) + (node_timex_maxerror_seconds{job="node"} < bool 16)',
      op: "<",
      threshold: 1,
      unit: "none",
      for: "10m",
      summary: "Clock on {{ $labels.instance }} is not synchronising",
      description:
        "The kernel of {{ $labels.instance }} has reported its clock unsynchronised for 10 minutes (sync status {{ $value }}, maximum error at its 16s ceiling): nothing disciplines it, so it drifts freely.",
      title: "Clock not synchronising",
      runbookSteps:
        "SSH to the host: `systemctl status systemd-timesyncd` (it must be active) and `timedatectl show-timesync --all` (the server must be 169.254.169.123, set by the user-data drop-in under /etc/systemd/timesyncd.conf.d/). `journalctl -u systemd-timesyncd -n 50` names the failure: no route to the link-local address, or another time daemon holding the clock. `sudo systemctl restart systemd-timesyncd` and check that `timedatectl` says `System clock synchronized: yes` within a minute.",
      dashboardUid: DASHBOARD_UIDS.system,
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-target-down",
      name: "TargetDown",
      severity: "critical",
      datasource: "prometheus",
      expr: "up",
      op: "<",
      threshold: 1,
      unit: "none",
      for: "2m",
      summary: "{{ $labels.job }} on {{ $labels.instance }} is down",
      description:
        "Prometheus has failed to scrape {{ $labels.job }} on {{ $labels.instance }} for 2 minutes (up = {{ $value }}).",
      title: "Target down",
      runbookSteps:
        "Find the target on Prometheus' /targets page and read its error. On the host: `systemctl status <unit>` and `journalctl -u <unit> -n 50` (titan, alloy, loki, grafana-server, prometheus-node-exporter). A stopped instance shows for every job of that host at once; a security-group change shows as connection timeouts.",
      dashboardUid: DASHBOARD_UIDS.system,
      // No `up` series at all means Prometheus itself is unreachable: that is an alert.
      noDataState: "Alerting",
      execErrState: "Alerting",
    },
    {
      uid: "titan-app-not-answering",
      name: "AppNotAnswering",
      severity: "critical",
      datasource: "prometheus",
      // The scrape of the app's /metrics failed: the process may be alive (systemd sees nothing
      // wrong) but it does not answer. Sooner than TargetDown, so the agent restarts it first.
      expr: `up{job="${TITAN_SCRAPE_JOB}"}`,
      op: "<",
      threshold: 1,
      unit: "none",
      for: "1m",
      summary: "Titan on {{ $labels.instance }} does not answer",
      description:
        "Prometheus could not scrape Titan on {{ $labels.instance }} for a minute (up = {{ $value }}): the app is down or hung, and its users get no answer.",
      title: "App not answering",
      runbookSteps:
        "With remediation on (the default) the web host's remediation agent restarts titan.service as soon as this fires (at most three times an hour) and checks that the app answers again; the alert resolves on the next scrapes. `journalctl -u titan-remediation -n 50` on the web host shows its decision (acted, failed, rate_limited, refused). If it keeps firing, or remediation is off or dry-run: `systemctl status titan` and `journalctl -u titan -n 100` say why the app does not answer, `curl -s http://127.0.0.1:5000/health` tests it, and `sudo systemctl restart titan` restarts it by hand.",
      dashboardUid: DASHBOARD_UIDS.application,
      // No series means the target is gone: HostMissing and TargetDown report that.
      noDataState: "OK",
      execErrState: "Error",
      remediation: "restart-app",
    },
    {
      uid: "titan-app-error-ratio",
      name: "AppHighErrorRatio",
      severity: "warning",
      datasource: "prometheus",
      expr: 'sum by (instance) (rate(http_requests_total{job="titan",status=~"5.."}[5m])) / sum by (instance) (rate(http_requests_total{job="titan"}[5m]))',
      op: ">",
      threshold: APP_ERROR_RATIO_WARNING,
      unit: "ratio",
      for: "5m",
      summary: "Titan answers more than 5% of requests with 5xx on {{ $labels.instance }}",
      description: `{{ $value }} of the requests to Titan on {{ $labels.instance }} failed with 5xx over 5 minutes (threshold ${APP_ERROR_RATIO_WARNING * 100}%).`,
      title: "App high error ratio",
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
      datasource: "prometheus",
      expr: 'histogram_quantile(0.95, sum by (instance, le) (rate(http_request_duration_seconds_bucket{job="titan"}[5m])))',
      op: ">",
      threshold: APP_P95_LATENCY_WARNING_SECONDS,
      unit: "seconds",
      for: "5m",
      summary: `Titan p95 latency above ${APP_P95_LATENCY_WARNING_SECONDS}s on {{ $labels.instance }}`,
      description: `The 95th percentile of Titan's request duration on {{ $labels.instance }} is {{ $value }} (threshold ${APP_P95_LATENCY_WARNING_SECONDS}s, sustained 5 minutes).`,
      title: "App high latency (p95)",
      runbookSteps:
        "Compare p50, p95 and p99 on the Application dashboard: all rising together means saturation (check in-flight requests and CPU; raise TITAN_WORKERS or webCount); p99 alone means a slow dependency such as SQLite on a busy disk. The load demo causes this on purpose.",
      dashboardUid: DASHBOARD_UIDS.application,
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-host-missing",
      name: "HostMissing",
      severity: "critical",
      datasource: "prometheus",
      expr: missingHostsExpr(hosts),
      op: ">",
      threshold: 0,
      unit: "none",
      for: "2m",
      summary: "{{ $labels.instance }} ({{ $labels.role }}) is not being scraped at all",
      description:
        "The stack deployed {{ $labels.instance }} as its {{ $labels.role }} host, but Prometheus has had no node_exporter target for it for 2 minutes: the instance is stopped, terminated or no longer tagged for discovery.",
      title: "Host missing",
      // `pulumi up` diffs the program against the recorded state unless asked to refresh
      // (pulumi/pulumi pkg/cmd/pulumi/operations/up.go: --refresh, off unless given or set in
      // Pulumi.yaml's options, which this project does not). A refresh drops a terminated
      // instance from the state, the provider reading it as gone (hashicorp/terraform-provider-aws
      // internal/service/ec2/find.go FindInstanceByID: state terminated is NotFound;
      // ec2_instance.go resourceInstanceRead then removes it), so only after it does a deploy
      // create the host again.
      runbookSteps:
        "Look the host up by its Name tag in the EC2 console or with `aws ec2 describe-instances --filters Name=tag:Name,Values=<host>`. Stopped: start it (`aws ec2 start-instances`); its services come back with it. Terminated: run `npm run pulumi -- refresh` first (until then the stack's state still holds the instance, so a deploy changes nothing), then `npm run deploy` to replace it (its data volume is re-attached). Running: check its tags (Scrape=true, Project, Environment, Role) and Prometheus' discovery errors in `journalctl -u prometheus`.",
      dashboardUid: DASHBOARD_UIDS.pipeline,
      // No series is the healthy state; a failed query means Prometheus is unreachable.
      noDataState: "OK",
      execErrState: "Alerting",
      expectedSeries: hosts.map((h) => ({ instance: h.instance, role: h.role })),
    },
    {
      uid: "titan-logs-dropped",
      name: "LogsDroppedBeforeLoki",
      severity: "critical",
      datasource: "prometheus",
      // grafana/alloy internal/component/common/loki/client/metrics.go: loki_write_dropped_entries_total
      // {host, tenant, reason} counts entries given up on; zero-initialised per reason.
      expr: 'sum by (instance) (increase(loki_write_dropped_entries_total{job="alloy"}[5m]))',
      op: ">",
      threshold: 0,
      unit: "none",
      for: "1m",
      summary: "Alloy on {{ $labels.instance }} is dropping log lines",
      description:
        "Alloy on {{ $labels.instance }} dropped {{ $value }} log entries in 5 minutes that Loki never stored: Loki refused them or could not be reached until the retries ran out. Those lines are lost.",
      title: "Logs dropped before Loki",
      runbookSteps: `On the Pipeline dashboard see which reason the drops carry (\`loki_write_dropped_entries_total\` by reason). ${ALLOY_DROP_REASONS.map((r) => `${r.reason}: ${r.means}`).join(" ")} \`journalctl -u alloy -n 100\` on the web host shows each failed push with its HTTP status.`,
      dashboardUid: DASHBOARD_UIDS.pipeline,
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-logs-not-reaching-loki",
      name: "LogsNotReachingLoki",
      severity: "warning",
      datasource: "prometheus",
      // Same file: loki_write_batch_retries_total{host, tenant} counts every retried push.
      expr: 'sum by (instance) (increase(loki_write_batch_retries_total{job="alloy"}[5m]))',
      op: ">",
      threshold: 0,
      unit: "none",
      for: "5m",
      summary: "Alloy on {{ $labels.instance }} keeps failing to push logs to Loki",
      description:
        "Alloy on {{ $labels.instance }} retried {{ $value }} pushes to Loki in the last 5 minutes, for 5 minutes in a row: logs are delayed and are dropped once the retries run out.",
      title: "Logs not reaching Loki",
      runbookSteps:
        "From the web host, `curl -s http://<loki-ip>:3100/ready` (a timeout points at the security group or a stopped host, 503 at Loki starting or failing). On the loki host: `systemctl status loki`, `journalctl -u loki -n 100`, a full data disk (`df -h /var/lib/loki`), S3 errors. `journalctl -u alloy -n 100` on the web host shows the HTTP status each push got.",
      dashboardUid: DASHBOARD_UIDS.pipeline,
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-loki-discarding",
      name: "LokiDiscardingLogs",
      severity: "warning",
      datasource: "prometheus",
      // grafana/loki pkg/validation/validate.go: loki_discarded_samples_total{reason, tenant, ...} counts refused entries.
      expr: 'sum by (instance, reason) (increase(loki_discarded_samples_total{job="loki"}[5m]))',
      op: ">",
      threshold: 0,
      unit: "none",
      for: "1m",
      summary: "Loki on {{ $labels.instance }} refuses log entries ({{ $labels.reason }})",
      description:
        "Loki on {{ $labels.instance }} discarded {{ $value }} entries in 5 minutes with reason {{ $labels.reason }}: they are not stored.",
      title: "Loki discarding logs",
      runbookSteps:
        "The reason label says which limit: rate_limited or per_stream_rate_limit means more volume than Loki's limits_config allows (raise ingestion_rate_mb and its burst in templates/loki/config.ts, or find the log flood on the Logs dashboard); stream_limit means too many streams (a label with many values); greater_than_max_sample_age or too_far_behind means old or out-of-order lines (a host clock or a replayed file). `journalctl -u loki` names the stream.",
      dashboardUid: DASHBOARD_UIDS.pipeline,
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-prometheus-reload-failed",
      name: "PrometheusConfigReloadFailed",
      severity: "warning",
      datasource: "prometheus",
      expr: 'prometheus_config_last_reload_successful{job="prometheus"}',
      op: "<",
      threshold: 1,
      unit: "none",
      for: "2m",
      summary: "Prometheus on {{ $labels.instance }} failed to load its configuration",
      description:
        "The last configuration reload of Prometheus on {{ $labels.instance }} failed: it still scrapes with the previous prometheus.yml, so the last change is not live (last reload successful: {{ $value }}).",
      title: "Prometheus config reload failed",
      runbookSteps:
        "On the prometheus host run `promtool check config /etc/prometheus/prometheus.yml` and read `journalctl -u prometheus -n 50` for the error. Fix the template, run `npm run deploy` (the push reloads Prometheus again); `sudo systemctl reload prometheus` retries by hand.",
      dashboardUid: DASHBOARD_UIDS.pipeline,
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-grafana-notifications-failing",
      name: "GrafanaNotificationsFailing",
      severity: "critical",
      datasource: "prometheus",
      // grafana/grafana pkg/services/ngalert/metrics/multi_org_alertmanager.go: grafana_alerting_
      // notifications_failed_total{org, integration}. Only Slack is provisioned; without a webhook
      // the default email point has no SMTP, so its failures are known and not counted here.
      expr: 'sum by (instance, integration) (increase(grafana_alerting_notifications_failed_total{job="grafana", integration="slack"}[10m]))',
      op: ">",
      threshold: 0,
      unit: "none",
      // The failed counter appears at its first failure; increase() sees the ones after it
      // (Grafana retries on every group interval, so a broken webhook keeps failing).
      for: "1m",
      summary: "Grafana on {{ $labels.instance }} cannot deliver alert notifications ({{ $labels.integration }})",
      description:
        "{{ $value }} notifications from Grafana on {{ $labels.instance }} to {{ $labels.integration }} failed in 10 minutes: alerts fire but nobody is told. This one may not reach you either; it shows in Grafana's alerting UI.",
      title: "Grafana notifications failing",
      runbookSteps:
        "In Grafana open Alerting > Contact points: the failing contact point shows its last error. A 404 or `invalid_token` means the Slack webhook was revoked: set a new one with `npm run pulumi -- config set --secret slackWebhookUrl <new-url>` and run `npm run deploy`. Timeouts mean the grafana host cannot reach Slack over HTTPS (egress rules, NAT). `journalctl -u grafana-server | grep -i notify` shows each attempt.",
      dashboardUid: DASHBOARD_UIDS.pipeline,
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-grafana-rule-eval-failures",
      name: "GrafanaRuleEvaluationFailures",
      severity: "warning",
      datasource: "prometheus",
      // grafana/grafana pkg/services/ngalert/metrics/scheduler.go (namespace grafana, subsystem alerting).
      expr: 'sum by (instance) (increase(grafana_alerting_rule_evaluation_failures_total{job="grafana"}[10m]))',
      op: ">",
      threshold: 0,
      unit: "none",
      for: "5m",
      summary: "Grafana on {{ $labels.instance }} fails to evaluate alert rules",
      description:
        "Grafana on {{ $labels.instance }} failed {{ $value }} alert-rule evaluations in 10 minutes: the rules that failed cannot fire.",
      title: "Grafana rule evaluation failures",
      runbookSteps:
        "In Grafana open Alerting > Alert rules and look for rules in state Error: the error names the query. Usually a data source is unreachable (Prometheus or Loki down: check TargetDown and HostMissing, and the data source's Test button under Connections); a rule whose query Grafana rejects came from a bad template change, so roll it back and run `npm run deploy`.",
      dashboardUid: DASHBOARD_UIDS.pipeline,
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-remediation-failing",
      name: "RemediationFailing",
      severity: "warning",
      datasource: "prometheus",
      // The agent zero-initialises every {action, result} series, so increase() sees the first failure.
      expr: `sum by (instance, action) (increase(${REMEDIATION_METRIC}{job="${REMEDIATION_SCRAPE_JOB}", result="failed"}[30m]))`,
      op: ">",
      threshold: 0,
      unit: "none",
      for: "1m",
      summary: "Self-healing ({{ $labels.action }}) fails on {{ $labels.instance }}",
      description:
        "The remediation agent on {{ $labels.instance }} tried {{ $labels.action }} and it failed {{ $value }} times in the last 30 minutes: the alert it answered is still unresolved.",
      title: "Remediation failing",
      runbookSteps:
        "On the web host, `journalctl -u titan-remediation -n 50` shows each failed decision with its reason (restart-app: the unit did not restart or the app did not answer afterwards; free-disk: the worker failed, see `journalctl -u titan-free-disk -n 50`). Fix the cause by hand as the original alert's runbook says (App not answering, Root disk almost full). A polkit refusal (`Access denied`) means the rule in /etc/polkit-1/rules.d/50-titan-remediation.rules is missing: run `npm run deploy`.",
      dashboardUid: DASHBOARD_UIDS.application,
      // No agent metrics: TargetDown reports the remediation target.
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-remediation-repeated",
      name: "RemediationKeepsBeingNeeded",
      severity: "warning",
      datasource: "prometheus",
      // Per host and action in the last hour: acted decisions plus three for each rate-limited
      // one, so more than two fixes or any fix the rate limit held back crosses 2. round() undoes
      // increase()'s extrapolation (two decisions can read 2.01).
      expr: `sum by (instance, action) (round(increase(${REMEDIATION_METRIC}{job="${REMEDIATION_SCRAPE_JOB}", result="acted"}[1h]))) + 3 * sum by (instance, action) (round(increase(${REMEDIATION_METRIC}{job="${REMEDIATION_SCRAPE_JOB}", result="rate_limited"}[1h])))`,
      op: ">",
      threshold: 2,
      unit: "none",
      for: "1m",
      summary: "{{ $labels.action }} keeps being needed on {{ $labels.instance }}",
      description:
        "The remediation agent on {{ $labels.instance }} applied {{ $labels.action }} more than twice in the last hour, or its rate limit held one back (acted + 3 x rate-limited = {{ $value }}, threshold 2): the fix treats a symptom and the cause is still there.",
      title: "Remediation keeps being needed",
      runbookSteps:
        "The agent keeps fixing the same thing, so find the cause: for restart-app, `journalctl -u titan -n 200` before each restart (the agent logs the old and new main PID) shows why the app stopped answering; for free-disk, what fills the disk (`sudo du -xh --max-depth=2 / | sort -h | tail -20`, the disk-fill demo left running). Once the rate limit holds it back (three an hour by default) nothing is fixed automatically until the hour passes. To stop the agent acting meanwhile: `npm run pulumi -- config set remediation dry-run`, then `npm run deploy`.",
      dashboardUid: DASHBOARD_UIDS.application,
      noDataState: "OK",
      execErrState: "Error",
    },
    {
      uid: "titan-app-error-log-lines",
      name: "AppErrorLogLines",
      severity: "warning",
      datasource: "loki",
      // Error-level lines in the last minute per web host, from the level label Alloy sets.
      expr: `sum by (host) (count_over_time({job="${TITAN_JOB}", level="error"}[1m]))`,
      op: ">",
      threshold: t.logErrorLinesPerMinute,
      unit: "none",
      for: "5m",
      summary: `More than ${t.logErrorLinesPerMinute} error log lines a minute on {{ $labels.host }}`,
      description: `Titan on {{ $labels.host }} wrote {{ $value }} error-level log lines in the last minute (threshold ${t.logErrorLinesPerMinute} a minute, sustained 5 minutes).`,
      title: "App error log lines",
      runbookSteps:
        "Open the Logs dashboard for the host: the Error logs panel shows the lines and the error rate beside them. Many identical lines point at one failing dependency (the message and its upstream field say which); a burst from /generate_logs is the log demo. If the rate is normal for your traffic, raise logErrorLinesPerMinute and run `npm run deploy`.",
      dashboardUid: DASHBOARD_UIDS.logs,
      // No error lines at all gives no series: that is the healthy state.
      noDataState: "OK",
      execErrState: "Error",
    },
  ];
}

/**
 * A rule the stack once shipped and no longer does. Grafana's file provisioning only creates and
 * updates rules (grafana/grafana pkg/services/provisioning/alerting/rules_provisioner.go: each
 * group's rules are created or updated by uid, the group's interval is updated, and only the
 * file's `deleteRules` entries are deleted), so a rule dropped from the table would stay in
 * Grafana for ever, still evaluating and notifying. Its uid therefore moves here when it is
 * removed or renamed, and the rules file lists it under `deleteRules` (templates/grafana/
 * alerting.ts). Deleting a uid Grafana does not have is a no-op (pkg/services/ngalert/
 * provisioning/alert_rules.go DeleteAlertRule: "the single delete is idempotent"; the store's
 * DeleteAlertRulesByUID, ngalert/store/alert_rule.go, deletes `uid IN (...)` and zero rows is
 * no error), so an entry stays here for good: a stack that skipped a release still loses the
 * rule. CI boots the pinned Grafana with such a uid (tools/validate/renderForValidation.ts).
 */
export interface RetiredAlert {
  /** The uid the rule had in Grafana. Never reused by a live definition. */
  readonly uid: string;
  /** Its alert name when it was retired, for the reader. */
  readonly name: string;
  /** When it left the table, YYYY-MM-DD. */
  readonly retired: string;
  /** Why: removed, or renamed (then to which uid). */
  readonly why: string;
}

/**
 * Every uid the table ever shipped and no longer does (tests/alert-retirement.test.ts checks it
 * against the live table and against every rules file the repository's history rendered).
 */
export const RETIRED_ALERTS: readonly RetiredAlert[] = [];

const RETIRED_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Refuses a retired list that would delete a live rule, repeat an entry, or say nothing of why. */
export function checkRetiredAlerts(
  live: readonly Pick<AlertDefinition, "uid">[],
  retired: readonly RetiredAlert[],
): void {
  const liveUids = new Set(live.map((d) => d.uid));
  const seen = new Set<string>();
  for (const r of retired) {
    if (liveUids.has(r.uid))
      throw new Error(
        `retired alert uid ${JSON.stringify(r.uid)} is also a live definition: a uid is retired for good, give the live rule a new one`,
      );
    if (seen.has(r.uid)) throw new Error(`retired alert uid ${JSON.stringify(r.uid)} is listed twice`);
    seen.add(r.uid);
    if (!RETIRED_DATE.test(r.retired) || Number.isNaN(Date.parse(r.retired)))
      throw new Error(`retired alert ${r.uid}: retired=${JSON.stringify(r.retired)}, expected a date YYYY-MM-DD`);
    if (r.why.trim() === "")
      throw new Error(`retired alert ${r.uid}: why is empty, expected the reason it was removed`);
  }
}

/** The definitions Prometheus (and promtool) can evaluate: every PromQL one. */
export const promqlDefinitions = (defs: readonly AlertDefinition[]): AlertDefinition[] =>
  defs.filter((d) => d.datasource === "prometheus");

/** The group every rule lives in, evaluated every minute. */
export const ALERT_GROUP = { name: "titan", folder: "Titan", interval: "1m" } as const;
