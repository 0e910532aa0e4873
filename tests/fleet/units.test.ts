/**
 * The fleet harness's pure parts: NoCloud seed contents and input checks, the image cache
 * key, the cleanup order. No root needed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import YAML from "yaml";
import { imageFiles, imageInputs, imageKey, LOCALE_FILE } from "./baseImage";
import { Cleanup } from "./cleanup";
import { serviceState, unitState, type CheckHost } from "./checks/host";
import { checkPrerequisites } from "./fleet";
import { waitFor } from "./exec";
import { LOGIN_USER } from "./layout";
import { acquireFleetLock, tryLock } from "./lock";
import { seedFiles, type SeedInput } from "./seed";
import { nitroById } from "./volume";

const input: SeedInput = {
  instanceId: "i-0123456789abcdef0",
  hostname: "prometheus",
  publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDummyKeyForTheSeedTestOnly000000000000000 titan-fleet",
  userData: "#cloud-config\nruncmd: []\n",
  address: "10.42.0.10",
  prefix: 24,
};

test("seed: meta-data carries the instance id, hostname and key; user data is passed byte for byte", () => {
  const files = seedFiles(input);
  assert.deepEqual(YAML.parse(files["meta-data"]), {
    "instance-id": input.instanceId,
    "local-hostname": "prometheus",
    "public-keys": [input.publicKey],
  });
  assert.equal(files["user-data"], input.userData);
  const net = YAML.parse(files["network-config"]) as { config: { name: string; subnets: unknown[] }[] };
  assert.deepEqual(net.config[0].subnets, [{ type: "static", address: "10.42.0.10/24" }]);
  assert.equal(net.config[0].name, "host0");
  // No gateway: nothing a host sends can be routed off this machine.
  assert.doesNotMatch(files["network-config"], /gateway/);
});

test("seed: bad input is refused naming the key and the value", () => {
  assert.throws(() => seedFiles({ ...input, instanceId: "web-1" }), /instanceId web-1: expected i- and 17 hex/);
  assert.throws(() => seedFiles({ ...input, hostname: "Web_1" }), /hostname Web_1: expected a DNS label/);
  assert.throws(() => seedFiles({ ...input, publicKey: "ssh-rsa AAAA" }), /publicKey ssh-rsa AAAA.*ed25519/);
  assert.throws(() => seedFiles({ ...input, userData: "#!/bin/sh\n" }), /userData: expected a #cloud-config/);
  assert.throws(() => seedFiles({ ...input, address: "10.42.0" }), /address 10.42.0: expected IPv4/);
});

test("volume: the by-id name is Nitro's NVMe serial, the volume id without its dash", () => {
  assert.equal(nitroById("vol-0123456789abcdef0"), "nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0");
});

test("image: the cache key follows every input and nothing else", () => {
  const base = imageInputs();
  assert.equal(imageKey(base), imageKey(imageInputs()));
  const keys = new Set([
    imageKey(base),
    imageKey({ ...base, packages: [...base.packages, "vim"] }),
    imageKey({ ...base, files: { ...base.files, "/etc/motd": "hi\n" } }),
    imageKey({ ...base, suite: "trixie" }),
    imageKey({ ...base, buildVersion: base.buildVersion + 1 }),
  ]);
  assert.equal(keys.size, 5);
});

test("image: cloud-init's default user is the stack's login user, with passwordless sudo", () => {
  const cfg = YAML.parse(imageFiles()["/etc/cloud/cloud.cfg.d/01_titan_fleet.cfg"]) as {
    system_info: { default_user: { name: string; sudo: string[] } };
    datasource_list: string[];
  };
  assert.equal(cfg.system_info.default_user.name, LOGIN_USER);
  assert.equal(LOGIN_USER, "admin");
  assert.deepEqual(cfg.system_info.default_user.sudo, ["ALL=(ALL) NOPASSWD:ALL"]);
  assert.deepEqual(cfg.datasource_list, ["NoCloud", "None"]);
});

test("image: the locale is the Debian AMI's (LANG=C.UTF-8 in /etc/default/locale), with no cloud-init override", () => {
  const files = imageFiles();
  // debian-cloud-images config_space/12/files/etc/default/locale/DEBIAN.
  assert.equal(files[LOCALE_FILE], "LANG=C.UTF-8\n");
  for (const [file, content] of Object.entries(files).filter(([f]) => f.startsWith("/etc/cloud/"))) {
    const cfg = YAML.parse(content) as Record<string, unknown>;
    assert.equal(cfg.locale, undefined, `${file}: sets a locale the AMI's cloud.cfg.d does not`);
  }
});

test("cleanup: newest first, every step even after a failure, failures reported, once only", async () => {
  const done: string[] = [];
  const c = new Cleanup();
  c.add("bridge", () => void done.push("bridge"));
  c.add("loop", () => {
    throw new Error("busy");
  });
  c.add("container", () => Promise.resolve().then(() => void done.push("container")));
  assert.deepEqual(c.pending(), ["container", "loop", "bridge"]);
  assert.deepEqual(await c.run(), ["loop: busy"]);
  assert.deepEqual(done, ["container", "bridge"]);
  assert.deepEqual(await c.run(), ["loop: busy"]);
  assert.deepEqual(done, ["container", "bridge"]);
  assert.throws(() => c.add("late", () => undefined), /cleanup already running/);
});

test("prerequisites: without root the fleet refuses at once and says why", () => {
  // As nobody (65534) would see it: the check names root and the uid, before touching anything.
  // (Asked in this process: a checkout under a private directory, as mktemp makes them, is not
  // one another user could even load the module from.)
  assert.throws(
    () => checkPrerequisites(65534),
    /the fleet needs root \(systemd-nspawn, loop devices, a bridge\); running as uid 65534/,
  );
});

test("lock: a second run waits while the first lives, and takes over from one that died", async () => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "fleet-lock-")), "lock");
  // Held by a live process (a sleeping child stands in for another run).
  const other = spawn("/bin/sleep", ["600"], { stdio: "ignore" });
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "pid"), String(other.pid));
  assert.equal(tryLock(dir), false);
  const lines: string[] = [];
  const c = new Cleanup();
  const waiting = acquireFleetLock(c, (l) => lines.push(l), { dir, timeoutMs: 60_000 });
  await waitFor("the waiting message", () => (lines.length > 0 ? true : undefined), {
    timeoutMs: 10_000,
    intervalMs: 20,
  });
  assert.match(lines[0], new RegExp(`another run \\(pid ${other.pid}\\) holds`));
  // The other run dies without releasing: its lock is stale and is taken over.
  const gone = new Promise((r) => other.once("exit", r));
  other.kill("SIGKILL");
  await gone;
  await waiting;
  assert.equal(fs.readFileSync(path.join(dir, "pid"), "utf8"), String(process.pid));
  assert.deepEqual(await c.run(), []);
  assert.equal(fs.existsSync(dir), false);
});

test("unit state: a running unit's invocation and environment; stopped, serviceState throws and unitState says why", async () => {
  /** A host whose shell answers each command line from `answers` (anything else: status 1, no output). */
  const host = (answers: Record<string, string>): CheckHost => ({
    name: "web-1",
    role: "web",
    privateIp: "10.42.0.10",
    exec: (command) => {
      const out = answers[command[command.length - 1]];
      return Promise.resolve(out === undefined ? { status: 1, out: "tr: No such process\n" } : { status: 0, out });
    },
  });
  const show = (prop: string) => `systemctl show -p ${prop} --value titan-remediation.service`;
  const running = host({
    [show("InvocationID")]: "4f1c\n",
    [show("MainPID")]: "812\n",
    "tr '\\0' '\\n' </proc/812/environ": "TITAN_REMEDIATION_MODE=dry-run\nA=b=c\nnot-a-pair\n",
  });
  const state = await serviceState(running, "titan-remediation.service");
  assert.equal(state.invocation, "4f1c");
  assert.deepEqual(
    [...state.env],
    [
      ["TITAN_REMEDIATION_MODE", "dry-run"],
      ["A", "b=c"],
    ],
  );
  assert.deepEqual(await unitState(running, "titan-remediation.service"), state);

  const stopped = host({ [show("InvocationID")]: "4f1c\n", [show("MainPID")]: "0\n" });
  assert.deepEqual(await unitState(stopped, "titan-remediation.service"), {
    invocation: "4f1c",
    notRunning: "titan-remediation.service is not running (MainPID 0)",
  });
  await assert.rejects(
    serviceState(stopped, "titan-remediation.service"),
    /^Error: titan-remediation\.service is not running \(MainPID 0\)$/,
  );
  // Its process gone between the two reads: the same, with the reason.
  const exited = host({ [show("InvocationID")]: "4f1c\n", [show("MainPID")]: "812\n" });
  assert.equal((await unitState(exited, "titan-remediation.service")).env, undefined);
  await assert.rejects(
    serviceState(exited, "titan-remediation.service"),
    /reading \/proc\/812\/environ: tr: No such process/,
  );
});
