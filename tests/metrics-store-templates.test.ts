/**
 * What metricsStore=amp renders: Prometheus' remote_write (checked by the real promtool of Debian's
 * prometheus 2.42, whose config parser refuses unknown keys), the local TSDB kept short, and
 * Grafana's Prometheus data source on the workspace with SigV4 and the settings it needs. Dashboards
 * and alert rules are byte for byte those of the local stack.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import YAML from "yaml";
import { AMP_FLUSH_DEADLINE_SECONDS, AMP_RELAY_PATH, AMP_RELAY_PORT, ampEndpoints } from "../facts/metricsStore";
import { AMP_RELAY_ENV_PATH } from "../templates/host/ampRelay";
import { DATASOURCE_UIDS } from "../templates/grafana";
import { AMP_SIGV4_ENVIRONMENT, GRAFANA_ENV_PATH, grafanaEnvironment } from "../templates/host/grafanaServer";
import { dataSourcesFile } from "../templates/grafana/datasources";
import { renderHostFiles } from "../templates/index";
import {
  AMP_QUEUE_CONFIG,
  PROMETHEUS_CONFIG_PATH,
  PROMETHEUS_DEFAULTS_PATH,
  prometheusArgs,
  prometheusConfig,
  renderPrometheusFiles,
} from "../templates/prometheus/config";
import type { PrometheusJsonData } from "../templates/grafana/model";
import { ampTestContext, TEST_AMP_ENDPOINT, testContext } from "./support/render";

const WORKSPACE_ROOT = TEST_AMP_ENDPOINT.replace(/\/$/, "");

const work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-promtool-amp-"));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function promtoolCheck(name: string, content: string) {
  fs.writeFileSync(path.join(work, name), content);
  const result = spawnSync("promtool", ["check", "config", name], { cwd: work, encoding: "utf8" });
  assert.equal(result.error, undefined, "promtool must be installed (Debian package prometheus)");
  return { ok: result.status === 0, output: result.stdout + result.stderr };
}

describe("AMP endpoints", () => {
  it("take the workspace root from prometheusEndpoint in either documented form", () => {
    for (const endpoint of [
      TEST_AMP_ENDPOINT,
      `${TEST_AMP_ENDPOINT}api/v1/`,
      `${TEST_AMP_ENDPOINT}api/v1`,
      WORKSPACE_ROOT,
    ]) {
      assert.deepEqual(ampEndpoints(endpoint, "eu-west-1"), {
        queryUrl: WORKSPACE_ROOT,
        remoteWriteUrl: `${WORKSPACE_ROOT}/api/v1/remote_write`,
        region: "eu-west-1",
      });
    }
  });

  it("refuse anything but an https URL, naming the value", () => {
    for (const bad of ["", "aps-workspaces", "http://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/"]) {
      assert.throws(
        () => ampEndpoints(bad, "us-east-1"),
        new RegExp(`prometheusEndpoint ${JSON.stringify(JSON.stringify(bad)).slice(1, -1)}: expected an https:// URL`),
      );
    }
  });
});

describe("prometheus.yml with metricsStore=amp", () => {
  it("passes promtool check config, for one and for ten web hosts", () => {
    for (const webCount of ["1", "10"]) {
      const [file] = renderPrometheusFiles(ampTestContext({ webCount }));
      const result = promtoolCheck(`amp-${webCount}.yml`, file.content);
      assert.ok(result.ok, result.output);
    }
  });

  it("is refused by the same promtool when a remote_write key is misspelt (the check can fail)", () => {
    const [file] = renderPrometheusFiles(ampTestContext());
    const result = promtoolCheck(
      "amp-misspelt.yml",
      file.content.replace("max_samples_per_send", "max_sample_per_send"),
    );
    assert.ok(!result.ok, result.output);
    assert.match(result.output, /max_sample_per_send/);
  });

  it("writes every sample to the workspace through the signing relay on loopback, with no sigv4 block", () => {
    const config = prometheusConfig(ampTestContext());
    // Debian's 2.42 ignores `sigv4` (91-Disable_opentelemetry.patch): the relay signs instead
    // (templates/host/ampRelay.ts), and it alone knows the workspace's URL and region.
    assert.deepEqual(config.remote_write, [
      {
        url: `http://127.0.0.1:${AMP_RELAY_PORT}${AMP_RELAY_PATH}`,
        name: "amp",
        queue_config: AMP_QUEUE_CONFIG,
      },
    ]);
    // No write_relabel_configs: every job and label the dashboards use reaches the workspace.
    const rendered = YAML.parse(renderPrometheusFiles(ampTestContext())[0].content) as Record<string, unknown>;
    const [remote] = rendered.remote_write as Record<string, unknown>[];
    assert.deepEqual(Object.keys(remote).sort(), ["name", "queue_config", "url"]);
    const ctx = ampTestContext();
    const prometheusHost = ctx.plan.hosts.find((h) => h.role === "prometheus");
    assert.ok(prometheusHost);
    const relayEnv = renderHostFiles(ctx, prometheusHost, { slackWebhookConfigured: false }).find(
      (f) => f.path === AMP_RELAY_ENV_PATH,
    );
    assert.match(
      relayEnv?.content ?? "",
      new RegExp(`^TITAN_AMP_RELAY_REMOTE_WRITE_URL=${WORKSPACE_ROOT}/api/v1/remote_write$`, "m"),
    );
    assert.match(relayEnv?.content ?? "", /^TITAN_AMP_RELAY_REGION=us-east-1$/m);
    assert.match(relayEnv?.content ?? "", new RegExp(`^TITAN_AMP_RELAY_PORT=${AMP_RELAY_PORT}$`, "m"));
    // The scrape configuration is the local stack's.
    assert.deepEqual(config.scrape_configs, prometheusConfig(testContext()).scrape_configs);
  });

  it("sizes the queue below 2.42's defaults in memory and retries throttling", () => {
    const q = AMP_QUEUE_CONFIG;
    assert.ok(q.capacity >= 3 * q.max_samples_per_send, "several batches per shard");
    assert.ok(q.max_shards * q.capacity <= (200 * 2500) / 4, "at most a quarter of 2.42's default queue");
    assert.equal(q.min_shards, 1);
    assert.equal(q.retry_on_http_429, true, "2.42 drops a batch answered 429 otherwise");
  });

  it("keeps the local TSDB for a day whatever prometheusRetentionDays says", () => {
    const flag = (ctx: ReturnType<typeof testContext>) =>
      prometheusArgs(ctx).find((a) => a.startsWith("--storage.tsdb.retention.time="));
    assert.equal(flag(ampTestContext({ prometheusRetentionDays: "90" })), "--storage.tsdb.retention.time=1d");
    assert.equal(flag(testContext({ prometheusRetentionDays: "90" })), "--storage.tsdb.retention.time=90d");
    const defaults = renderPrometheusFiles(ampTestContext()).find((f) => f.path === PROMETHEUS_DEFAULTS_PATH);
    assert.match(defaults?.content ?? "", /--storage\.tsdb\.retention\.time=1d /);
  });

  it("gives up flushing the queue well within the stop timeout of Debian's unit, with amp only", () => {
    const flag = (ctx: ReturnType<typeof testContext>) =>
      prometheusArgs(ctx).find((a) => a.startsWith("--storage.remote.flush-deadline="));
    assert.equal(flag(ampTestContext()), `--storage.remote.flush-deadline=${AMP_FLUSH_DEADLINE_SECONDS}s`);
    assert.equal(flag(testContext()), undefined);
    // The installed package's own unit and binary (the test command installs prometheus for promtool).
    const unit = fs.readFileSync("/lib/systemd/system/prometheus.service", "utf8");
    const timeout = /^TimeoutStopSec=(\d+)s?$/m.exec(unit);
    assert.ok(timeout, "Debian's prometheus.service sets TimeoutStopSec");
    assert.match(unit, /^SendSIGKILL=no$/m, "and never kills a stop that outlasts it");
    assert.ok(
      AMP_FLUSH_DEADLINE_SECONDS * 2 <= Number(timeout[1]),
      `flush ${AMP_FLUSH_DEADLINE_SECONDS}s, stop ${timeout[1]}s`,
    );
    const help = spawnSync("prometheus", ["--help"], { encoding: "utf8" });
    assert.match(help.stdout + help.stderr, /--storage\.remote\.flush-deadline=<duration>/);
  });

  it("refuses to render amp without the workspace's endpoints", () => {
    const ctx = testContext({ metricsStore: "amp" });
    assert.throws(
      () => prometheusConfig(ctx),
      /metricsStore is amp but the render context has no AMP workspace endpoints/,
    );
    assert.throws(
      () => dataSourcesFile(ctx),
      /metricsStore is amp but the render context has no AMP workspace endpoints/,
    );
  });

  it("renders no remote_write for the local store", () => {
    assert.equal(prometheusConfig(testContext()).remote_write, undefined);
    const [file] = renderPrometheusFiles(testContext());
    assert.equal(file.path, PROMETHEUS_CONFIG_PATH);
    assert.doesNotMatch(file.content, /remote_write|sigv4/);
  });
});

describe("Grafana with metricsStore=amp", () => {
  const grafanaHost = (ctx: ReturnType<typeof testContext>) => {
    const host = ctx.plan.hosts.find((h) => h.role === "grafana");
    assert.ok(host);
    return renderHostFiles(ctx, host, { slackWebhookConfigured: true, grafanaRootUrl: "http://198.51.100.4:3000" });
  };

  it("keeps the Prometheus data source's name and uid and points it at the workspace with SigV4", () => {
    const amp = dataSourcesFile(ampTestContext());
    const local = dataSourcesFile(testContext());
    const prom = amp.datasources.find((d) => d.type === "prometheus");
    assert.ok(prom);
    assert.equal(prom.uid, DATASOURCE_UIDS.prometheus);
    assert.equal(prom.name, local.datasources.find((d) => d.type === "prometheus")?.name);
    assert.equal(prom.url, WORKSPACE_ROOT);
    const json = prom.jsonData as PrometheusJsonData;
    assert.equal(json.sigV4Auth, true);
    assert.equal(json.sigV4AuthType, "ec2_iam_role");
    assert.equal(json.sigV4Region, "us-east-1");
    assert.deepEqual(
      amp.datasources.filter((d) => d.type === "loki"),
      local.datasources.filter((d) => d.type === "loki"),
    );
    for (const ds of local.datasources) assert.ok(!("sigV4Auth" in ds.jsonData), ds.name);
  });

  it("turns on SigV4 and allows only the instance role, with amp only", () => {
    const amp = grafanaEnvironment(ampTestContext());
    const local = grafanaEnvironment(testContext());
    assert.deepEqual(amp, { ...local, ...AMP_SIGV4_ENVIRONMENT });
    assert.deepEqual(AMP_SIGV4_ENVIRONMENT, {
      GF_AUTH_SIGV4_AUTH_ENABLED: "true",
      GF_AWS_ALLOWED_AUTH_PROVIDERS: "ec2_iam_role",
      GF_AWS_ASSUME_ROLE_ENABLED: "false",
    });
    for (const key of Object.keys(AMP_SIGV4_ENVIRONMENT)) assert.ok(!(key in local), key);
  });

  it("renders dashboards and alert rules byte for byte as the local stack does", () => {
    const changed = new Set([GRAFANA_ENV_PATH]);
    const local = new Map(grafanaHost(testContext()).map((f) => [f.path, f.content]));
    const amp = new Map(grafanaHost(ampTestContext()).map((f) => [f.path, f.content]));
    assert.deepEqual([...amp.keys()].sort(), [...local.keys()].sort());
    const differing = [...amp.keys()].filter((p) => amp.get(p) !== local.get(p)).sort();
    const datasources = [...amp.keys()].filter((p) => /datasources/.test(p));
    assert.deepEqual(differing, [...changed, ...datasources].sort());
  });
});
