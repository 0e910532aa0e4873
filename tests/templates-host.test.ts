/** Host bootstrap: cloud-init schema, shellcheck and systemd-analyze on what the hosts receive. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import YAML from "yaml";
import { hasDataVolume, ROLES, type Role } from "../infra/topology";
import {
  BOOTSTRAP_PATH,
  bootstrapPlan as planOf,
  DATA_MOUNTS,
  renderBootstrapScript,
} from "../templates/host/bootstrap";
import type { CloudConfig } from "../templates/host/cloudInit";
import { GRAFANA_ADMIN_PASSWORD_PATH } from "../templates/host/grafanaServer";
import { environment, HARDENING, renderUnit, sandbox } from "../templates/host/systemd";
import { servicesFor, TITAN_APP_DIR, unitsFor } from "../templates/host/units";
import { cloudConfigFor, renderUserData, USER_DATA_LIMIT } from "../templates/host/userData";
import { GRAFANA_APT, VERSIONS } from "../templates/versions";
import { VENDOR_PACKAGES } from "./fleet/standins/vendor";
import { ROOT } from "./support/files";

const VOLUME = "vol-0123456789abcdef0";
const volumeOf = (role: Role) => (hasDataVolume(role) ? VOLUME : undefined);
const input = (role: Role) => ({ role, dataVolumeId: volumeOf(role) });
const bootstrapPlan = (role: Role) => planOf(role, volumeOf(role));

const work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-host-"));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function tool(command: string, args: string[]) {
  const result = spawnSync(command, args, { cwd: work, encoding: "utf8" });
  assert.equal(result.error, undefined, `${command} must be installed (scripts/install-deps.sh)`);
  return { status: result.status, output: result.stdout + result.stderr };
}

describe("user data", () => {
  for (const role of ROLES) {
    it(`${role}: valid cloud-config under EC2's size limit`, () => {
      const text = renderUserData(input(role));
      assert.ok(text.startsWith("#cloud-config\n"));
      assert.ok(Buffer.byteLength(text) < USER_DATA_LIMIT);
      const file = path.join(work, `${role}.yaml`);
      fs.writeFileSync(file, text);
      const result = tool("cloud-init", ["schema", "--config-file", file]);
      assert.equal(result.status, 0, result.output);
      assert.match(result.output, /Valid cloud-config/);
    });

    it(`${role}: the bootstrap script passes shellcheck and is what runcmd runs`, () => {
      const config = YAML.parse(renderUserData(input(role))) as CloudConfig;
      const script = config.write_files.find((f) => f.path === BOOTSTRAP_PATH);
      assert.ok(script);
      assert.equal(script.permissions, "0755");
      assert.deepEqual(config.runcmd, [[BOOTSTRAP_PATH]]);
      const file = path.join(work, `${role}-bootstrap.sh`);
      fs.writeFileSync(file, script.content);
      const result = tool("shellcheck", ["--severity=style", file]);
      assert.equal(result.status, 0, result.output);
    });

    it(`${role}: carries no address, secret or per-stack value`, () => {
      const text = renderUserData(input(role));
      assert.doesNotMatch(text, /\b10\.\d+\.\d+\.\d+\b/, "no private address: hosts never wait for each other");
      // The Grafana drop-in names the password file (a path, not a secret).
      const withoutPaths = text.split(GRAFANA_ADMIN_PASSWORD_PATH).join("<path>");
      assert.doesNotMatch(withoutPaths, /hooks\.slack\.com|password|BEGIN .*PRIVATE KEY/i);
      assert.doesNotMatch(text, /titan-observability/, "no project or stack name: one user data per role");
    });
  }

  it("mounts the data volume of Prometheus and Grafana before any package writes to it", () => {
    for (const role of ["prometheus", "grafana"] as const) {
      const script = renderBootstrapScript(bootstrapPlan(role));
      const mount = hasDataVolume(role) ? DATA_MOUNTS[role].mountPoint : "";
      assert.ok(script.includes("/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"), role);
      assert.match(
        script,
        /if ! blkid "\$device" >\/dev\/null 2>&1; then\n {2}log "formatting blank data volume \$device"\n {2}mkfs\.ext4/,
      );
      assert.ok(script.indexOf(`mount ${mount}`) < script.indexOf("apt-get update"), "mounted before packages install");
      assert.ok(script.includes(`chown -R ${role}:${role} ${mount}`));
      assert.match(script, new RegExp(`echo "UUID=\\$uuid ${mount} ext4 defaults,nofail 0 2"`));
    }
    assert.throws(() => planOf("prometheus"), /keeps its data on a volume/);
    assert.throws(() => planOf("web", VOLUME), /has no data volume/);
    assert.throws(() => renderBootstrapScript(planOf("grafana", "vol-$(reboot)")), /not an EBS volume id/);
    assert.ok(!renderBootstrapScript(bootstrapPlan("web")).includes("mkfs"));
  });

  it("changes only with the data volume, never with the stack's config", () => {
    assert.notEqual(
      renderUserData({ role: "grafana", dataVolumeId: VOLUME }),
      renderUserData({ role: "grafana", dataVolumeId: "vol-0fedcba9876543210" }),
    );
    assert.equal(renderUserData(input("web")), renderUserData(input("web")));
  });

  it("installs each role's pinned packages exactly, and checks them afterwards", () => {
    const expected = {
      web: ["alloy=1.19.2-1", "prometheus-node-exporter"],
      prometheus: ["prometheus", "prometheus-node-exporter"],
      loki: ["loki=3.7.7", "prometheus-node-exporter"],
      grafana: ["grafana=12.4.3", "prometheus-node-exporter"],
    };
    for (const role of ROLES) {
      const script = renderBootstrapScript(bootstrapPlan(role));
      assert.ok(script.includes(`--no-install-recommends ${expected[role].join(" ")}\n`), role);
      for (const p of bootstrapPlan(role).pinned)
        assert.ok(script.includes(`check_version ${p.package} '${p.aptPin}'`));
      const prefs = cloudConfigFor(input(role)).write_files.find((f) => f.path.startsWith("/etc/apt/preferences.d/"));
      for (const p of bootstrapPlan(role).pinned)
        assert.ok(prefs?.content.includes(`Package: ${p.package}\nPin: version ${p.aptPin}\n`));
    }
    assert.equal(VERSIONS.prometheus.aptPin, "2.42.0+ds-*", "the same Prometheus as the build machine's promtool");
  });

  it("accepts Grafana's repository only with the pinned key fingerprint", () => {
    const script = renderBootstrapScript(bootstrapPlan("grafana"));
    assert.ok(script.includes(`if [[ "$fingerprint" != "${GRAFANA_APT.keyFingerprint}" ]]; then`));
    assert.ok(script.includes(`deb [signed-by=$keyring] https://apt.grafana.com stable main`));
    assert.ok(!renderBootstrapScript(bootstrapPlan("prometheus")).includes("apt.grafana.com"), "Debian packages only");
  });

  it("lets Alloy read the app's logs through the titan group only", () => {
    const script = renderBootstrapScript(bootstrapPlan("web"));
    assert.match(script, /useradd --system --user-group .* titan\n/);
    assert.match(script, /usermod -a -G titan alloy\n/);
    assert.match(
      unitsFor("web").find((u) => u.path.endsWith("/titan.service"))?.content ?? "",
      /^LogsDirectoryMode=0750$/m,
    );
  });

  it("enables and starts every service of the role", () => {
    assert.deepEqual(servicesFor("web"), ["prometheus-node-exporter", "titan", "titan-traffic", "alloy"]);
    assert.deepEqual(servicesFor("grafana"), ["prometheus-node-exporter", "grafana-server"]);
    const script = renderBootstrapScript(bootstrapPlan("web"));
    assert.match(script, /^systemctl enable prometheus-node-exporter titan titan-traffic alloy$/m);
  });

  it("ships the app's logrotate policy on web hosts", () => {
    const logrotate = cloudConfigFor(input("web")).write_files.find((f) => f.path === "/etc/logrotate.d/titan");
    assert.equal(logrotate?.content, fs.readFileSync(path.join(ROOT, "app/packaging/titan.logrotate"), "utf8"));
  });
});

describe("systemd units", () => {
  it("render one directive a line, repeat the repeatable ones and refuse multi-line values", () => {
    const text = renderUnit({
      Unit: { Description: "x" },
      Service: {
        Environment: environment({ A: 'say "hi"', B: "c:\\d" }),
        SystemCallFilter: ["@a", "~@b @c"],
        Restart: "always",
      },
    });
    assert.match(text, /^Environment="A=say \\"hi\\""\nEnvironment="B=c:\\\\d"$/m);
    assert.match(text, /^SystemCallFilter=@a\nSystemCallFilter=~@b @c$/m);
    assert.throws(() => renderUnit({ Unit: { Description: "two\nlines" } }), /cannot span lines/);
  });

  it("restart on failure, from the packaged unit or ours but never both, and are sandboxed", () => {
    // Packaged units: Debian's as installed here, the vendors' as cited in tests/fleet/standins/vendor.ts.
    const packagedRestart: Record<string, string | undefined> = {
      "prometheus-node-exporter.service": /^Restart=(.*)$/m.exec(
        fs.readFileSync("/lib/systemd/system/prometheus-node-exporter.service", "utf8"),
      )?.[1],
      "loki.service": String(VENDOR_PACKAGES.loki.unit.file.Service?.Restart),
      "alloy.service": String(VENDOR_PACKAGES.alloy.unit.file.Service?.Restart),
    };
    for (const role of ROLES) {
      for (const unit of unitsFor(role)) {
        const dropIn = /\/([^/]+)\.d\/[^/]+\.conf$/.exec(unit.path)?.[1];
        if (dropIn) {
          assert.match(packagedRestart[dropIn] ?? "", /^(on-failure|always)$/, `${dropIn} restarts by itself`);
          assert.doesNotMatch(unit.content, /^Restart=/m, `${unit.path}: the packaged unit already restarts`);
        } else {
          assert.match(unit.content, /^Restart=(on-failure|always)$/m, unit.path);
        }
        for (const key of [
          "NoNewPrivileges=yes",
          "ProtectSystem=strict",
          "PrivateTmp=yes",
          "SystemCallFilter=@system-service",
        ]) {
          assert.ok(unit.content.includes(`\n${key}\n`), `${unit.path}: ${key}`);
        }
      }
    }
    assert.equal(HARDENING.CapabilityBoundingSet, "");
  });

  it("give a daemon more than HARDENING only through sandbox(), refusing bad names", () => {
    const s = sandbox({ families: ["AF_NETLINK"], syscalls: ["adjtimex"], overrides: { ProtectClock: false } });
    assert.deepEqual(s.RestrictAddressFamilies, ["AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"]);
    assert.deepEqual(s.SystemCallFilter, [...(HARDENING.SystemCallFilter as string[]), "adjtimex"]);
    assert.equal(s.ProtectClock, false);
    assert.deepEqual(sandbox(), HARDENING);
    assert.throws(() => sandbox({ families: ["netlink"] }), /sandbox families: "netlink" is not an address family/);
    assert.throws(
      () => sandbox({ syscalls: ["adjtimex; rm"] }),
      /sandbox syscalls: "adjtimex; rm" is not a system call/,
    );
    assert.throws(() => sandbox({ overrides: { ProtectClok: false } }), /ProtectClok is not a HARDENING directive/);
  });

  it("let node_exporter, Loki and Alloy list network interfaces (AF_NETLINK), and node_exporter read the clock", () => {
    const dropIn = (role: Role, name: string) =>
      unitsFor(role).find((u) => u.path.includes(`/${name}.service.d/`))?.content ?? "";
    for (const [role, name] of [
      ["web", "prometheus-node-exporter"],
      ["loki", "loki"],
      ["web", "alloy"],
    ] as const) {
      assert.match(dropIn(role, name), /^RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK$/m, name);
    }
    const nodeExporter = dropIn("web", "prometheus-node-exporter");
    assert.match(nodeExporter, /^ProtectClock=no$/m);
    assert.match(
      nodeExporter,
      /^SystemCallFilter=~@privileged .*\nSystemCallFilter=adjtimex$/m,
      "re-allowed after the deny-list",
    );
  });

  it("pass systemd-analyze verify (Titan's units, with the app where this checkout has it)", () => {
    for (const unit of unitsFor("web").filter((u) => !u.path.includes(".d/"))) {
      const local = unit.content.replaceAll(TITAN_APP_DIR, path.join(ROOT, "app"));
      const file = path.join(work, path.basename(unit.path));
      fs.writeFileSync(file, local);
      const result = tool("systemd-analyze", ["verify", file]);
      assert.equal(result.status, 0, `${unit.path}: ${result.output}`);
      assert.equal(result.output.trim(), "", `${unit.path}: ${result.output}`);
    }
  });
});
