/** Host bootstrap: cloud-init schema, shellcheck and systemd-analyze on what the hosts receive. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import YAML from "yaml";
import { hasDataVolume, ROLES, type Role } from "../facts/topology";
import {
  BOOTSTRAP_PATH,
  bootstrapPlan as planOf,
  DATA_DAEMONS,
  DATA_MOUNTS,
  dataMountDropInPath,
  renderBootstrapScript,
} from "../templates/host/bootstrap";
import type { CloudConfig } from "../templates/host/cloudInit";
import { AMAZON_TIME_SYNC, SSHD_DROP_IN_PATH, SSHD_SETTINGS, TIMESYNCD_DROP_IN_PATH } from "../templates/host/baseline";
import { GRAFANA_ADMIN_PASSWORD_PATH } from "../templates/host/grafanaServer";
import { LOKI_CONFIGURED_PATH } from "../templates/loki/config";
import { environment, HARDENING, renderUnit, sandbox } from "../templates/host/systemd";
import { servicesFor, TITAN_APP_DIR, unitsFor } from "../templates/host/units";
import { cloudConfigFor, renderUserData, USER_DATA_LIMIT } from "../templates/host/userData";
import { acceptedPins, GRAFANA_APT, vendorRepository, VERSIONS, type AptRepository } from "../facts/versions";
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
      // The Grafana drop-in names the password file (a path, not a secret); sshd's drop-in turns passwords off.
      const withoutPaths = text
        .split(GRAFANA_ADMIN_PASSWORD_PATH)
        .join("<path>")
        .replace(/^ *(PasswordAuthentication|PermitEmptyPasswords) no$/gm, "");
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
      web: ["alloy=1.21.2-1", "prometheus-node-exporter"],
      prometheus: ["prometheus", "prometheus-node-exporter"],
      loki: ["loki=3.7.8", "prometheus-node-exporter"],
      // Grafana by name: its preferences accept the patch and its security re-issues.
      grafana: ["grafana", "prometheus-node-exporter"],
    };
    for (const role of ROLES) {
      const script = renderBootstrapScript(bootstrapPlan(role));
      assert.ok(script.includes(`--no-install-recommends ${expected[role].join(" ")}\n`), role);
      for (const p of bootstrapPlan(role).pinned)
        assert.ok(
          script.includes(
            `check_version ${p.package} ${acceptedPins(p)
              .map((g) => `'${g}'`)
              .join(" ")}\n`,
          ),
        );
      const prefs = cloudConfigFor(input(role)).write_files.find((f) => f.path.startsWith("/etc/apt/preferences.d/"));
      for (const p of bootstrapPlan(role).pinned)
        for (const pin of acceptedPins(p))
          assert.ok(prefs?.content.includes(`Package: ${p.package}\nPin: version ${pin}\n`), `${p.package} ${pin}`);
    }
    assert.equal(VERSIONS.prometheus.aptPin, "2.42.0+ds-*", "the same Prometheus as the build machine's promtool");
  });

  it("checks Grafana's installed version against the patch and its security re-issues, nothing else", () => {
    const script = renderBootstrapScript(bootstrapPlan("grafana"));
    const fn = /^check_version\(\) \{.*?^\}$/ms.exec(script)?.[0];
    assert.ok(fn, "check_version is defined");
    const call = script.split("\n").find((l) => l.startsWith("check_version grafana "));
    assert.ok(call);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "check-version-"));
    try {
      fs.writeFileSync(path.join(dir, "dpkg-query"), '#!/bin/sh\nprintf %s "$INSTALLED"\n', { mode: 0o755 });
      // A file named like a re-issue in the working directory must not expand the glob.
      fs.writeFileSync(path.join(dir, `${VERSIONS.grafana.aptPin}-07`), "");
      const run = (installed: string) =>
        spawnSync("bash", ["-euo", "pipefail", "-c", `log() { echo "$*"; }\n${fn}\n${call}\necho ACCEPTED`], {
          cwd: dir,
          env: { PATH: `${dir}:${process.env.PATH ?? ""}`, INSTALLED: installed },
          encoding: "utf8",
        });
      const v = VERSIONS.grafana.aptPin;
      for (const ok of [v, `${v}-01`, `${v}-12`, `${v}+security-01`, `${v}+security-02`]) {
        const r = run(ok);
        assert.equal(r.status, 0, `${ok}: ${r.stdout}${r.stderr}`);
        assert.match(r.stdout, new RegExp(`^grafana ${ok.replace(/[.+]/g, "\\$&")}\nACCEPTED\n$`));
      }
      for (const bad of [`${v}-1`, `${v}-001`, `${v}.1`, `${v}0`, `${v}+security-1`, `${v}~rc1`, "12.4.16", "13.0.0"]) {
        const r = run(bad);
        assert.equal(r.status, 1, `${bad} must be refused: ${r.stdout}`);
        assert.match(
          r.stdout,
          new RegExp(`grafana is ${bad.replace(/[.+~]/g, "\\$&")}, pinned ${v.replace(/\./g, "\\.")} `),
        );
        assert.doesNotMatch(r.stdout, /ACCEPTED/);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
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
    assert.deepEqual(servicesFor("web"), [
      "prometheus-node-exporter",
      "titan",
      "titan-traffic",
      "titan-remediation",
      "alloy",
    ]);
    assert.deepEqual(servicesFor("grafana"), ["prometheus-node-exporter", "grafana-server"]);
    const script = renderBootstrapScript(bootstrapPlan("web"));
    assert.match(script, /^systemctl enable prometheus-node-exporter titan titan-traffic titan-remediation alloy$/m);
  });

  it("holds Loki back until the push has written its configuration: a condition, not a mask, and no start at bootstrap", () => {
    const files = cloudConfigFor(input("loki")).write_files;
    const dropIn = files.find((f) => f.path === "/etc/systemd/system/loki.service.d/titan.conf");
    assert.match(dropIn?.content ?? "", new RegExp(`^\\[Unit\\]\nConditionPathExists=${LOKI_CONFIGURED_PATH}$`, "m"));
    // Not the packaged example's path: the package ships /etc/loki/config.yml itself.
    assert.notEqual(LOKI_CONFIGURED_PATH, VENDOR_PACKAGES.loki.config.path);
    const script = renderBootstrapScript(bootstrapPlan("loki"));
    assert.doesNotMatch(script, /^systemctl (re)?start .*\bloki\b/m, "the bootstrap never starts Loki");
    assert.doesNotMatch(script, /mask loki/, "the postinst unmasks: a mask would not hold");
    assert.match(script, /^systemctl enable prometheus-node-exporter loki$/m);
    assert.match(script, /^log "loki: enabled, started by the configuration push"$/m);
    assert.match(script, /^systemctl restart prometheus-node-exporter$/m);
    // Written before the package installs (cloud-init's write_files runs before runcmd).
    assert.ok(files.indexOf(dropIn!) < files.findIndex((f) => f.path === BOOTSTRAP_PATH));
  });

  it("makes each data daemon require its volume's mount, from user data", () => {
    for (const role of ROLES) {
      const files = cloudConfigFor(input(role)).write_files;
      const dropIns = files.filter((f) => f.path.endsWith("/data-volume.conf"));
      if (!hasDataVolume(role)) {
        assert.deepEqual(dropIns, [], role);
        continue;
      }
      assert.equal(dropIns.length, 1, role);
      assert.equal(dropIns[0].path, `/etc/systemd/system/${DATA_DAEMONS[role]}.service.d/data-volume.conf`);
      assert.equal(dropIns[0].path, dataMountDropInPath(role));
      assert.match(
        dropIns[0].content,
        new RegExp(`^\\[Unit\\]\nRequiresMountsFor=${DATA_MOUNTS[role].mountPoint}$`, "m"),
      );
      assert.ok(servicesFor(role).includes(DATA_DAEMONS[role]), `${role} runs ${DATA_DAEMONS[role]}`);
    }
  });

  it("keeps time from the Amazon Time Sync Service and hardens sshd on every host", () => {
    for (const role of ROLES) {
      const files = cloudConfigFor(input(role)).write_files;
      const timesyncd = files.find((f) => f.path === TIMESYNCD_DROP_IN_PATH);
      assert.match(
        timesyncd?.content ?? "",
        new RegExp(`^\\[Time\\]\nNTP=${AMAZON_TIME_SYNC.replaceAll(".", "\\.")}$`, "m"),
      );
      // After the image's own 01_debian_cloud.conf, so ours is read last.
      assert.ok(path.basename(TIMESYNCD_DROP_IN_PATH) > "01_debian_cloud.conf");
      const sshd = files.find((f) => f.path === SSHD_DROP_IN_PATH);
      // Before cloud-init's 50-cloud-init.conf: sshd keeps the first value it reads.
      assert.ok(path.basename(SSHD_DROP_IN_PATH) < "50-cloud-init.conf");
      for (const [k, v] of Object.entries(SSHD_SETTINGS))
        assert.match(sshd?.content ?? "", new RegExp(`^${k} ${v}$`, "m"));
      const script = renderBootstrapScript(bootstrapPlan(role));
      assert.match(script, /^systemctl enable systemd-timesyncd\nsystemctl restart systemd-timesyncd$/m);
      assert.match(script, /^sshd -t\nsystemctl try-reload-or-restart ssh$/m);
    }
    assert.deepEqual(Object.fromEntries(Object.entries(SSHD_SETTINGS).map(([k, v]) => [k.toLowerCase(), v])), {
      permitrootlogin: "no",
      passwordauthentication: "no",
      kbdinteractiveauthentication: "no",
      permitemptypasswords: "no",
      authenticationmethods: "publickey",
      x11forwarding: "no",
      allowagentforwarding: "no",
      allowtcpforwarding: "no",
      allowstreamlocalforwarding: "no",
      permittunnel: "no",
    });
  });

  it("ships the app's logrotate policy on web hosts", () => {
    const logrotate = cloudConfigFor(input("web")).write_files.find((f) => f.path === "/etc/logrotate.d/titan");
    assert.equal(logrotate?.content, fs.readFileSync(path.join(ROOT, "app/packaging/titan.logrotate"), "utf8"));
  });
});

/** A mirror of Grafana's repository as the stack's vendorAptRepository yields it. */
function mirrorOf(settings: Record<string, unknown>): AptRepository {
  const repo = vendorRepository(settings);
  if ("expected" in repo) throw new Error(repo.expected);
  return repo;
}
const MIRROR = mirrorOf({
  uri: "https://nexus.example.com/repository/grafana-apt",
  keyUrl: "https://nexus.example.com/repository/keys/grafana-mirror.asc",
  keyFingerprint: "0123456789ABCDEF0123456789ABCDEF01234567",
  suite: "grafana-stable",
  components: ["main", "extra"],
});
const VENDOR_ROLES = ROLES.filter((r) => bootstrapPlan(r).pinned.some((p) => p.origin === "grafana"));

