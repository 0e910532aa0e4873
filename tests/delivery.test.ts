/**
 * Delivery under mocks: every host waits, copies and installs in that order; triggers follow
 * the content, so a changed threshold re-pushes Grafana alone; secrets travel only as secrets.
 */
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { expectedTargets } from "../infra/delivery/pipeline";
import * as pulumi from "@pulumi/pulumi";
import { promisify } from "node:util";
import { growFilesystemLines, installScript, stagingRoot, waitReadyScript } from "../infra/delivery/scripts";
import { appFiles } from "../infra/delivery/appFiles";
import { pushArchiveDir, writePushTree } from "../infra/delivery/pushTree";
import { projectRoot } from "../templates/projectFiles";
import { checkCommandResource } from "./support/commandProvider";
import { providerCopy } from "./support/providerCopy";
import type { HarnessResult } from "./support/pushHarness";
import type { VerificationSpec } from "../infra/verify/checks";
import { alertDefinitions } from "../templates/alerts";
import { renderHostFiles } from "../templates/index";
import { MOCK_PASSWORD, MOCK_PRIVATE_KEY, MOCK_SECRET_KEY, type RecordedResource } from "./support/mockProgram";
import {
  actionOf,
  isSecretValue,
  one,
  ofType,
  plainInputs,
  snapshot,
  update,
  BASE_CONFIG,
  type TimedSnapshot,
} from "./support/snapshots";
import { testContext } from "./support/render";
import type { StackPlanOutput } from "./fleet/stackPlanCli";

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
      // The archive is the host's local titan-staging directory, copied into the user's home
      // (where it lands is proven in "what lands on the host").
      assert.equal(files.inputs.remotePath, "/home/admin");
      assert.match(String(install.inputs.create), /^staging=\/home\/admin\/titan-staging\/[0-9a-f]{16}$/m);
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
    const staging = (snap: TimedSnapshot, host: string) =>
      /^staging=(\S+)$/m.exec(String(one(snap, REMOTE, `${host}-push-install`).inputs.create))?.[1];
    assert.notEqual(staging(base, "grafana"), staging(threshold, "grafana"));
    assert.equal(staging(base, "loki"), staging(threshold, "loki"));
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
      // The mocks give every RandomPassword one result: the fourth line is the metrics password,
      // the fifth the remediation agents' HMAC key.
      `${MOCK_PASSWORD}\n${MOCK_SECRET_KEY}\nhttps://hooks.slack.com/services/T0/B0/SENTINELhook\n${MOCK_PASSWORD}\n${MOCK_PASSWORD}\n`,
    );
    assert.ok(isSecretValue(install.inputs.triggers), "a trigger derived from a secret stays secret");
    for (const r of webhook.resources)
      assert.ok(!plainInputs(r).includes("SENTINEL"), `${r.name} carries a secret in plain text`);
    const plainOutputs = JSON.stringify(Object.values(webhook.outputs).filter((o) => !o.secret));
    assert.ok(!plainOutputs.includes("SENTINEL"));
  });

  it("does not push the webhook when none is configured", () => {
    assert.equal(
      unwrap(one(base, REMOTE, "grafana-push-install").inputs.stdin),
      `${MOCK_PASSWORD}\n${MOCK_SECRET_KEY}\n\n${MOCK_PASSWORD}\n${MOCK_PASSWORD}\n`,
    );
    assert.equal(one(base, REMOTE, "loki-push-install").inputs.stdin, undefined);
    // A web host gets only the remediation agent's HMAC key (tests/remediation-host.test.ts).
    const web = one(base, REMOTE, "web-1-push-install").inputs.stdin;
    assert.ok(isSecretValue(web));
    assert.equal(unwrap(web), `${MOCK_PASSWORD}\n`);
    // Prometheus gets only the password it scrapes Grafana's /metrics with.
    const prometheus = one(base, REMOTE, "prometheus-push-install").inputs.stdin;
    assert.ok(isSecretValue(prometheus));
    assert.equal(unwrap(prometheus), `${MOCK_PASSWORD}\n`);
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
        "remediation/titan-observability-dev-web-1",
        "loki/titan-observability-dev-loki",
        "grafana/titan-observability-dev-grafana",
      ].sort(),
    );
    assert.deepEqual(spec.logMarker?.hosts, ["titan-observability-dev-web-1"]);
    assert.deepEqual(
      spec.grafana.ruleUids,
      alertDefinitions(testContext().config).map((d) => d.uid),
      "every rule of the alert table",
    );
    assert.equal(spec.grafana.contactPoint, undefined, "no webhook, no contact point to expect");
    assert.ok(!JSON.stringify(spec).includes("SENTINEL"));
    const withHook = JSON.parse(
      String((one(webhook, LOCAL, "verify-pipeline").inputs.environment as Record<string, string>).VERIFY_SPEC),
    ) as VerificationSpec;
    assert.equal(withHook.grafana.contactPoint, "titan-slack");
  });

  it("derives its log marker from what it verifies, the same in the marker line and the spec", () => {
    const specOf = (snap: TimedSnapshot) =>
      JSON.parse(
        String((one(snap, LOCAL, "verify-pipeline").inputs.environment as Record<string, string>).VERIFY_SPEC),
      ) as VerificationSpec;
    const marker = specOf(base).logMarker?.marker ?? "";
    assert.match(marker, /^titan-verify-[0-9a-f]{12}$/);
    assert.ok(String(one(base, REMOTE, "web-1-log-marker").inputs.create).includes(`marker=${marker}\\n`));
    // Its trigger is the digest the marker is cut from, on both the marker and the verification.
    const trigger = String((one(base, LOCAL, "verify-pipeline").inputs.triggers as unknown[])[0]);
    assert.equal(marker, `titan-verify-${trigger.slice(0, 12)}`);
    assert.deepEqual(one(base, REMOTE, "web-1-log-marker").inputs.triggers, [trigger]);
    // A changed push is a new verification: a new marker, so Loki must return fresh lines.
    assert.notEqual(specOf(threshold).logMarker?.marker, marker);
  });

  it("counts Loki lines from the time the markers printed, so a no-op up keeps the verification as it is", () => {
    const verify = one(base, LOCAL, "verify-pipeline");
    // The spec reads each marker's stdout (the host's clock once the line is written).
    const marker = one(base, REMOTE, "web-1-log-marker");
    assert.ok(
      verify.propertyDependencies.environment?.includes(marker.urn),
      JSON.stringify(verify.propertyDependencies),
    );
    assert.match(String(marker.inputs.create), / && date -u \+%s$/);
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

  it("acts on the next run for what a stopped run changed (a failed restart is retried, then nothing is pending)", () => {
    const root = path.join(work, "retry");
    const staging = path.join(root, "titan-staging", "0123456789abcdef");
    const file = { path: `${root}/target/etc/demo.conf`, content: "a=2\n", mode: 0o644, owner: "root", group: "root" };
    fs.mkdirSync(path.dirname(path.join(staging, file.path)), { recursive: true });
    fs.writeFileSync(path.join(staging, file.path), file.content);
    const script = installScript({
      staging,
      files: [file],
      actions: [{ prefix: `${root}/target/etc/`, then: { service: "demo", action: "restart" } }],
    });
    const shim = path.join(root, "bin");
    fs.mkdirSync(shim, { recursive: true });
    fs.writeFileSync(path.join(shim, "sudo"), '#!/bin/sh\nexec "$@"\n', { mode: 0o755 });
    const log = path.join(root, "systemctl.log");
    // systemctl fails while FAIL is set, as a unit that does not come up does.
    fs.writeFileSync(path.join(shim, "systemctl"), `#!/bin/sh\necho "$*" >>${log}\n[ -z "\${FAIL:-}" ]\n`, {
      mode: 0o755,
    });
    const run = (fail: boolean, shell: string) =>
      spawnSync(shell, ["-c", script], {
        encoding: "utf8",
        env: { ...process.env, PATH: `${shim}:${process.env.PATH ?? ""}`, ...(fail ? { FAIL: "1" } : {}) },
      });
    for (const shell of ["bash", "dash"]) {
      fs.rmSync(file.path, { force: true });
      fs.rmSync(log, { force: true });
      const stopped = run(true, shell);
      assert.notEqual(stopped.status, 0, `${shell}: the failed restart fails the push`);
      assert.equal(fs.readFileSync(file.path, "utf8"), "a=2\n", "the file was placed before the restart");
      const retried = run(false, shell);
      assert.equal(retried.status, 0, retried.stderr);
      assert.match(retried.stdout, /restarted demo/, `${shell}: the file compares equal, yet the restart is retried`);
      const done = run(false, shell);
      assert.match(done.stdout, /installed: nothing changed/, `${shell}: nothing left pending`);
      assert.equal(fs.readFileSync(log, "utf8"), "restart demo\nrestart demo\n");
    }
  });

  it("ship the app without its tests and benchmark", () => {
    const files = appFiles();
    assert.ok(
      files.includes("bin/titan-serve") && files.includes("titan/app.py") && files.includes("gunicorn.conf.py"),
    );
    assert.ok(files.every((f) => !f.startsWith("tests/") && !f.startsWith("bench/") && !f.includes("__pycache__")));
  });
});

