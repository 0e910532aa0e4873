/**
 * The fleet's stand-ins that items 2 and 3 rest on, without a host: the fstab generator
 * stand-in orders a `nofail` entry as weakly as systemd's own (so the fleet can catch a daemon
 * that does not require its mount), the mount unit names, and the verdict on Loki's starts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { DATA_MOUNTS } from "../../templates/host/bootstrap";
import { DEVICE_WAIT, deviceWait, fstabGenerator } from "./baseImage";
import { judgeLokiStarts, lokiStarts, RENDERED_MARK } from "./checks/loki";
import { mountUnitOf } from "./faults";

const work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-fleet-fstab-"));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function generate(fstab: string): string {
  const dir = fs.mkdtempSync(path.join(work, "gen-"));
  const script = path.join(dir, "generator");
  fs.writeFileSync(script, fstabGenerator(), { mode: 0o755 });
  fs.writeFileSync(path.join(dir, "fstab"), fstab);
  const out = path.join(dir, "out");
  fs.mkdirSync(out);
  const r = spawnSync(script, [out, out, out], {
    encoding: "utf8",
    env: { ...process.env, TITAN_FLEET_FSTAB: path.join(dir, "fstab") },
  });
  assert.equal(r.status, 0, r.stderr);
  return out;
}

describe("the fleet's fstab generator stand-in", () => {
  it("passes shellcheck", () => {
    for (const [name, text] of [
      ["generator", fstabGenerator()],
      ["wait-device", deviceWait()],
    ]) {
      const r = spawnSync("shellcheck", ["-s", "sh", "-"], { input: text, encoding: "utf8" });
      assert.equal(r.status, 0, `${name}: ${r.stdout}`);
    }
  });

  it("orders a nofail entry like systemd-fstab-generator: no Before=local-fs.target, wanted not required", () => {
    const uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    const out = generate(`UUID=${uuid} /var/lib/loki ext4 defaults,nofail 0 2\n`);
    const unit = fs.readFileSync(path.join(out, "var-lib-loki.mount"), "utf8");
    assert.doesNotMatch(unit, /^Before=local-fs\.target$/m);
    assert.match(unit, new RegExp(`^What=/dev/disk/by-uuid/${uuid}$`, "m"));
    assert.match(unit, /^Where=\/var\/lib\/loki$/m);
    assert.match(unit, /^Options=defaults,nofail$/m);
    assert.match(unit, new RegExp(`^Requires=titan-fleet-device-${uuid}\\.service$`, "m"));
    assert.ok(fs.existsSync(path.join(out, "local-fs.target.wants/var-lib-loki.mount")));
    assert.ok(!fs.existsSync(path.join(out, "local-fs.target.requires")));
    const wait = fs.readFileSync(path.join(out, `titan-fleet-device-${uuid}.service`), "utf8");
    assert.match(wait, new RegExp(`^ExecStart=${DEVICE_WAIT} ${uuid}$`, "m"));
    assert.match(wait, /^TimeoutStartSec=90$/m, "systemd's DefaultDeviceTimeoutSec");
  });

  it("orders an entry without nofail before local-fs.target and requires it, and ignores what is not ext4 by UUID", () => {
    const out = generate(
      [
        "# comment",
        "UUID=1111 /var/lib/prometheus ext4 defaults 0 2",
        "/dev/sda1 / ext4 defaults 0 1",
        "UUID=2222 /srv xfs defaults 0 2",
        "",
      ].join("\n"),
    );
    const unit = fs.readFileSync(path.join(out, "var-lib-prometheus.mount"), "utf8");
    assert.match(unit, /^Before=local-fs\.target$/m);
    assert.ok(fs.existsSync(path.join(out, "local-fs.target.requires/var-lib-prometheus.mount")));
    assert.deepEqual(
      fs.readdirSync(out).filter((f) => f.endsWith(".mount")),
      ["var-lib-prometheus.mount"],
    );
  });
});

describe("mount units and Loki's starts", () => {
  it("names each data volume's mount unit as systemd does", () => {
    assert.equal(mountUnitOf(DATA_MOUNTS.loki.mountPoint), "var-lib-loki.mount");
    assert.equal(mountUnitOf(DATA_MOUNTS.grafana.mountPoint), "var-lib-grafana.mount");
    assert.throws(() => mountUnitOf("/var/lib/a-b"), /expected a plain absolute path/);
  });

  const skipped =
    "Loki service was skipped because of an unmet condition check (ConditionPathExists=/etc/loki/titan-configured).";
  const start = (first: string) =>
    `STAND-IN loki 3.7.7: started on config /etc/loki/config.yml sha256 ${"a".repeat(64)} first line: ${first}`;
  const rendered = `# Loki 3.7.7 configuration. ${RENDERED_MARK}; do not edit on the host.`;

  it("passes when the package's start was held back and every start read the rendered config", () => {
    const v = judgeLokiStarts(
      lokiStarts([skipped, skipped, start(rendered), "Started Loki service.", start(rendered)].join("\n")),
    );
    assert.deepEqual(v, {
      ok: true,
      detail: "2 start(s) held back before the push, 2 start(s), each on the rendered config",
    });
  });

  it("fails on a start on the example config, on no held-back start, and on no start", () => {
    const example = start("# STAND-IN default for loki 3.7.7; the configuration push replaces it.");
    assert.match(
      judgeLokiStarts(lokiStarts([example, start(rendered)].join("\n"))).detail,
      /1 of 2 start\(s\) ran on another config/,
    );
    assert.match(judgeLokiStarts(lokiStarts(start(rendered))).detail, /no start was ever held back/);
    assert.match(judgeLokiStarts(lokiStarts(skipped)).detail, /Loki never started/);
    assert.equal(judgeLokiStarts(lokiStarts("Condition check resulted in Loki service being skipped.")).ok, false);
  });
});
