/**
 * Delivery under mocks: every host waits, copies and installs in that order; triggers follow
 * the content, so a changed threshold re-pushes Grafana alone; secrets travel only as secrets.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { expectedTargets } from "../infra/delivery/pipeline";
import { installScript, stagingRoot, waitReadyScript } from "../infra/delivery/scripts";
import { appFiles } from "../infra/delivery/appFiles";
import type { VerificationSpec } from "../infra/verify/checks";
import { renderHostFiles } from "../templates/index";
import { MOCK_PASSWORD, MOCK_PRIVATE_KEY, type RecordedResource } from "./support/mockProgram";
import { isSecretValue, one, ofType, plainInputs, snapshot, type TimedSnapshot } from "./support/snapshots";
import { testContext } from "./support/render";

const REMOTE = "command:remote:Command";
const COPY = "command:remote:CopyToRemote";
const LOCAL = "command:local:Command";
const HOSTS = ["web-1", "prometheus", "loki", "grafana"];

let base: TimedSnapshot;
let threshold: TimedSnapshot;
let webhook: TimedSnapshot;
before(async () => {
  [base, threshold, webhook] = await Promise.all([
    snapshot(),
    snapshot({ rootDiskCriticalPercent: "80" }),
    snapshot(
      { slackWebhookUrl: "https://hooks.slack.com/services/T0/B0/SENTINELhook" },
      { secretKeys: ["slackWebhookUrl"] },
    ),
  ]);
  for (const s of [base, threshold, webhook]) assert.equal(s.error, undefined, s.error);
});

const unwrap = (value: unknown): unknown => (isSecretValue(value) ? (value as { value: unknown }).value : value);
const dependsOn = (r: RecordedResource, name: string) => r.dependencies.some((d) => d.endsWith(`::${name}`));

describe("configuration push", () => {
  it("waits for each host, then copies, then installs", () => {
    for (const host of HOSTS) {
      const ready = one(base, REMOTE, `${host}-push-ready`);
      const files = one(base, COPY, `${host}-push-files`);
      const install = one(base, REMOTE, `${host}-push-install`);
      assert.ok(dependsOn(ready, host), `${host}: ready waits for the instance`);
      assert.ok(dependsOn(files, `${host}-push-ready`), `${host}: copy after ready`);
      assert.ok(dependsOn(install, `${host}-push-files`), `${host}: install after copy`);
      assert.match(String(files.inputs.remotePath), /^\/home\/admin\/titan-staging\/[0-9a-f]{16}$/);
      assert.ok(
        String(install.inputs.create).includes(`staging=${String(files.inputs.remotePath)}\n`),
        "installs what was copied",
      );
      assert.equal(install.inputs.logging, "stderr");
      assert.match(install.parent, /titan:delivery:ConfigPush::/);
    }
    for (const host of ["prometheus", "grafana"]) {
      assert.ok(
        dependsOn(one(base, REMOTE, `${host}-push-ready`), `${host}-data-attachment`),
        `${host} waits for its volume`,
      );
    }
  });

  it("connects as the image's user with the stack's key, kept secret, with bounded retries", () => {
    for (const r of [...ofType(base, REMOTE), ...ofType(base, COPY)]) {
      assert.ok(isSecretValue(r.inputs.connection), `${r.name}: the connection carries the private key`);
      const connection = unwrap(r.inputs.connection) as Record<string, unknown>;
      assert.equal(connection.user, "admin");
      assert.equal(connection.privateKey, MOCK_PRIVATE_KEY);
      assert.equal(connection.dialErrorLimit, 30);
      assert.equal(connection.perDialTimeout, 10);
    }
  });

  it("stages each content in its own directory, so a copy never lands inside an older one", () => {
    const remote = (snap: TimedSnapshot) => String(one(snap, COPY, "grafana-push-files").inputs.remotePath);
    assert.notEqual(remote(base), remote(threshold));
    assert.equal(
      String(one(base, COPY, "loki-push-files").inputs.remotePath),
      String(one(threshold, COPY, "loki-push-files").inputs.remotePath),
    );
  });

  it("re-pushes only Grafana when an alert threshold changes, and replaces no host", () => {
    const triggers = (snap: TimedSnapshot, name: string, type = REMOTE) =>
      JSON.stringify(one(snap, type, name).inputs.triggers);
    for (const host of HOSTS) {
      const changed = triggers(base, `${host}-push-install`) !== triggers(threshold, `${host}-push-install`);
      assert.equal(changed, host === "grafana", `${host}: install trigger ${changed ? "changed" : "kept"}`);
      assert.equal(
        triggers(base, `${host}-push-files`, COPY) !== triggers(threshold, `${host}-push-files`, COPY),
        host === "grafana",
      );
      const instance = (snap: TimedSnapshot) => JSON.stringify(one(snap, "aws:ec2/instance:Instance", host).inputs);
      assert.equal(instance(base), instance(threshold), `${host}: instance inputs unchanged`);
    }
  });

  it("hands Grafana its secrets on stdin only, as a secret", () => {
    const install = one(webhook, REMOTE, "grafana-push-install");
    assert.ok(isSecretValue(install.inputs.stdin));
    assert.equal(
      unwrap(install.inputs.stdin),
      `${MOCK_PASSWORD}\nhttps://hooks.slack.com/services/T0/B0/SENTINELhook\n`,
    );
    assert.ok(isSecretValue(install.inputs.triggers), "a trigger derived from a secret stays secret");
    for (const r of webhook.resources)
      assert.ok(!plainInputs(r).includes("SENTINEL"), `${r.name} carries a secret in plain text`);
    const plainOutputs = JSON.stringify(Object.values(webhook.outputs).filter((o) => !o.secret));
    assert.ok(!plainOutputs.includes("SENTINEL"));
  });

  it("does not push the webhook when none is configured", () => {
    assert.equal(unwrap(one(base, REMOTE, "grafana-push-install").inputs.stdin), `${MOCK_PASSWORD}\n\n`);
    for (const host of ["web-1", "prometheus", "loki"])
      assert.equal(one(base, REMOTE, `${host}-push-install`).inputs.stdin, undefined);
  });
});

describe("verification", () => {
  it("runs after every push and every web host's log marker", () => {
    const verify = one(base, LOCAL, "verify-pipeline");
    for (const host of HOSTS) assert.ok(dependsOn(verify, `${host}-push-install`), host);
    assert.ok(dependsOn(verify, "web-1-log-marker"));
    assert.ok(dependsOn(one(base, REMOTE, "web-1-log-marker"), "web-1-push-install"));
    assert.ok(isSecretValue(verify.inputs.stdin));
    assert.equal(unwrap(verify.inputs.stdin), MOCK_PASSWORD);
  });

  it("checks every expected target, the marker on each web host, and what Grafana must hold", () => {
    const spec = JSON.parse(
      String((one(base, LOCAL, "verify-pipeline").inputs.environment as Record<string, string>).VERIFY_SPEC),
    ) as VerificationSpec;
    assert.deepEqual(
      spec.targets.map((t) => `${t.job}/${t.instance}`).sort(),
      [
        "prometheus/titan-observability-dev-prometheus",
        ...HOSTS.map((h) => `node/titan-observability-dev-${h}`),
        "titan/titan-observability-dev-web-1",
        "alloy/titan-observability-dev-web-1",
        "loki/titan-observability-dev-loki",
        "grafana/titan-observability-dev-grafana",
      ].sort(),
    );
    assert.deepEqual(spec.logMarker?.hosts, ["titan-observability-dev-web-1"]);
    assert.equal(spec.grafana.ruleUids.length, 6);
    assert.equal(spec.grafana.contactPoint, undefined, "no webhook, no contact point to expect");
    assert.ok(!JSON.stringify(spec).includes("SENTINEL"));
    const withHook = JSON.parse(
      String((one(webhook, LOCAL, "verify-pipeline").inputs.environment as Record<string, string>).VERIFY_SPEC),
    ) as VerificationSpec;
    assert.equal(withHook.grafana.contactPoint, "titan-slack");
  });

  it("expects webCount app targets", () => {
    const ctx = testContext({ webCount: "3" });
    const titan = expectedTargets(ctx.config, ctx.plan).filter((t) => t.job === "titan");
    assert.equal(titan.length, 3);
  });
});

describe("remote scripts", () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-delivery-"));
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  function shellcheck(name: string, script: string) {
    const file = path.join(work, `${name}.sh`);
    fs.writeFileSync(file, `#!/bin/sh\n${script}\n`);
    const result = spawnSync("shellcheck", ["--severity=style", file], { encoding: "utf8" });
    assert.equal(result.error, undefined, "shellcheck must be installed");
    assert.equal(result.status, 0, `${name}: ${result.stdout}`);
  }

  it("pass shellcheck, for every role's install script as rendered", () => {
    shellcheck("wait-ready", waitReadyScript(stagingRoot("admin")));
    for (const snap of [base, webhook]) {
      for (const host of HOSTS)
        shellcheck(`${host}-install`, String(one(snap, REMOTE, `${host}-push-install`).inputs.create));
    }
  });

  it("install every rendered file with its owner and mode, and act only on what changed", () => {
    const ctx = testContext();
    const grafana = ctx.plan.hosts.find((h) => h.role === "grafana");
    assert.ok(grafana);
    const files = renderHostFiles(ctx, grafana, { slackWebhookConfigured: false });
    const script = installScript({
      staging: "/home/admin/titan-staging",
      files,
      actions: [{ prefix: "/etc/grafana/", then: { service: "grafana-server", action: "restart" } }],
      owned: ["/etc/grafana/dashboards/titan"],
    });
    for (const f of files) {
      const mode = f.mode.toString(8).padStart(4, "0");
      assert.ok(script.includes(`place "$staging${f.path}" ${f.path} ${f.owner} ${f.group} ${mode}`), f.path);
    }
    assert.match(script, /case "\$changed" in \*" \/etc\/grafana\/"\*\) sudo systemctl restart grafana-server/);
    assert.throws(() => installScript({ staging: "/tmp/x; reboot", files: [], actions: [] }), /refusing/);
  });

  it("runs the install script for real against a staged tree (no sudo needed as root)", () => {
    const staging = path.join(work, "titan-staging", "0123456789abcdef");
    const older = path.join(work, "titan-staging", "fedcba9876543210");
    fs.mkdirSync(older, { recursive: true });
    const target = path.join(work, "target");
    const file = { path: `${target}/etc/demo.conf`, content: "a=1\n", mode: 0o640, owner: "root", group: "root" };
    fs.mkdirSync(path.dirname(path.join(staging, file.path)), { recursive: true });
    fs.writeFileSync(path.join(staging, file.path), file.content);
    const script = installScript({ staging, files: [file], actions: [] });
    const shim = path.join(work, "bin");
    fs.mkdirSync(shim, { recursive: true });
    // A sudo that just runs the command: the test runs the script's logic, not privilege changes.
    fs.writeFileSync(path.join(shim, "sudo"), '#!/bin/sh\nexec "$@"\n', { mode: 0o755 });
    const env = { ...process.env, PATH: `${shim}:${process.env.PATH ?? ""}` };
    const first = spawnSync("sh", ["-c", script], { encoding: "utf8", env });
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`installed: ${file.path}`));
    assert.equal(fs.readFileSync(file.path, "utf8"), "a=1\n");
    assert.equal(fs.statSync(file.path).mode & 0o777, 0o640);
    assert.ok(!fs.existsSync(older), "an earlier push's staging directory is removed");
    assert.ok(fs.existsSync(staging));
    const second = spawnSync("sh", ["-c", script], { encoding: "utf8", env });
    assert.match(second.stdout, /installed: nothing changed/);
  });

  it("ship the app without its tests and benchmark", () => {
    const files = appFiles();
    assert.ok(
      files.includes("bin/titan-serve") && files.includes("titan/app.py") && files.includes("gunicorn.conf.py"),
    );
    assert.ok(files.every((f) => !f.startsWith("tests/") && !f.startsWith("bench/") && !f.includes("__pycache__")));
  });
});