/** Runs the delivery under mocks in a child process (tests/support/pushHarness.ts). */
async function harness(mode: "up" | "preview", root: string): Promise<HarnessResult> {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(__dirname, "support/pushHarness.js")], {
    env: { ...process.env, PUSH_HARNESS_MODE: mode, PUSH_HARNESS_ROOT: root },
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout) as HarnessResult;
}

/** Every file under `dir`, relative path to content. */
function tree(dir: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = path.posix.join(rel, entry.name);
      if (entry.isDirectory()) walk(child);
      else found.set(child, fs.readFileSync(path.join(dir, child), "utf8"));
    }
  };
  walk("");
  return found;
}

describe("what pulumi-command accepts (its Check, tests/support/commandProvider.ts)", () => {
  const connection = { host: "198.51.100.1", user: "admin", privateKey: "k" };
  const copy = (source: unknown) => ({ connection, source, remotePath: "/home/admin" });
  const COPY_TYPE = "command:remote:CopyToRemote";

  it("refuses the old push: an AssetArchive of StringAssets, with the provider's message", () => {
    const old = new pulumi.asset.AssetArchive({ "etc/a.conf": new pulumi.asset.StringAsset("a=1\n") });
    assert.throws(
      () => checkCommandResource(COPY_TYPE, "web-1-push-files", copy(old)),
      /command:remote:CopyToRemote resource 'web-1-push-files's property 'archive' .*has a problem: archive must be a path to a file or directory/,
    );
    assert.throws(
      () => checkCommandResource(COPY_TYPE, "x", copy(new pulumi.asset.RemoteAsset("https://example.com/a"))),
      /asset must be a path-based file asset or a text asset/,
    );
  });

  it("refuses an unknown source (a preview that cannot know it), a missing host, an unknown field", () => {
    assert.throws(() => checkCommandResource(COPY_TYPE, "x", copy(undefined)), /either asset or archive must be set/);
    assert.throws(
      () => checkCommandResource(COPY_TYPE, "x", { ...copy(new pulumi.asset.FileArchive("d")), remotePath: undefined }),
      /Missing required field 'remotePath'/,
    );
    assert.throws(
      () => checkCommandResource("command:remote:Command", "x", { connection: { user: "admin" }, create: "true" }),
      /property 'connection.host'.*Missing required field 'host'/,
    );
    assert.throws(
      () => checkCommandResource("command:local:Command", "x", { create: "true", cwd: "/" }),
      /unrecognized field 'cwd'/,
    );
    assert.doesNotThrow(() => checkCommandResource(COPY_TYPE, "x", copy(new pulumi.asset.FileArchive("d"))));
    assert.doesNotThrow(() => checkCommandResource(COPY_TYPE, "x", copy(new pulumi.asset.StringAsset("text"))));
  });

  it("accepts every command resource the program declares (each snapshot ran the check)", () => {
    for (const s of [base, threshold, webhook]) {
      assert.equal(s.error, undefined);
      assert.equal(ofType(s, COPY).length, HOSTS.length);
    }
  });

  it("runs no remote command with the previous output in its environment (Debian's sshd refuses it)", () => {
    const remote = ofType(base, REMOTE);
    assert.ok(remote.length >= HOSTS.length * 2 + 1);
    for (const r of remote) assert.equal(r.inputs.addPreviousOutputInEnv, false, r.name);
  });
});

