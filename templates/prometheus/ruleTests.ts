/**
 * Synthetic series for `promtool test rules`, built from each alert's own threshold: host-a
 * sits just above it and then recovers, host-b sits just below it throughout. Each test checks
 * quiet before the pending period ends, firing for host-a only after it, and resolved.
 */
import { REMEDIATION_METRIC } from "../../facts/remediation";
import { promqlDefinitions, type AlertDefinition } from "../alerts";
import { toYaml } from "../yaml";
import { ruleLabels } from "./rules";
import type { RuleTestFile } from "./model";

const PHASE = 20; // samples (minutes) per phase: breach, then recovery

interface Scenario {
  readonly series: { readonly series: string; readonly values: string }[];
  /** Labels of the firing alert besides alertname and severity. */
  readonly labels: Record<string, string>;
  /** host-a's value when the alert fires, as the description must show it. */
  readonly valueText: string;
  readonly quietAt: string;
  readonly firingAt: string;
  readonly resolvedAt: string;
  /** Further alerts firing at firingAt besides host-a's (a second way to breach). */
  readonly alsoFiring?: readonly { readonly labels: Record<string, string>; readonly valueText: string }[];
}

const labelText = (labels: Record<string, string>) =>
  `{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(",")}}`;

/** A gauge: `breach` for PHASE minutes, then `recovered` for PHASE minutes. */
const gauge = (breach: number, recovered: number) => `${breach}x${PHASE} ${recovered}x${PHASE}`;
/** A counter growing by `breach` a minute, then by `recovered` a minute. */
const counter = (breach: number, recovered: number) =>
  `0+${breach}x${PHASE} ${breach * PHASE + recovered}+${recovered}x${PHASE}`;

type Builder = (def: AlertDefinition) => Scenario;

const hosts = { above: "host-a", below: "host-b" } as const;

/**
 * A counter alert (`increase(metric[window]) > 0`): host-a's counter grows PER_MINUTE a minute
 * and then stops, host-b's stays flat, plus any `extra` series that must not count. The firing
 * value is the growth over the window, or over the samples so far when the window reaches back
 * before the first one (samples a minute apart, starting at 0m, so no extrapolation).
 */
const PER_MINUTE = 5;
function increaseScenario(
  def: AlertDefinition,
  metric: string,
  series: (instance: string) => Record<string, string>,
  firingKeys: readonly string[],
  timing: Pick<Scenario, "quietAt" | "firingAt" | "resolvedAt">,
  extra: Scenario["series"] = [],
): Scenario {
  const window = /\[(\d+)m\]/.exec(def.expr)?.[1];
  if (window === undefined) throw new Error(`alert ${def.uid}: no [Nm] window in ${def.expr}`);
  const above = series(hosts.above);
  return {
    series: [
      { series: `${metric}${labelText(above)}`, values: counter(PER_MINUTE, 0) },
      { series: `${metric}${labelText(series(hosts.below))}`, values: counter(0, 0) },
      ...extra,
    ],
    labels: Object.fromEntries(firingKeys.map((k) => [k, above[k]])),
    valueText: String(PER_MINUTE * Math.min(Number(window), parseInt(timing.firingAt, 10))),
    ...timing,
  };
}

/** Timings by pending period: quiet before it ends, firing after, resolved once the window is clear. */
const AFTER_1M = { quietAt: "0m", firingAt: "5m", resolvedAt: "32m" } as const;
const AFTER_5M = { quietAt: "4m", firingAt: "10m", resolvedAt: "32m" } as const;

