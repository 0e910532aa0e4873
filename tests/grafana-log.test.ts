/** CI's Grafana log check (tools/validate/grafanaLog.ts) finds an error whatever the order of its keys. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";
import { logfmt, provisioningErrors } from "../tools/validate/grafanaLog";

// Lines in Grafana's own logfmt shape (pkg/infra/log): the logger comes before the level.
const LOGGER_FIRST =
  'logger=provisioning.alerting t=2026-12-06T04:00:00.1+00:00 level=error msg="failed to provision alert rules" error="invalid rule"';
const LEVEL_FIRST = 'level=error logger=provisioning.dashboard t=2026-12-06T04:00:01Z msg="failed to load dashboard"';
const INFO =
  'logger=provisioning.datasources t=2026-12-06T04:00:00Z level=info msg="inserting datasource from configuration"';
const OTHER = 'logger=cleanup t=2026-12-06T04:00:00Z level=error msg="failed to delete expired snapshots"';

describe("CI's Grafana log check", () => {
  it("finds an error about provisioning with logger= before level= and after it", () => {
    assert.deepEqual(provisioningErrors([INFO, LOGGER_FIRST, OTHER, LEVEL_FIRST].join("\n")), [
      LOGGER_FIRST,
      LEVEL_FIRST,
    ]);
  });

  it("the old pattern missed Grafana's own order (why it is no longer a grep)", () => {
    const old = /level=error.*(provisioning|alerting|dashboard|datasource)/;
    assert.equal(old.test(LOGGER_FIRST.replace(/ msg=.*/, "")), false);
  });

  it("reads quoted values with spaces and escapes", () => {
    const kv = logfmt('level=error msg="rule \\"x\\" failed" logger=ngalert.scheduler');
    assert.equal(kv.get("msg"), 'rule "x" failed');
    assert.equal(kv.get("logger"), "ngalert.scheduler");
  });

  it("exits 1 and prints the offending lines as a CLI, 0 on a clean log", () => {
    const cli = path.join(__dirname, "../tools/validate/grafanaLog.js");
    const bad = spawnSync(process.execPath, [cli], { input: `${INFO}\n${LOGGER_FIRST}\n`, encoding: "utf8" });
    assert.equal(bad.status, 1);
    assert.equal(bad.stdout.trim(), LOGGER_FIRST);
    const good = spawnSync(process.execPath, [cli], { input: `${INFO}\n${OTHER}\n`, encoding: "utf8" });
    assert.equal(good.status, 0, good.stdout);
  });
});

describe("the workflow's log step", () => {
  it("pipes Grafana's journal into the check, with no order-bound grep left", () => {
    const text = fs.readFileSync(path.join(__dirname, "../../.github/workflows/validate-configs.yml"), "utf8");
    const steps = (YAML.parse(text) as { jobs: { grafana: { steps: { name?: string; run?: string }[] } } }).jobs.grafana
      .steps;
    const step = steps.find((s) => /no provisioning errors/i.test(s.name ?? ""));
    assert.ok(step?.run, "the log step exists");
    assert.match(step.run, /journalctl -u grafana-server[^|\n]*\| node build\/tools\/validate\/grafanaLog\.js/);
    assert.doesNotMatch(step.run, /level=error/);
  });
});
