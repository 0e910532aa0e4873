/**
 * Golden files: every file the templates render for a sample stack, as it lands on each host,
 * so any change to what a host receives shows up in review. Regenerate after an intended
 * change with `UPDATE_GOLDEN=1 node --test build/tests/golden.test.js`.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { hasDataVolume, ROLES } from "../facts/topology";
import { AMP_RELAY_DIR } from "../templates/host/ampRelay";
import { renderUserData } from "../templates/host/userData";
import { renderHostFiles } from "../templates/index";
import { alertDefinitions } from "../templates/alerts";
import { renderRuleFile } from "../templates/prometheus/rules";
import { renderRuleTestFile } from "../templates/prometheus/ruleTests";
import { ROOT } from "./support/files";
import { ampTestContext, testContext } from "./support/render";

const GOLDEN = path.join(ROOT, "tests/golden");
const update = process.env.UPDATE_GOLDEN === "1";

/** Every rendered file of the sample stack (webCount 2, with a webhook), keyed by golden path. */
function renderAll(): Map<string, string> {
  const ctx = testContext({ webCount: "2" });
  const files = new Map<string, string>();
  for (const host of ctx.plan.hosts) {
    const rendered = renderHostFiles(ctx, host, {
      slackWebhookConfigured: true,
      grafanaRootUrl: "http://198.51.100.4:3000",
    });
    for (const file of rendered) {
      const mode = `${file.owner}:${file.group} ${file.mode.toString(8).padStart(4, "0")}`;
      files.set(path.join(host.name, file.path), `# golden: ${mode}\n${file.content}`);
    }
  }
  for (const role of ROLES) {
    const dataVolumeId = hasDataVolume(role) ? "vol-0123456789abcdef0" : undefined;
    files.set(path.join("user-data", `${role}.yaml`), renderUserData({ role, dataVolumeId }));
  }
  const defs = alertDefinitions(ctx.config);
  files.set("promtool/rules.yml", renderRuleFile(defs));
  files.set("promtool/tests.yml", renderRuleTestFile(defs, "rules.yml"));
  return files;
}

function existing(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(GOLDEN, path.join(e.parentPath ?? e.path, e.name)));
}

describe("golden files", () => {
  const rendered = renderAll();

  if (update) {
    fs.rmSync(GOLDEN, { recursive: true, force: true });
    for (const [rel, content] of rendered) {
      fs.mkdirSync(path.dirname(path.join(GOLDEN, rel)), { recursive: true });
      fs.writeFileSync(path.join(GOLDEN, rel), content);
    }
  }

  it("cover exactly the rendered files", () => {
    assert.deepEqual(existing(GOLDEN).sort(), [...rendered.keys()].sort());
  });

  for (const [rel, content] of rendered) {
    it(`${rel} matches`, () => {
      const file = path.join(GOLDEN, rel);
      assert.ok(fs.existsSync(file), `missing golden file ${rel}: run UPDATE_GOLDEN=1`);
      assert.equal(content, fs.readFileSync(file, "utf8"), `${rel} changed: review, then UPDATE_GOLDEN=1`);
    });
  }

  it("contain no placeholder and no secret", () => {
    for (const [rel, content] of rendered) {
      assert.doesNotMatch(content, /\b(TODO|FIXME|CHANGEME|REPLACE_ME|example\.com)\b/i, rel);
      assert.doesNotMatch(content, /hooks\.slack\.com\/services|BEGIN [A-Z ]*PRIVATE KEY/, rel);
    }
  });
});

/**
 * The metricsStore=amp variant, in its own directory so the default set above stays as it is:
 * only the files that differ from the default stack's (Prometheus' config and flags, the relay that
 * signs its remote writes, Grafana's data sources and settings); every other file is the default's (tests/metrics-store-templates.test.ts).
 */
const GOLDEN_AMP = path.join(ROOT, "tests/golden-amp");

/**
 * What metricsStore=amp renders differently: `files`, the rendered configuration compared with
 * golden copies; `relay`, the signing relay's package, which is the checkout's relay/ source
 * delivered as it is, so it is compared with that source rather than with a second copy of it.
 */
function renderAmpDifferences(): { files: Map<string, string>; relay: Map<string, string> } {
  const amp = ampTestContext({ webCount: "2" });
  const local = testContext({ webCount: "2" });
  const options = { slackWebhookConfigured: true, grafanaRootUrl: "http://198.51.100.4:3000" };
  const files = new Map<string, string>();
  const relay = new Map<string, string>();
  for (const host of amp.plan.hosts) {
    const before = new Map(renderHostFiles(local, host, options).map((f) => [f.path, f.content]));
    for (const file of renderHostFiles(amp, host, options)) {
      if (before.get(file.path) === file.content) continue;
      const rel = path.join(host.name, file.path);
      if (file.path.startsWith(`${AMP_RELAY_DIR}/`)) {
        relay.set(rel, file.content);
        continue;
      }
      const mode = `${file.owner}:${file.group} ${file.mode.toString(8).padStart(4, "0")}`;
      files.set(rel, `# golden: ${mode}\n${file.content}`);
    }
  }
  return { files, relay };
}

describe("golden files, metricsStore=amp (the files that differ)", () => {
  const { files: rendered, relay } = renderAmpDifferences();
  const existingAmp = (): string[] =>
    fs.existsSync(GOLDEN_AMP)
      ? fs
          .readdirSync(GOLDEN_AMP, { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile())
          .map((e) => path.relative(GOLDEN_AMP, path.join(e.parentPath ?? e.path, e.name)))
      : [];

  if (update) {
    fs.rmSync(GOLDEN_AMP, { recursive: true, force: true });
    for (const [rel, content] of rendered) {
      fs.mkdirSync(path.dirname(path.join(GOLDEN_AMP, rel)), { recursive: true });
      fs.writeFileSync(path.join(GOLDEN_AMP, rel), content);
    }
  }

  it("differ from the default stack's in Prometheus' and Grafana's settings and the signing relay only", () => {
    assert.deepEqual([...rendered.keys(), ...relay.keys()].sort(), [
      "grafana/etc/grafana/provisioning/datasources/titan.yaml",
      "grafana/etc/grafana/titan.env",
      "prometheus/etc/default/prometheus",
      "prometheus/etc/default/titan-amp-relay",
      "prometheus/etc/prometheus/prometheus.yml",
      "prometheus/etc/systemd/system/titan-amp-relay.service",
      "prometheus/opt/titan-amp-relay/titan_amp_relay/__init__.py",
      "prometheus/opt/titan-amp-relay/titan_amp_relay/__main__.py",
      "prometheus/opt/titan-amp-relay/titan_amp_relay/server.py",
    ]);
  });

  it("deliver the signing relay's package as the checkout's relay/ source, byte for byte", () => {
    for (const [rel, content] of relay) {
      const source = path.join(ROOT, "relay", path.relative(path.join("prometheus", AMP_RELAY_DIR), rel));
      assert.equal(content, fs.readFileSync(source, "utf8"), rel);
    }
  });

  it("cover exactly the differing files", () => {
    assert.deepEqual(existingAmp().sort(), [...rendered.keys()].sort());
  });

  for (const [rel, content] of rendered) {
    it(`${rel} matches`, () => {
      const file = path.join(GOLDEN_AMP, rel);
      assert.ok(fs.existsSync(file), `missing golden file ${rel}: run UPDATE_GOLDEN=1`);
      assert.equal(content, fs.readFileSync(file, "utf8"), `${rel} changed: review, then UPDATE_GOLDEN=1`);
    });
  }
});