describe("the vendor repository", () => {
  it("is Grafana's by default, and the same settings as Grafana's render the same bytes", () => {
    assert.deepEqual(VENDOR_ROLES, ["web", "loki", "grafana"]);
    const same = mirrorOf({
      uri: GRAFANA_APT.uri,
      keyUrl: GRAFANA_APT.keyUrl,
      keyFingerprint: GRAFANA_APT.keyFingerprint,
    });
    for (const role of ROLES) {
      const text = renderUserData(input(role));
      assert.equal(renderUserData({ ...input(role), vendorRepository: GRAFANA_APT }), text, role);
      assert.equal(renderUserData({ ...input(role), vendorRepository: same }), text, role);
      if (VENDOR_ROLES.includes(role)) {
        assert.ok(text.includes(`deb [signed-by=$keyring] https://apt.grafana.com stable main" >`), role);
        assert.ok(text.includes(`curl -fsSL --max-time 60 -o "$key" https://apt.grafana.com/gpg.key\n`), role);
      }
    }
  });

  for (const role of ["web", "loki", "grafana"] as const) {
    it(`${role}: a mirror is in the sources line, key download, fingerprint check and preferences, and apt.grafana.com nowhere`, () => {
      const config = cloudConfigFor({ ...input(role), vendorRepository: MIRROR });
      const text = renderUserData({ ...input(role), vendorRepository: MIRROR });
      assert.deepEqual(YAML.parse(text) as CloudConfig, config, "the document is the config");
      const script = config.write_files.find((f) => f.path === BOOTSTRAP_PATH)?.content ?? "";
      assert.ok(
        script.includes(
          `echo "deb [signed-by=$keyring] ${MIRROR.uri} grafana-stable main extra" >/etc/apt/sources.list.d/grafana.list\n`,
        ),
      );
      assert.ok(script.includes(`retry curl -fsSL --max-time 60 -o "$key" ${MIRROR.keyUrl}\n`));
      assert.ok(script.includes(`if [[ "$fingerprint" != "${MIRROR.keyFingerprint}" ]]; then\n`));
      assert.ok(script.includes(`expected ${MIRROR.keyFingerprint}: refusing it"\n    exit 1\n`));
      const prefs = config.write_files.find((f) => f.path.startsWith("/etc/apt/preferences.d/"))?.content ?? "";
      const vendor = bootstrapPlan(role).pinned.filter((p) => p.origin === "grafana");
      assert.equal(vendor.length, 1);
      for (const p of vendor)
        assert.ok(
          prefs.includes(`Explanation: ${p.package} ${p.version} from ${MIRROR.uri} (grafana-stable)\n`),
          prefs,
        );
      assert.doesNotMatch(text, /apt\.grafana\.com|B53AE77BADB630A683046005963FA27710458545/);
      assert.notEqual(text, renderUserData(input(role)), "a mirror change replaces the host (userDataReplaceOnChange)");
    });
  }

  it("never touches the Prometheus host: its user data does not depend on the mirror", () => {
    const plan = planOf("prometheus", VOLUME, MIRROR);
    assert.equal(plan.vendorRepository, undefined, "Debian packages only");
    const text = renderUserData(input("prometheus"));
    assert.equal(renderUserData({ ...input("prometheus"), vendorRepository: MIRROR }), text);
    assert.doesNotMatch(text, /apt\.grafana\.com|signed-by|grafana\.list/);
  });

  it("with a mirror, the bootstrap still passes cloud-init's schema and shellcheck", () => {
    const text = renderUserData({ role: "web", vendorRepository: MIRROR });
    const file = path.join(work, "web-mirror.yaml");
    fs.writeFileSync(file, text);
    const schema = tool("cloud-init", ["schema", "--config-file", file]);
    assert.equal(schema.status, 0, schema.output);
    const script = path.join(work, "web-mirror-bootstrap.sh");
    fs.writeFileSync(script, renderBootstrapScript(planOf("web", undefined, MIRROR)));
    const check = tool("shellcheck", ["--severity=style", script]);
    assert.equal(check.status, 0, check.output);
  });

  it("is refused when malformed, also through the API and never into the script", () => {
    const bad: [Partial<AptRepository>, RegExp][] = [
      [{ uri: "https://mirror.example.com/$(reboot)" }, /vendor APT repository grafana: expected uri to be /],
      [{ keyUrl: "https://mirror.example.com/key.asc; rm -rf /" }, /expected keyUrl \(the ASCII-armored signing key\)/],
      [{ keyFingerprint: "963FA27710458545" }, /expected keyFingerprint to be the signing key's full fingerprint/],
      [{ suite: "stable\nPin: version *" }, /expected suite to be one APT suite name/],
      [{ components: ["main", "contrib non-free"] }, /expected components to be a non-empty list/],
    ];
    for (const [fields, message] of bad) {
      const repo = { ...MIRROR, ...fields };
      assert.throws(() => renderUserData({ role: "grafana", dataVolumeId: VOLUME, vendorRepository: repo }), message);
      assert.throws(() => planOf("web", undefined, repo), message);
    }
  });

  it("the bootstrap takes the mirror's key from a file:// URL with the right fingerprint and refuses any other", () => {
    // The key-fetch block of the rendered script, run as rendered; only the keyring path is
    // moved out of /etc (the one substitution), and apt is not involved.
    const gnupg = fs.mkdtempSync(path.join(work, "gnupg-"));
    const env = { ...process.env, GNUPGHOME: gnupg };
    const gen = spawnSync(
      "gpg",
      [
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        "titan mirror test <mirror@localhost>",
        "ed25519",
        "sign",
        "1d",
      ],
      { env, encoding: "utf8" },
    );
    assert.equal(gen.status, 0, gen.stderr);
    const armored = spawnSync("gpg", ["--batch", "--armor", "--export", "mirror@localhost"], { env, encoding: "utf8" });
    const listed = spawnSync("gpg", ["--batch", "--with-colons", "--list-keys", "mirror@localhost"], {
      env,
      encoding: "utf8",
    });
    spawnSync("gpgconf", ["--kill", "all"], { env });
    const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(listed.stdout)?.[1] ?? "";
    assert.match(fingerprint, /^[0-9A-F]{40}$/);
    const keyFile = path.join(work, "mirror-key.asc");
    fs.writeFileSync(keyFile, armored.stdout);

    const run = (expectedFingerprint: string) => {
      const repo = mirrorOf({
        uri: `file://${work}/mirror`,
        keyUrl: `file://${keyFile}`,
        keyFingerprint: expectedFingerprint,
      });
      const script = renderBootstrapScript(planOf("loki", VOLUME, repo));
      const header = script.slice(0, script.indexOf("\n\n", script.indexOf("retry() {")));
      const start = script.indexOf("keyring=");
      const block = script.slice(start, script.indexOf('\necho "deb ', start));
      const keyring = path.join(fs.mkdtempSync(path.join(work, "keyring-")), "grafana.gpg");
      assert.ok(block.startsWith(`keyring=${GRAFANA_APT.keyringPath}\n`));
      const fragment = `${header}\nkeyring=${keyring}\n${block.slice(block.indexOf("\n") + 1)}\n`;
      const result = spawnSync("bash", ["-c", fragment], { env: { ...env, HOME: work }, encoding: "utf8" });
      return { ...result, keyring };
    };
    const good = run(fingerprint);
    assert.equal(good.status, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /titan-bootstrap: fetching the vendor mirror's APT signing key/);
    assert.ok(fs.statSync(good.keyring).size > 0, "the dearmored key is in the keyring");

    const other = "0123456789ABCDEF0123456789ABCDEF01234567";
    const refused = run(other);
    assert.equal(refused.status, 1, refused.stdout + refused.stderr);
    assert.ok(
      refused.stdout.includes(`vendor mirror APT key has fingerprint '${fingerprint}', expected ${other}: refusing it`),
      refused.stdout,
    );
    assert.ok(!fs.existsSync(refused.keyring), "no keyring from a refused key");
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
      "prometheus.service": /^Restart=(.*)$/m.exec(
        fs.readFileSync("/lib/systemd/system/prometheus.service", "utf8"),
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
        } else if (unit.content.includes("\nType=oneshot\n")) {
          // Started on demand (the free-disk worker): a failed run is the caller's to report.
          assert.doesNotMatch(unit.content, /^Restart=/m, unit.path);
        } else {
          assert.match(unit.content, /^Restart=(on-failure|always)$/m, unit.path);
        }
        // The free-disk worker removes the disk-fill demo's files from the real /var/tmp.
        const privateTmp = unit.path.endsWith("/titan-free-disk.service") ? "PrivateTmp=no" : "PrivateTmp=yes";
        for (const key of [
          "NoNewPrivileges=yes",
          "ProtectSystem=strict",
          privateTmp,
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

  it("match docs/architecture.md's sandbox claims: the daemons without a sandbox drop-in are named as such", () => {
    const readme = fs.readFileSync(path.join(ROOT, "docs", "architecture.md"), "utf8");
    const sandboxed = new Set(
      ROLES.flatMap((r) => unitsFor(r))
        .filter((u) => u.content.includes("\nProtectSystem=strict\n"))
        .map((u) => /\/([^/]+)\.service(\.d\/[^/]+\.conf)?$/.exec(u.path)?.[1]),
    );
    const bare = [...new Set(ROLES.flatMap((r) => servicesFor(r)))].filter((s) => !sandboxed.has(s));
    assert.deepEqual(bare, ["grafana-server"]);
    assert.match(readme, /\*\*Grafana has no\s+sandbox drop-in\*\*/);
    assert.match(readme, /own units, and drop-ins for node_exporter, Prometheus, Loki and Alloy\./);
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
