/**
 * The fleet provisioned by the stack (needs root, as every fleet test): the Prometheus host
 * boots with exactly the user data the program declares (its NoCloud seed compared with an
 * independent snapshot of the program), its push stages exactly the rendered tree as the
 * provider copies it (tests/support/providerCopy.ts), and a retention change applied as
 * `pulumi up` would runs only Prometheus' copy and install, which restarts it with the new flag.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { PROMETHEUS_DEFAULTS_PATH } from "../../templates/prometheus/config";
import { projectRoot } from "../../templates/projectFiles";
import { providerCopy } from "../support/providerCopy";
import { one, snapshot } from "../support/snapshots";
import { Cleanup } from "./cleanup";
import {
  applyUpdate,
  overrideEc2Endpoint,
  provisionFleet,
  sshRun,
  stackContext,
  type ProvisionedFleet,
} from "./provision";
import { SEED_DIR } from "./seed";
import { FLEET_SECRET_KEYS, INSTANCE } from "./stackPlan";

// The base image may have to be built first (minutes, cold).
const TIMEOUT = 30 * 60_000;

const cleanup = new Cleanup();
let pf: ProvisionedFleet;
const log: string[] = [];

before(
  async () => {
    pf = await provisionFleet(cleanup, { hosts: ["prometheus"], log: (l) => log.push(l) });
  },
  { timeout: TIMEOUT },
);
after(async () => assert.deepEqual(await cleanup.run(), []), { timeout: 120_000 });

const prometheus = () => {
  const h = pf.hosts.find((x) => x.slot.role === "prometheus");
  assert.ok(h, log.join("\n"));
  return h;
};

/** Each file of a tree as "relative-path sha256", sorted; directories as "relative-path/". */
function localTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    for (const e of fs.readdirSync(abs)) {
      const p = path.join(abs, e);
      const r = rel ? `${rel}/${e}` : e;
      if (fs.statSync(p).isDirectory()) {
        out.push(`${r}/`);
        walk(p, r);
      } else out.push(`${r} ${createHash("sha256").update(fs.readFileSync(p)).digest("hex")}`);
    }
  };
  walk(dir, "");
  return out.sort();
}

test("the Prometheus host boots with the stack's user data, byte for byte", { timeout: TIMEOUT }, async () => {
  const h = prometheus();
  const seeded = fs.readFileSync(path.join(h.container.root, SEED_DIR, "user-data"), "utf8");
  // An independent run of the program (snapshotCli.ts) with the same configuration.
  const snap = await snapshot(pf.config, { replaceBase: true, stack: pf.plan.stack, secretKeys: FLEET_SECRET_KEYS });
  assert.equal(snap.error, undefined);
  const declared = one(snap, INSTANCE, h.planned.name).inputs.userData;
  assert.equal(typeof declared, "string");
  assert.ok(seeded === declared, "the seed's user-data differs from the instance's userData input");
  assert.equal(h.planned.userData, declared);
  assert.equal(h.readiness.cloudInit, "done", h.readiness.cloudInitDetail);
  assert.ok(h.bootstrapSeconds !== undefined && h.bootstrapSeconds > 0 && h.pushSeconds > 0);
});

test("its push staged exactly the rendered tree, as the provider copies it", { timeout: TIMEOUT }, async () => {
  const h = prometheus();
  const copy = h.planned.pushes.find((p) => p.type === "command:remote:CopyToRemote");
  assert.ok(copy && copy.type === "command:remote:CopyToRemote");
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-provision-test-"));
  try {
    // What pulumi-command would leave in the home directory, replayed locally.
    const remoteHome = path.join(home, "host", copy.remotePath);
    fs.mkdirSync(remoteHome, { recursive: true });
    providerCopy(copy.source.path, remoteHome, projectRoot());
    const staged = path.join(remoteHome, "titan-staging");
    if (pf.ec2Endpoint) overrideEc2Endpoint(staged, stackContext(pf.plan), pf.ec2Endpoint);
    const expected = localTree(staged);

    const listing = await sshRun(
      h,
      'cd ~/titan-staging && find . -mindepth 1 -type d -printf "%P/\\n" && find . -type f -printf "%P\\n" | while IFS= read -r f; do printf "%s %s\\n" "$f" "$(sha256sum < "$f" | cut -d" " -f1)"; done',
    );
    assert.equal(listing.status, 0, listing.stderr);
    assert.deepEqual(listing.stdout.trim().split("\n").sort(), expected);

    // pkg/sftp sends no mode: files and directories get sftp-server's defaults under its umask.
    const modes = await sshRun(h, 'cd ~/titan-staging && find . -mindepth 1 -printf "%y %m\\n" | sort -u');
    assert.deepEqual(modes.stdout.trim().split("\n"), ["d 755", "f 644"]);
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});

test("a retention change runs only Prometheus' copy and install, which restarts it", { timeout: TIMEOUT }, async () => {
  const h = prometheus();
  const r = await applyUpdate(pf, { prometheusRetentionDays: "21" });
  assert.deepEqual(
    r.ran.map((s) => `${s.host} ${s.resource} ${s.action} ${s.runs}`),
    ["prometheus prometheus-push-files replace copy", "prometheus prometheus-push-install replace create"],
  );
  assert.match(r.ran[1].stdout ?? "", /restarted prometheus/);
  assert.deepEqual(
    r.notRun.map((n) => n.resource),
    ["verify-pipeline", "web-1-log-marker"],
  );
  const flags = await sshRun(h, `cat ${PROMETHEUS_DEFAULTS_PATH}`);
  assert.match(flags.stdout, /--storage\.tsdb\.retention\.time=21d/);
});

test("a threshold change runs nothing on the Prometheus host", { timeout: TIMEOUT }, async () => {
  const r = await applyUpdate(pf, { rootDiskCriticalPercent: "85" });
  assert.deepEqual(r.ran, []);
  assert.deepEqual(r.notRun.map((n) => n.resource).sort(), [
    "grafana-push-files",
    "grafana-push-install",
    "verify-pipeline",
    "web-1-log-marker",
  ]);
});
