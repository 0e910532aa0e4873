/** Prometheus config and alert rules, checked by the real promtool (Debian's prometheus package). */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import YAML from "yaml";
import { alertDefinitions, deployedHosts, promqlDefinitions } from "../templates/alerts";
import { PROMETHEUS_CONFIG_PATH, prometheusConfig, renderPrometheusFiles } from "../templates/prometheus/config";
import type { PrometheusConfig } from "../templates/prometheus/model";
import { renderRuleTestFile, hasScenario, ruleTestFile } from "../templates/prometheus/ruleTests";
import { alertingRule, renderRuleFile, ruleExpression, ruleFile } from "../templates/prometheus/rules";
import { REMEDIATION_ACTIONS } from "../facts/remediation";
import { SCRAPE_JOBS } from "../facts/scrapeJobs";
import { testContext } from "./support/render";

const work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-promtool-"));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function promtool(...args: string[]) {
  const result = spawnSync("promtool", args, { cwd: work, encoding: "utf8" });
  assert.equal(result.error, undefined, "promtool must be installed (Debian package prometheus)");
  return { ok: result.status === 0, output: result.stdout + result.stderr };
}

function write(name: string, content: string): string {
  fs.writeFileSync(path.join(work, name), content);
  return name;
}

describe("prometheus.yml", () => {
  it("passes promtool check config, for one and for ten web hosts", () => {
    for (const webCount of ["1", "10"]) {
      const [file] = renderPrometheusFiles(testContext({ webCount }));
      const result = promtool("check", "config", write(`prometheus-${webCount}.yml`, file.content));
      assert.ok(result.ok, result.output);
    }
  });

  it("scrapes itself and finds every other target through EC2 discovery on this stack's tags", () => {
    const config = prometheusConfig(testContext({ environment: "demo" }));
    assert.equal(config.global.scrape_interval, "15s");
    assert.deepEqual(
      config.scrape_configs.map((s) => s.job_name),
      ["prometheus", "node", "titan", "alloy", "remediation", "loki", "grafana"],
    );
    const ports: Record<string, number> = {
      node: 9100,
      titan: 5000,
      alloy: 12345,
      remediation: 9181,
      loki: 3100,
      grafana: 3000,
    };
    for (const job of SCRAPE_JOBS) {
      const scrape = config.scrape_configs.find((s) => s.job_name === job.job);
      const [sd] = scrape?.ec2_sd_configs ?? [];
      assert.ok(sd, job.job);
      assert.equal(sd.region, "us-east-1");
      assert.equal(sd.port, ports[job.job]);
      assert.equal(sd.endpoint, undefined, "no endpoint override outside the end-to-end run");
      assert.deepEqual(sd.filters, [
        { name: "tag:Scrape", values: ["true"] },
        { name: "tag:Project", values: ["titan-observability"] },
        { name: "tag:Environment", values: ["demo"] },
        { name: "tag:Role", values: [...job.roles] },
        { name: "instance-state-name", values: ["running"] },
      ]);
      assert.deepEqual(
        scrape?.relabel_configs?.map((r) => [r.source_labels?.[0], r.target_label]),
        [
          ["__meta_ec2_tag_Name", "instance"],
          ["__meta_ec2_tag_Role", "role"],
          ["__meta_ec2_tag_Environment", "environment"],
        ],
      );
    }
    assert.deepEqual(config.scrape_configs[0].static_configs, [
      {
        targets: ["localhost:9090"],
        labels: { instance: "titan-observability-dev-prometheus", role: "prometheus", environment: "demo" },
      },
    ]);
  });

  it("collects each series once: one job per service and port", () => {
    const config = prometheusConfig(testContext());
    const keys = config.scrape_configs.flatMap((s) =>
      (s.ec2_sd_configs ?? []).flatMap(
        (sd) => sd.filters.find((f) => f.name === "tag:Role")?.values.map((r) => `${r}:${sd.port}`) ?? [],
      ),
    );
    assert.equal(new Set(keys).size, keys.length, keys.join(" "));
  });

  it("points discovery at a test endpoint only when asked", () => {
    const config = prometheusConfig(testContext(), { ec2Endpoint: "http://127.0.0.1:4566" });
    for (const s of config.scrape_configs.slice(1))
      assert.equal(s.ec2_sd_configs?.[0].endpoint, "http://127.0.0.1:4566");
    const [file] = renderPrometheusFiles(testContext(), { ec2Endpoint: "http://127.0.0.1:4566" });
    assert.ok(promtool("check", "config", write("prometheus-e2e.yml", file.content)).ok);
  });

  it("renders the file the config push installs, and the retention flag from config", () => {
    const [config, defaults] = renderPrometheusFiles(testContext({ prometheusRetentionDays: "30" }));
    assert.equal(config.path, PROMETHEUS_CONFIG_PATH);
    assert.deepEqual((YAML.parse(config.content) as PrometheusConfig).scrape_configs.length, 7);
    assert.equal(defaults.path, "/etc/default/prometheus");
    assert.match(defaults.content, /^ARGS=".*--storage\.tsdb\.retention\.time=30d.*"$/m);
    assert.match(defaults.content, /--config\.file=\/etc\/prometheus\/prometheus\.yml/);
    assert.ok(!defaults.content.includes("--web.enable-lifecycle"), "reload is SIGHUP, the lifecycle API stays closed");
    assert.ok(!config.content.includes("&a"), "no YAML anchors");
  });
});

