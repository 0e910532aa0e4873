/**
 * The pieces of the fleet's "metricsStore amp, then local" transition that need no fleet: the
 * sample-rate arithmetic (ampSampleRate.ts), and the override of the relay's workspace URL in the
 * Prometheus host's staged copy (provision.ts stagedOverride): on the tree the program stages for
 * a metricsStore=amp stack, only the relay's URL (and Prometheus' EC2 endpoint) change, a staged
 * file the renderer would not have written is refused, and an amp push without a fake AMP fails
 * instead of pointing the relay at a workspace the fleet cannot reach. No root.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as prettier from "prettier";
import { AMP_RELAY_ENV_PATH } from "../../templates/host/ampRelay";
import { PROMETHEUS_CONFIG_PATH } from "../../templates/prometheus/config";
import { projectRoot } from "../../templates/projectFiles";
import { providerCopy } from "../support/providerCopy";
import { localTree } from "./checks/delivery";
import { formatAmpSampleRate, RECORDED_AMP_SAMPLE_RATE, sampleRate, type AmpSampleRate } from "./ampSampleRate";
import { STANDIN_JOBS } from "./metricsStoreTransition";
import { stackContext, stagedOverride } from "./provision";
import { COPY_TO_REMOTE, fleetConfig, planStack, type StackPlan } from "./stackPlan";
import { key } from "../support/snapshots";

const s = (labels: Record<string, string>, timestampMs: number) => ({
  labels: { __name__: "m", ...labels },
  timestampMs,
});

describe("sampleRate", () => {
  it("counts the samples stamped inside the window, per second, by job and by role (web per host)", () => {
    const samples = [
      s({ job: "node", role: "web" }, 999), // before the window
      s({ job: "node", role: "web" }, 1000),
      s({ job: "node", role: "web" }, 1000),
      s({ job: "titan", role: "web" }, 30_999),
      s({ job: "node", role: "prometheus" }, 15_000),
      s({ job: "prometheus", role: "prometheus" }, 20_000),
      s({ job: "loki", role: "loki" }, 31_000), // at the end: outside
    ];
    const r = sampleRate(samples, 1000, 30, 2);
    assert.equal(r.samplesPerSecond, 0.17); // 5 in 30 s
    assert.deepEqual(r.byJob, { node: 0.1, prometheus: 0.03, titan: 0.03 });
    assert.deepEqual(r.byRole, { prometheus: 0.07, web: 0.05 }); // 3 web samples over 2 hosts
  });

  it("names a sample without a job or role, and refuses a bad window or host count", () => {
    assert.throws(() => sampleRate([s({ job: "node" }, 5)], 0, 15, 1), /sample of m without job or role/);
    assert.throws(() => sampleRate([], 0, 0, 1), /windowSeconds 0: expected a positive number/);
    assert.throws(() => sampleRate([], 0, 15, 0), /webHosts 0: expected a positive integer/);
  });

  it("writes the file as prettier lays it out", async () => {
    const rate: AmpSampleRate = {
      measured: "2026-12-06",
      run: "fleet",
      webCount: 1,
      scrapeIntervalSeconds: 15,
      windowSeconds: 60,
      samplesPerSecond: 7,
      byJob: { alloy: 0.5, grafana: 0.5, loki: 0.5, node: 2, prometheus: 2, remediation: 1, titan: 0.5 },
      byRole: { grafana: 1, loki: 1, prometheus: 2, web: 3 },
      standIns: ["alloy", "loki", "grafana"],
    };
    const text = formatAmpSampleRate(rate);
    const options = await prettier.resolveConfig(RECORDED_AMP_SAMPLE_RATE());
    assert.equal(text, await prettier.format(text, { ...options, parser: "json" }));
    assert.deepEqual(JSON.parse(text), rate);
  });

  it("lists as stand-ins the jobs of Grafana Labs' daemons only", () => {
    assert.deepEqual([...STANDIN_JOBS].sort(), ["alloy", "grafana", "loki"]);
  });
});

describe("the relay's workspace URL in the staged copy", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "metrics-store-amp-"));
  const STACK = "fleet-amp-unit";
  const FAKE = "http://10.42.0.1:40000/workspaces/ws-00000000-0000-4000-8000-000000000000/api/v1/remote_write";
  const EC2 = "http://10.42.0.1:40001";
  let plan: StackPlan;

  /** The Prometheus host's staged tree as the provider copies it, in a fresh mirror directory. */
  function stage(): string {
    const prom = plan.hosts.find((h) => h.role === "prometheus");
    const copy = prom?.pushes.find((p) => p.type === COPY_TO_REMOTE);
    if (copy?.type !== COPY_TO_REMOTE) throw new Error("no copy in the Prometheus push");
    const home = fs.mkdtempSync(path.join(tmp, "home-"));
    providerCopy(copy.source.path, home, projectRoot());
    return path.join(home, "titan-staging");
  }
  const fileIn = (mirror: string, p: string) => path.join(mirror, fs.readdirSync(mirror)[0], p);

  before(async () => {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "amp-unit", "-f", path.join(tmp, "id")]);
    const config = fleetConfig({
      publicKey: fs.readFileSync(path.join(tmp, "id.pub"), "utf8"),
      privateKey: fs.readFileSync(path.join(tmp, "id"), "utf8"),
    });
    config[key("metricsStore")] = "amp";
    plan = await planStack(config, { stack: STACK });
  });
  after(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(path.join(projectRoot(), ".titan-push", STACK), { recursive: true, force: true });
  });

  it("reads the workspace's endpoints from the stack's metricsWorkspace output", () => {
    const ctx = stackContext(plan);
    assert.equal(ctx.config.metricsStore, "amp");
    assert.match(
      ctx.amp?.remoteWriteUrl ?? "",
      /^https:\/\/aps-workspaces\.[a-z0-9-]+\.amazonaws\.com\/workspaces\/.+\/api\/v1\/remote_write$/,
    );
    const without = { ...plan, outputs: { ...plan.outputs, metricsWorkspace: undefined } } as unknown as StackPlan;
    assert.throws(() => stackContext(without), /metricsStore is amp but the stack's metricsWorkspace output/);
  });

  it("changes only the relay's URL and Prometheus' EC2 endpoint", () => {
    const mirror = stage();
    const before = localTree(mirror);
    const staged = fs.readFileSync(fileIn(mirror, AMP_RELAY_ENV_PATH), "utf8");
    assert.match(staged, /^TITAN_AMP_RELAY_REMOTE_WRITE_URL=https:\/\/aps-workspaces\./m);
    stagedOverride({ plan, ec2Endpoint: EC2, ampRemoteWriteUrl: FAKE }, "prometheus")?.(mirror);
    const env = fs.readFileSync(fileIn(mirror, AMP_RELAY_ENV_PATH), "utf8");
    assert.equal(env, staged.replace(/^(TITAN_AMP_RELAY_REMOTE_WRITE_URL=).*$/m, `$1${FAKE}`));
    assert.ok(fs.readFileSync(fileIn(mirror, PROMETHEUS_CONFIG_PATH), "utf8").includes(EC2));
    const changed = localTree(mirror).filter((e) => !before.includes(e));
    assert.deepEqual(
      changed.map((e) => e.split(" ")[0]).sort(),
      [AMP_RELAY_ENV_PATH, PROMETHEUS_CONFIG_PATH].map((p) => `${fs.readdirSync(mirror)[0]}${p}`).sort(),
    );
    assert.equal(stagedOverride({ plan, ec2Endpoint: EC2, ampRemoteWriteUrl: FAKE }, "grafana"), undefined);
  });

  it("refuses a staged env file the renderer would not have written, and an amp push with no fake AMP", () => {
    const mirror = stage();
    const file = fileIn(mirror, AMP_RELAY_ENV_PATH);
    fs.appendFileSync(file, "TITAN_AMP_RELAY_EXTRA=1\n");
    assert.throws(
      () => stagedOverride({ plan, ampRemoteWriteUrl: FAKE }, "prometheus")?.(mirror),
      /not renderAmpRelayFiles' output for the stack's context; the override would change more than the URL/,
    );
    assert.throws(
      () => stagedOverride({ plan, ec2Endpoint: EC2 }, "prometheus")?.(stage()),
      /metricsStore is amp but no fake AMP runs/,
    );
  });
});