describe("what lands on the host", () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-push-"));
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it("is exactly the rendered tree, the app included, in the directory the install reads", async () => {
    const root = path.join(work, "up");
    fs.mkdirSync(root);
    const result = await harness("up", root);
    assert.equal(result.error, undefined, result.error);
    const ctx = { ...testContext(), lokiBucket: "harness-bucket" };
    const appRoot = path.join(projectRoot(), "app");
    for (const slot of ctx.plan.hosts) {
      const files = result.resources.find((r) => r.name === `${slot.name}-push-files`);
      const install = result.resources.find((r) => r.name === `${slot.name}-push-install`);
      assert.ok(files && install, slot.name);
      assert.equal(files.source?.kind, "FileArchive", `${slot.name}: a path-based archive`);
      const host = path.join(work, `remote-${slot.name}`);
      // An earlier push's staging directory is already there, as on a host pushed before.
      fs.mkdirSync(path.join(host, "home/admin/titan-staging/0123456789abcdef"), { recursive: true });
      providerCopy(String(files.source.path), path.join(host, String(files.inputs.remotePath)), root);
      const staging = /^staging=(\S+)$/m.exec(String(install.inputs.create))?.[1];
      assert.ok(staging, `${slot.name}: the install names its staging directory`);

      const expected = new Map<string, string>();
      const rendered = renderHostFiles(ctx, slot, {
        slackWebhookConfigured: false,
        grafanaRootUrl: "http://198.51.100.9:3000",
      });
      for (const f of rendered) expected.set(f.path.replace(/^\//, ""), f.content);
      if (slot.role === "web") {
        for (const f of appFiles(appRoot)) expected.set(`app/${f}`, fs.readFileSync(path.join(appRoot, f), "utf8"));
      }
      assert.deepEqual(
        [...tree(path.join(host, staging))].sort(),
        [...expected].sort(),
        `${slot.name}: the staging directory holds the rendered tree`,
      );
      for (const f of rendered) assert.ok(String(install.inputs.create).includes(`place "$staging${f.path}"`));
    }
  });

  it("is still a path the provider accepts in a preview that cannot render the files yet, and nothing is written", async () => {
    const root = path.join(work, "preview");
    fs.mkdirSync(root);
    const result = await harness("preview", root);
    assert.equal(result.error, undefined, result.error);
    for (const host of HOSTS) {
      const files = result.resources.find((r) => r.name === `${host}-push-files`);
      assert.equal(files?.source?.kind, "FileArchive", host);
      assert.equal(files.source.path, pushArchiveDir(root, "harness", host).relative);
      assert.equal(files.inputs.remotePath, "/home/admin");
      assert.deepEqual(fs.readdirSync(path.join(root, String(files.source.path))), [], `${host}: no tree yet`);
    }
  });

  it("keeps one tree per host locally, written once, and refuses a path outside it", () => {
    const root = path.join(work, "local");
    const write = (name: string, content: string) =>
      writePushTree({ root, stack: "dev", host: "web-1", name, entries: [{ path: "/etc/a.conf", content }] });
    const archive = write("aaaaaaaaaaaaaaaa", "a=1\n");
    write("aaaaaaaaaaaaaaaa", "ignored: the name is the content's digest\n");
    assert.equal(fs.readFileSync(path.join(archive.absolute, "aaaaaaaaaaaaaaaa/etc/a.conf"), "utf8"), "a=1\n");
    write("bbbbbbbbbbbbbbbb", "a=2\n");
    assert.deepEqual(fs.readdirSync(archive.absolute), ["bbbbbbbbbbbbbbbb"], "the older tree is pruned");
    assert.throws(
      () => writePushTree({ root, stack: "dev", host: "web-1", name: "c", entries: [{ path: "../x", content: "" }] }),
      /file path "\.\.\/x" must name a file inside the tree/,
    );
    assert.deepEqual(fs.readdirSync(archive.absolute), ["bbbbbbbbbbbbbbbb"], "nothing half-written is left");
    assert.throws(() => pushArchiveDir(root, "../dev", "web-1"), /stack "\.\.\/dev" must be one path segment/);
  });
});

/** Whether this process may grow a mounted ext4 (CAP_SYS_RESOURCE, bit 24 of CapEff). */
function canResizeOnline(): boolean {
  const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0";
  return (BigInt(`0x${effective}`) >> 24n) % 2n === 1n;
}

describe("data volume growth", () => {
  it("re-runs the push of a role whose data volume is resized, and only that one", async () => {
    const snap = await update({}, { prometheusDataVolumeSizeGb: "40" });
    assert.equal(snap.error, undefined, snap.error);
    assert.equal(actionOf(snap, "aws:ebs/volume:Volume", "prometheus-data"), "update");
    assert.equal(actionOf(snap, REMOTE, "prometheus-push-install"), "replace");
    for (const host of ["web-1", "loki", "grafana"])
      assert.equal(actionOf(snap, REMOTE, `${host}-push-install`), "same");
    assert.match(String(one(snap, REMOTE, "prometheus-push-install").inputs.create), /resize2fs/);
    assert.doesNotMatch(String(one(snap, REMOTE, "web-1-push-install").inputs.create), /resize2fs/);
  });

  it("grows a mounted ext4 filesystem to its grown device, and leaves one that fills it alone", () => {
    assert.equal(process.getuid?.(), 0, "this test mounts a loop device: run it as root");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "titan-grow-"));
    const image = path.join(dir, "data.img");
    const mnt = path.join(dir, "mnt");
    const shim = path.join(dir, "bin");
    let loop: string | undefined;
    let mounted = false;
    const run = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { encoding: "utf8" });
      assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
      return r.stdout.trim();
    };
    try {
      fs.mkdirSync(mnt);
      fs.mkdirSync(shim);
      fs.writeFileSync(path.join(shim, "sudo"), '#!/bin/sh\nexec "$@"\n', { mode: 0o755 });
      run("truncate", ["-s", "32M", image]);
      run("mkfs.ext4", ["-q", "-F", image]);
      loop = run("losetup", ["-f", "--show", image]);
      run("mount", [loop, mnt]);
      mounted = true;
      const size = () => fs.statfsSync(mnt).blocks * fs.statfsSync(mnt).bsize;
      const script = ["set -eu", ...growFilesystemLines(mnt)].join("\n");
      const env = { ...process.env, PATH: `${shim}:${process.env.PATH ?? ""}` };
      const push = () => spawnSync("sh", ["-c", script], { encoding: "utf8", env });

      const untouched = push();
      assert.equal(untouched.status, 0, untouched.stderr);
      assert.equal(untouched.stdout, "", "a filesystem that fills its device is left alone");

      const before = size();
      run("truncate", ["-s", "96M", image]);
      run("losetup", ["-c", loop]);
      const grown = push();
      if (canResizeOnline()) {
        assert.equal(grown.status, 0, grown.stderr);
        assert.match(grown.stdout, new RegExp(`grew the filesystem on ${loop}`));
        assert.ok(size() > before * 2, `grown from ${before} to ${size()} bytes`);
        const again = push();
        assert.equal(again.status, 0, again.stderr);
        assert.equal(again.stdout, "", "nothing to do once grown");
      } else {
        // The kernel grows a mounted ext4 only for CAP_SYS_RESOURCE, which a host's root has
        // and this container's bounding set lacks: the push must then fail, saying why.
        assert.notEqual(grown.status, 0);
        assert.match(grown.stderr, /Permission denied to resize filesystem/);
        assert.match(grown.stderr, new RegExp(`${loop} is mounted on ${mnt}`), "it resized the volume mounted there");
      }
      const elsewhere = spawnSync("sh", ["-c", ["set -eu", ...growFilesystemLines(dir)].join("\n")], {
        encoding: "utf8",
        env,
      });
      assert.notEqual(elsewhere.status, 0);
      assert.match(elsewhere.stderr, new RegExp(`nothing is mounted at ${dir}`));
    } finally {
      if (mounted) spawnSync("umount", [mnt]);
      if (loop) spawnSync("losetup", ["-d", loop]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a second `up` with nothing changed", () => {
  it("is a no-op: every resource the same, so no command runs and no service restarts", async () => {
    const again = await update({}, {});
    assert.equal(again.error, undefined, again.error);
    const changed = again.resources
      .filter((r) => r.action !== "same")
      .map((r) => `${r.name} ${r.action}: ${r.changed?.join(", ")}`);
    assert.deepEqual(changed, []);
  });

  it("re-runs the verification and its markers when a push they verify changes", async () => {
    const next = await update({}, { cpuWarningPercent: "90" });
    assert.equal(next.error, undefined, next.error);
    for (const [type, name] of [
      [LOCAL, "verify-pipeline"],
      [REMOTE, "web-1-log-marker"],
    ]) {
      const r = one(next, type, name);
      assert.equal(r.action, "replace", `${name}: ${r.changed?.join(", ")}`);
      assert.ok(r.replacedBecause?.includes("triggers"), `${name}: ${r.replacedBecause?.join(", ")}`);
    }
  });
});

describe("command timeouts (customTimeouts)", () => {
  it("bound every command resource, each sized to what it does", () => {
    const commands = base.resources.filter((r) => r.type.startsWith("command:"));
    assert.ok(commands.length > 0);
    for (const r of commands) {
      for (const op of ["create", "update", "delete"] as const) {
        assert.match(r.customTimeouts[op], /^\d+m$/, `${r.name} ${op}`);
      }
    }
    const minutes = (name: string) =>
      Number.parseInt(base.resources.find((r) => r.name === name)?.customTimeouts.create ?? "", 10);
    // Waiting for a fresh host (dials, then cloud-init) outlasts a copy; one log line is the shortest.
    assert.ok(minutes("web-1-push-ready") > minutes("web-1-push-files"));
    assert.ok(minutes("web-1-log-marker") < minutes("web-1-push-install"));
    // The verification's own polling deadline fits inside its timeout.
    const spec = JSON.parse(
      String((one(base, LOCAL, "verify-pipeline").inputs.environment as Record<string, string>).VERIFY_SPEC),
    ) as VerificationSpec;
    assert.ok(spec.timeoutMs < minutes("verify-pipeline") * 60_000);
  });
});

/**
 * A copy of this checkout at `dest`: the repository's files, the compiled program this test runs
 * from, and node_modules linked. Build outputs, local state and push trees stay behind. Returns
 * the copy's stack-plan entry point (tests/fleet/stackPlanCli.ts: the snapshot, and each
 * CopyToRemote's source path, which the snapshot's JSON cannot hold).
 */
function copyCheckout(dest: string): string {
  const root = projectRoot();
  const compiled = path.resolve(__dirname, "..");
  const skip = (name: string) =>
    ["node_modules", ".git", ".pulumi-state", ".titan-push", "__pycache__", ".pytest_cache"].includes(name) ||
    /^build($|-)/.test(name);
  fs.cpSync(root, dest, { recursive: true, filter: (src) => src === root || !skip(path.basename(src)) });
  fs.cpSync(compiled, path.join(dest, path.basename(compiled)), { recursive: true });
  fs.symlinkSync(path.join(root, "node_modules"), path.join(dest, "node_modules"));
  return path.join(dest, path.basename(compiled), "tests/fleet/stackPlanCli.js");
}

describe("another checkout, another working directory", () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-checkouts-"));
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it("declares exactly the same inputs, with no path of either checkout in them", async () => {
    const input = path.join(work, "input.json");
    fs.writeFileSync(input, JSON.stringify({ config: BASE_CONFIG, secretKeys: [], stack: "dev" }));
    // Two checkouts at different depths; the second runs from a subdirectory, as `pulumi up`
    // started there would (the engine runs the program and the providers from the project's
    // directory all the same: pulumi/pulumi pkg/engine/project.go getPwdMain).
    const runs = await Promise.all(
      [
        { root: path.join(work, "a"), cwd: "." },
        { root: path.join(work, "elsewhere/deeper/b"), cwd: "infra" },
      ].map(async ({ root, cwd }) => {
        fs.mkdirSync(root, { recursive: true });
        const cli = copyCheckout(root);
        const { stdout } = await promisify(execFile)(process.execPath, [cli], {
          cwd: path.join(root, cwd),
          env: { ...process.env, STACK_PLAN_INPUT_FILE: input, AWS_REGION: "", AWS_DEFAULT_REGION: "" },
          maxBuffer: 256 * 1024 * 1024,
        });
        return { root, ...(JSON.parse(stdout) as StackPlanOutput) };
      }),
    );
    for (const { root, snapshot: snap, sources } of runs) {
      assert.equal(snap.error, undefined, snap.error);
      const declared = JSON.stringify([snap.resources.map((r) => r.inputs), sources]);
      for (const p of [root, work, projectRoot()]) assert.ok(!declared.includes(p), `an input names the checkout ${p}`);
      // The archive each copy names, resolved against its project directory (where the engine
      // hashes it and pulumi-command opens it), holds the tree the program wrote there.
      assert.equal(Object.keys(sources).length, HOSTS.length);
      for (const [name, source] of Object.entries(sources)) {
        assert.equal(source.kind, "FileArchive", name);
        assert.ok(source.path && !path.isAbsolute(source.path), `${name}: ${source.path}`);
        assert.equal(fs.readdirSync(path.join(root, source.path)).length, 1, `${root}: ${source.path}`);
      }
    }
    const [a, b] = runs.map(({ snapshot: snap, sources }) => ({
      resources: snap.resources.map((r) => ({ type: r.type, name: r.name, inputs: r.inputs })),
      sources,
    }));
    assert.deepEqual(b, a);
  });
});