const SCENARIOS: Record<string, Builder> = {
  "titan-root-disk-critical": ({ threshold: t }) => {
    const fs = (instance: string) => ({
      job: "node",
      instance,
      device: "/dev/nvme0n1p1",
      fstype: "ext4",
      mountpoint: "/",
    });
    // Size 10000: avail = 100 * (100 - used%) stays whole for whole and half percents.
    const avail = (usedPercent: number) => 100 * (100 - usedPercent);
    return {
      series: [
        { series: `node_filesystem_size_bytes${labelText(fs(hosts.above))}`, values: `10000x${2 * PHASE}` },
        {
          series: `node_filesystem_avail_bytes${labelText(fs(hosts.above))}`,
          values: gauge(avail(t + 1), avail(t - 5)),
        },
        { series: `node_filesystem_size_bytes${labelText(fs(hosts.below))}`, values: `10000x${2 * PHASE}` },
        {
          series: `node_filesystem_avail_bytes${labelText(fs(hosts.below))}`,
          values: gauge(avail(t - 0.5), avail(t - 0.5)),
        },
        // A tmpfs above the threshold must not count as the root disk.
        {
          series: `node_filesystem_avail_bytes${labelText({ ...fs(hosts.below), fstype: "tmpfs", mountpoint: "/run" })}`,
          values: `0x${2 * PHASE}`,
        },
      ],
      labels: fs(hosts.above),
      valueText: `${(t + 1).toFixed(1)}%`,
      quietAt: "0m",
      firingAt: "3m",
      resolvedAt: "25m",
    };
  },
  "titan-cpu-high": ({ threshold: t }) => {
    const idle = (instance: string) => ({ job: "node", instance, cpu: "0", mode: "idle" });
    // Idle seconds gained per minute at a given utilisation %.
    const idlePerMinute = (util: number) => (60 * (100 - util)) / 100;
    return {
      series: [
        { series: `node_cpu_seconds_total${labelText(idle(hosts.above))}`, values: counter(idlePerMinute(t + 2), 60) },
        {
          series: `node_cpu_seconds_total${labelText(idle(hosts.below))}`,
          values: counter(idlePerMinute(t - 2), idlePerMinute(t - 2)),
        },
      ],
      labels: { instance: hosts.above },
      valueText: `${(t + 2).toFixed(1)}%`,
      quietAt: "4m",
      firingAt: "10m",
      resolvedAt: "30m",
    };
  },
  "titan-memory-high": ({ threshold: t }) => {
    const mem = (instance: string) => ({ job: "node", instance });
    const available = (used: number) => 100 * (100 - used);
    return {
      series: [
        { series: `node_memory_MemTotal_bytes${labelText(mem(hosts.above))}`, values: `10000x${2 * PHASE}` },
        {
          series: `node_memory_MemAvailable_bytes${labelText(mem(hosts.above))}`,
          values: gauge(available(t + 1), 10000),
        },
        { series: `node_memory_MemTotal_bytes${labelText(mem(hosts.below))}`, values: `10000x${2 * PHASE}` },
        {
          series: `node_memory_MemAvailable_bytes${labelText(mem(hosts.below))}`,
          values: gauge(available(t - 1), available(t - 1)),
        },
      ],
      labels: mem(hosts.above),
      valueText: `${(t + 1).toFixed(1)}%`,
      quietAt: "3m",
      firingAt: "10m",
      resolvedAt: "25m",
    };
  },
  "titan-clock-skew": ({ threshold: t }) => {
    const node = (instance: string) => ({ job: "node", instance });
    const metric = "node_timex_offset_seconds";
    // host-a runs behind by more each minute (diverging, negative: the rule reads |offset|);
    // host-b stays just inside the threshold; host-c is far off but converging, which the
    // mixin's derivative condition leaves alone. After PHASE minutes host-a is back in sync.
    // Rounded to microseconds, so the fixture shows no float noise.
    const us = (seconds: number) => Math.round(seconds * 1e6) / 1e6;
    const step = us(t / 50);
    return {
      series: [
        {
          series: `${metric}${labelText(node(hosts.above))}`,
          values: `${us(-(t + 10 * step))}-${step}x${PHASE - 1} 0x${PHASE}`,
        },
        { series: `${metric}${labelText(node(hosts.below))}`, values: `${us(t * 0.8)}x${2 * PHASE}` },
        { series: `${metric}${labelText(node("host-c"))}`, values: `${us(4 * t)}-${step}x${2 * PHASE}` },
      ],
      labels: node(hosts.above),
      // 15 minutes in: t + 10 steps + 15 steps, in milliseconds as humanizeDuration prints it.
      valueText: `${us(t + 25 * step) * 1e3}ms`,
      quietAt: "9m",
      firingAt: "15m",
      resolvedAt: "30m",
    };
  },
  "titan-clock-not-synchronising": () => {
    const node = (instance: string) => ({ job: "node", instance });
    const sync = "node_timex_sync_status";
    const maxerror = "node_timex_maxerror_seconds";
    return {
      series: [
        // host-a: unsynchronised, its maximum error at the kernel's 16s ceiling; then synced.
        { series: `${sync}${labelText(node(hosts.above))}`, values: gauge(0, 1) },
        { series: `${maxerror}${labelText(node(hosts.above))}`, values: gauge(16, 0.1) },
        // host-b: synchronised throughout.
        { series: `${sync}${labelText(node(hosts.below))}`, values: gauge(1, 1) },
        { series: `${maxerror}${labelText(node(hosts.below))}`, values: gauge(0.1, 0.1) },
        // host-c: reported unsynchronised while its error is still small (a daemon restarting).
        { series: `${sync}${labelText(node("host-c"))}`, values: gauge(0, 0) },
        { series: `${maxerror}${labelText(node("host-c"))}`, values: gauge(0.5, 0.5) },
      ],
      labels: node(hosts.above),
      valueText: "0",
      quietAt: "9m",
      firingAt: "15m",
      resolvedAt: "30m",
    };
  },
  "titan-target-down": () => ({
    series: [
      { series: `up${labelText({ job: "titan", instance: hosts.above })}`, values: gauge(0, 1) },
      { series: `up${labelText({ job: "titan", instance: hosts.below })}`, values: gauge(1, 1) },
    ],
    labels: { job: "titan", instance: hosts.above },
    valueText: "0",
    quietAt: "1m",
    firingAt: "5m",
    resolvedAt: "25m",
  }),
  "titan-app-not-answering": () => ({
    series: [
      // host-a's app hangs for PHASE minutes (its scrapes fail), then answers again.
      { series: `up${labelText({ job: "titan", instance: hosts.above })}`, values: gauge(0, 1) },
      { series: `up${labelText({ job: "titan", instance: hosts.below })}`, values: gauge(1, 1) },
      // Another job down on a host is TargetDown's business, not the app's.
      { series: `up${labelText({ job: "node", instance: "host-c" })}`, values: gauge(0, 0) },
    ],
    labels: { job: "titan", instance: hosts.above },
    valueText: "0",
    quietAt: "0m",
    firingAt: "3m",
    resolvedAt: "25m",
  }),
  "titan-remediation-failing": (def) =>
    increaseScenario(
      def,
      REMEDIATION_METRIC,
      (instance) => ({ job: "remediation", instance, action: "restart-app", result: "failed" }),
      ["instance", "action"],
      // The 30-minute window clears 30 minutes after the failures stop (at PHASE minutes).
      { quietAt: "0m", firingAt: "5m", resolvedAt: "55m" },
      // Decisions that acted, or refused, are not failures.
      [
        {
          series: `${REMEDIATION_METRIC}${labelText({ job: "remediation", instance: hosts.below, action: "restart-app", result: "acted" })}`,
          values: counter(PER_MINUTE, PER_MINUTE),
        },
        {
          series: `${REMEDIATION_METRIC}${labelText({ job: "remediation", instance: hosts.below, action: "none", result: "refused" })}`,
          values: counter(PER_MINUTE, PER_MINUTE),
        },
      ],
    ),
  "titan-remediation-repeated": () => {
    // Every {action, result} series exists from the agent's start at 0 (app/remediation/audit.py).
    const decisions = (instance: string, action: string, result: string, values: string) => ({
      series: `${REMEDIATION_METRIC}${labelText({ job: "remediation", instance, action, result })}`,
      values,
    });
    const flat = (n: number) => `${n}x70`;
    return {
      series: [
        // host-a: three restarts in three minutes: more than two an hour.
        decisions(hosts.above, "restart-app", "acted", `0 1 2 ${flat(3)}`),
        decisions(hosts.above, "restart-app", "rate_limited", flat(0)),
        // host-b: two restarts an hour is allowed.
        decisions(hosts.below, "restart-app", "acted", `0 1 ${flat(2)}`),
        decisions(hosts.below, "restart-app", "rate_limited", flat(0)),
        // host-c: one free-disk the rate limit held back is enough.
        decisions("host-c", "free-disk", "acted", flat(0)),
        decisions("host-c", "free-disk", "rate_limited", `0 0 0 ${flat(1)}`),
      ],
      labels: { instance: hosts.above, action: "restart-app" },
      valueText: "3",
      alsoFiring: [{ labels: { instance: "host-c", action: "free-disk" }, valueText: "3" }],
      quietAt: "2m",
      firingAt: "10m",
      // An hour after the last decision the window holds none.
      resolvedAt: "65m",
    };
  },
  "titan-app-error-ratio": ({ threshold: t }) => {
    const requests = (instance: string, status: string) => ({
      job: "titan",
      instance,
      method: "GET",
      endpoint: "/process",
      status,
    });
    // 1000 requests a minute; errors at twice and at 80% of the threshold ratio.
    const above = Math.round(1000 * t * 2);
    const below = Math.round(1000 * t * 0.8);
    return {
      series: [
        { series: `http_requests_total${labelText(requests(hosts.above, "500"))}`, values: counter(above, 0) },
        {
          series: `http_requests_total${labelText(requests(hosts.above, "200"))}`,
          values: counter(1000 - above, 1000),
        },
        { series: `http_requests_total${labelText(requests(hosts.below, "500"))}`, values: counter(below, below) },
        {
          series: `http_requests_total${labelText(requests(hosts.below, "200"))}`,
          values: counter(1000 - below, 1000 - below),
        },
      ],
      labels: { instance: hosts.above },
      valueText: `${(above / 10).toString()}%`,
      quietAt: "4m",
      firingAt: "10m",
      resolvedAt: "30m",
    };
  },
  "titan-app-latency-p95": ({ threshold: t }) => {
    const bucket = (instance: string, le: string) => ({
      job: "titan",
      instance,
      method: "GET",
      endpoint: "/process",
      le,
    });
    // Cumulative counts a minute for buckets t/2, t, 2t, +Inf (100 requests a minute).
    // host-a: 90 within t, so p95 interpolates to 1.5t; host-b: 97 within t, p95 about 0.94t.
    const les = [String(t / 2), String(t), String(2 * t), "+Inf"];
    const aboveCounts = [80, 90, 100, 100];
    const belowCounts = [80, 97, 100, 100];
    return {
      series: les.flatMap((le, i) => [
        {
          series: `http_request_duration_seconds_bucket${labelText(bucket(hosts.above, le))}`,
          values: counter(aboveCounts[i], 100),
        },
        {
          series: `http_request_duration_seconds_bucket${labelText(bucket(hosts.below, le))}`,
          values: counter(belowCounts[i], belowCounts[i]),
        },
      ]),
      labels: { instance: hosts.above },
      valueText: 1.5 * t < 1 ? `${1500 * t}ms` : `${1.5 * t}s`,
      quietAt: "4m",
      firingAt: "10m",
      resolvedAt: "30m",
    };
  },
  "titan-host-missing": (def) => {
    const expected = def.expectedSeries ?? [];
    if (expected.length < 2) throw new Error(`alert ${def.uid}: expectedSeries needs at least two hosts to test`);
    const [missing] = expected;
    return {
      // The first host has no series for PHASE minutes (a stopped host: no target, no samples),
      // then comes back; every other host is scraped throughout.
      series: expected.map((labels, i) => ({
        series: `up${labelText({ job: "node", ...labels })}`,
        values: i === 0 ? `_x${PHASE} 1x${PHASE}` : `1x${2 * PHASE}`,
      })),
      labels: { ...missing },
      valueText: "1",
      quietAt: "1m",
      firingAt: "5m",
      resolvedAt: "25m",
    };
  },
  "titan-logs-dropped": (def) =>
    increaseScenario(
      def,
      "loki_write_dropped_entries_total",
      (instance) => ({ job: "alloy", instance, host: "10.0.1.11:3100", tenant: "", reason: "ingester_error" }),
      ["instance"],
      AFTER_1M,
    ),
  "titan-logs-not-reaching-loki": (def) =>
    increaseScenario(
      def,
      "loki_write_batch_retries_total",
      (instance) => ({ job: "alloy", instance, host: "10.0.1.11:3100", tenant: "" }),
      ["instance"],
      AFTER_5M,
    ),
  "titan-loki-discarding": (def) =>
    increaseScenario(
      def,
      "loki_discarded_samples_total",
      (instance) => ({ job: "loki", instance, reason: "rate_limited", tenant: "fake" }),
      ["instance", "reason"],
      AFTER_1M,
    ),
  "titan-prometheus-reload-failed": () => ({
    series: [
      {
        series: `prometheus_config_last_reload_successful${labelText({ job: "prometheus", instance: hosts.above })}`,
        values: gauge(0, 1),
      },
      {
        series: `prometheus_config_last_reload_successful${labelText({ job: "prometheus", instance: hosts.below })}`,
        values: gauge(1, 1),
      },
    ],
    labels: { job: "prometheus", instance: hosts.above },
    valueText: "0",
    quietAt: "1m",
    firingAt: "5m",
    resolvedAt: "25m",
  }),
  "titan-grafana-notifications-failing": (def) =>
    increaseScenario(
      def,
      "grafana_alerting_notifications_failed_total",
      (instance) => ({ job: "grafana", instance, org: "1", integration: "slack" }),
      ["instance", "integration"],
      AFTER_1M,
      // The default email contact point has no SMTP: its failures are expected and must not count.
      [
        {
          series: `grafana_alerting_notifications_failed_total${labelText({ job: "grafana", instance: hosts.below, org: "1", integration: "email" })}`,
          values: counter(PER_MINUTE, PER_MINUTE),
        },
      ],
    ),
  "titan-grafana-rule-eval-failures": (def) =>
    increaseScenario(
      def,
      "grafana_alerting_rule_evaluation_failures_total",
      (instance) => ({ job: "grafana", instance, org: "1" }),
      ["instance"],
      AFTER_5M,
    ),
};