describe("alert rules", () => {
  it("every definition has a well-formed uid, a promtool scenario and a job that exists", () => {
    const jobs = new Set<string>([...SCRAPE_JOBS.map((j) => j.job), "prometheus"]);
    const defs = alertDefinitions(testContext().config);
    assert.equal(new Set(defs.map((d) => d.uid)).size, defs.length);
    for (const def of defs) {
      assert.match(def.uid, /^[A-Za-z0-9_-]{1,40}$/);
      // LogQL rules are Grafana-only; the LogQL grammar check covers them.
      if (def.datasource === "prometheus") assert.ok(hasScenario(def), `${def.uid} has no scenario`);
      for (const [, job] of def.expr.matchAll(/job="([^"]+)"/g)) assert.ok(jobs.has(job), `${def.uid}: job ${job}`);
    }
  });

  it("pass promtool check rules", () => {
    const rules = write("rules.yml", renderRuleFile(alertDefinitions(testContext().config)));
    const result = promtool("check", "rules", rules);
    assert.ok(result.ok, result.output);
    const promql = promqlDefinitions(alertDefinitions(testContext().config));
    assert.ok(promql.length < alertDefinitions(testContext().config).length, "the LogQL rule is left out");
    assert.match(result.output, new RegExp(`SUCCESS: ${promql.length} rules found`));
  });

  it("refuse to render a LogQL definition as a Prometheus rule", () => {
    const logql = alertDefinitions(testContext().config).find((d) => d.datasource === "loki");
    assert.ok(logql, "the table has a LogQL rule");
    assert.throws(() => alertingRule(logql), new RegExp(`alert ${logql.uid} has datasource loki`));
  });

  it("expect one node_exporter series per host of the address plan, so a stopped host is missed", () => {
    for (const webCount of ["1", "3"]) {
      const config = testContext({ webCount }).config;
      const missing = alertDefinitions(config).find((d) => d.uid === "titan-host-missing");
      assert.ok(missing?.expectedSeries, "HostMissing lists the hosts it expects");
      const hosts = deployedHosts(config);
      assert.equal(hosts.length, Number(webCount) + 3);
      assert.deepEqual(missing.expectedSeries, hosts);
      for (const h of hosts) {
        assert.ok(
          missing.expr.includes(`absent(up{job="node", instance="${h.instance}", role="${h.role}"})`),
          `no absent() for ${h.instance}`,
        );
      }
    }
  });

  for (const [what, overrides] of [
    ["the default thresholds", {}],
    ["changed thresholds", { rootDiskCriticalPercent: "80", cpuWarningPercent: "50", memoryWarningPercent: "30" }],
    ["three web hosts", { webCount: "3" }],
  ] as const) {
    it(`fire at ${what} after their pending period, stay quiet below and resolve (promtool test rules)`, () => {
      const defs = alertDefinitions(testContext(overrides).config);
      write("rules.yml", renderRuleFile(defs));
      const result = promtool("test", "rules", write("tests.yml", renderRuleTestFile(defs, "rules.yml")));
      assert.ok(result.ok, result.output);
    });
  }

  it("fail promtool test rules when the rules and the fixtures disagree on a threshold", () => {
    write("rules-65.yml", renderRuleFile(alertDefinitions(testContext().config)));
    const fixtures = alertDefinitions(testContext({ rootDiskCriticalPercent: "80" }).config);
    const result = promtool("test", "rules", write("tests-80.yml", renderRuleTestFile(fixtures, "rules-65.yml")));
    assert.ok(!result.ok, "a fixture built for 80% must not pass against a 65% rule");
    assert.match(result.output, /RootDiskAlmostFull/);
  });

  it("label the alerts that name a fix with it, and promtool proves the label on the firing alert", () => {
    const defs = alertDefinitions(testContext().config);
    const labelled = Object.fromEntries(
      defs.filter((d) => d.remediation !== undefined).map((d) => [d.name, d.remediation]),
    );
    assert.deepEqual(labelled, { RootDiskAlmostFull: "free-disk", AppNotAnswering: "restart-app" });
    for (const d of defs) assert.ok(d.remediation === undefined || REMEDIATION_ACTIONS.includes(d.remediation));
    const rules = ruleFile(defs).groups[0].rules;
    for (const [name, action] of Object.entries(labelled)) {
      assert.equal(rules.find((r) => r.alert === name)?.labels.remediation, action, name);
    }
    assert.ok(rules.filter((r) => !(r.alert in labelled)).every((r) => !("remediation" in r.labels)));
    const tests = ruleTestFile(defs, "rules.yml").tests;
    for (const [name, action] of Object.entries(labelled)) {
      const firing = tests.find((t) => t.name.startsWith(`${name}:`))?.alert_rule_test.flatMap((c) => c.exp_alerts);
      assert.ok(firing?.length && firing.every((a) => a.exp_labels.remediation === action), name);
    }
    // A rule file without the label fails the same fixtures: promtool checks it on the firing alert.
    const unlabelled = defs.map((d) => ({ ...d, remediation: undefined }));
    write("rules-unlabelled.yml", renderRuleFile(unlabelled));
    const result = promtool(
      "test",
      "rules",
      write("tests-labelled.yml", renderRuleTestFile(defs, "rules-unlabelled.yml")),
    );
    assert.ok(!result.ok, "fixtures expecting the remediation label must fail against rules without it");
    assert.match(result.output, /RootDiskAlmostFull/);
    assert.match(result.output, /AppNotAnswering/);
  });

  it("take the thresholds from the stack config", () => {
    const defs = alertDefinitions(testContext({ rootDiskCriticalPercent: "72" }).config);
    const disk = defs.find((d) => d.uid === "titan-root-disk-critical");
    assert.ok(disk && ruleExpression(disk).endsWith(" > 72"));
  });
});