/** A definition's text with the scenario's labels and value filled in. */
function expand(text: string, labels: Record<string, string>, valueText: string): string {
  return text
    .replaceAll("{{ $value }}", valueText)
    .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => labels[name] ?? "");
}

export const hasScenario = (def: AlertDefinition): boolean => def.uid in SCENARIOS;

export function ruleTestFile(defs: readonly AlertDefinition[], ruleFileName: string): RuleTestFile {
  return {
    rule_files: [ruleFileName],
    evaluation_interval: "1m",
    tests: promqlDefinitions(defs).map((def) => {
      const build = SCENARIOS[def.uid];
      if (!build) throw new Error(`alert ${def.uid} has no promtool scenario in templates/prometheus/ruleTests.ts`);
      const scenario = build(def);
      // The rule's own labels too: severity, and the remediation label the agent's route matches.
      const expected = (labels: Record<string, string>, valueText: string) => ({
        exp_labels: { ...labels, ...ruleLabels(def) },
        exp_annotations: {
          summary: expand(def.summary, labels, valueText),
          description: expand(def.description, labels, valueText),
          runbook: def.runbookSteps,
        },
      });
      return {
        name: `${def.name}: quiet below ${def.threshold}, fires above it after ${def.for}, resolves`,
        interval: "1m",
        input_series: scenario.series,
        alert_rule_test: [
          { eval_time: scenario.quietAt, alertname: def.name, exp_alerts: [] },
          {
            eval_time: scenario.firingAt,
            alertname: def.name,
            exp_alerts: [
              expected(scenario.labels, scenario.valueText),
              ...(scenario.alsoFiring ?? []).map((a) => expected(a.labels, a.valueText)),
            ],
          },
          { eval_time: scenario.resolvedAt, alertname: def.name, exp_alerts: [] },
        ],
      };
    }),
  };
}

export const renderRuleTestFile = (defs: readonly AlertDefinition[], ruleFileName: string): string =>
  toYaml(ruleTestFile(defs, ruleFileName));
