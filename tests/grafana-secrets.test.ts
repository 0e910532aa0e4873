/**
 * A rotated Grafana secret is applied (issue 17, item 1): the push's own install script, as
 * pipeline.ts renders it for the Grafana host, runs under bash and under dash with sudo,
 * systemctl, curl and the grafana binary stubbed, against a stand-in root. Each run's
 * `installed:` line is its `$changed`; the stubs record what restarted and what the CLI got.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { GRAFANA_ADMIN_USER_RECORD, GRAFANA_STDIN_ORDER } from "../infra/delivery/grafanaSecrets";
import { GRAFANA_PUSH } from "../infra/delivery/pipeline";
import { installScript } from "../infra/delivery/scripts";
import {
  GRAFANA_ADMIN_PASSWORD_PATH,
  GRAFANA_ENV_PATH,
  GRAFANA_METRICS_PASSWORD_PATH,
  GRAFANA_PACKAGE_PATHS,
  GRAFANA_SECRETS_ENV_PATH,
} from "../templates/host/grafanaServer";
import { MOCK_PASSWORD } from "./support/mockProgram";
import { one, snapshot, update, type TimedSnapshot } from "./support/snapshots";

const STUBS: Record<string, string> = {
  // Runs the command as this user; records every argv, so a secret on a command line shows.
  sudo: [
    "#!/bin/sh",
    'printf "%s\\n" "sudo $*" >>"$STUB_LOG/argv"',
    'if [ "$1" = -u ]; then shift 2; fi',
    'case "$1" in',
    '  chown) echo "$2" >"$3.owner" ;;',
    '  mv) mv "$2" "$3" && if [ -e "$2.owner" ]; then mv "$2.owner" "$3.owner"; fi ;;',
    '  install) eval "last=\\${$#}"; mkdir -p "$last" ;;',
    '  *) exec "$@" ;;',
    "esac",
  ].join("\n"),
  systemctl: ["#!/bin/sh", 'printf "%s\\n" "$*" >>"$STUB_LOG/systemctl"'].join("\n"),
  // Grafana answers unless a test says it does not (STUB_CURL_FAIL); the wait loop's pauses are instant.
  curl: '#!/bin/sh\n[ -z "${STUB_CURL_FAIL:-}" ]',
  sleep: "#!/bin/sh\nexit 0",
  grafana: [
    "#!/bin/sh",
    'printf "%s\\n" "grafana $*" >>"$STUB_LOG/argv"',
    'printf "%s\\n" "$*" >>"$STUB_LOG/grafana"',
    'cat >"$STUB_LOG/reset-stdin"',
  ].join("\n"),
};

interface Run {
  /** `$changed` as the script's last line reports it: host paths, in order. */
  readonly changed: string[];
  readonly systemctl: string[];
  readonly cli: string[];
  readonly resetStdin?: string;
  readonly argv: string;
  readonly stderr: string;
}

describe("a rotated Grafana secret is applied", () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "grafana-rotation-"));
  after(() => fs.rmSync(work, { recursive: true, force: true }));
  const bin = path.join(work, "bin");
  fs.mkdirSync(bin);
  for (const [name, body] of Object.entries(STUBS))
    fs.writeFileSync(path.join(bin, name), `${body}\n`, { mode: 0o755 });

  /** The Grafana push's install script (no rendered files: only the secrets and what follows). */
  const script = (root: string, staging: string) =>
    installScript({ staging, files: [], ...GRAFANA_PUSH })
      .split("/etc/grafana")
      .join(`${root}/etc/grafana`)
      .split(GRAFANA_PACKAGE_PATHS.data)
      .join(`${root}${GRAFANA_PACKAGE_PATHS.data}`);

  function push(
    shell: string,
    root: string,
    secrets: Record<(typeof GRAFANA_STDIN_ORDER)[number], string>,
    adminUser = "ops-lead",
    status = 0,
    env: Record<string, string> = {},
  ): Run {
    // The settings file the push places before these lines run, with the configured admin.
    fs.mkdirSync(path.join(root, path.dirname(GRAFANA_ENV_PATH)), { recursive: true });
    fs.mkdirSync(path.join(root, GRAFANA_PACKAGE_PATHS.data), { recursive: true });
    fs.writeFileSync(path.join(root, GRAFANA_ENV_PATH), `GF_SECURITY_ADMIN_USER="${adminUser}"\n`);
    const log = path.join(root, "log");
    fs.rmSync(log, { recursive: true, force: true });
    fs.mkdirSync(log, { recursive: true });
    const staging = path.join(root, "titan-staging", "0123456789abcdef");
    fs.mkdirSync(staging, { recursive: true });
    const stdin = `${GRAFANA_STDIN_ORDER.map((k) => secrets[k]).join("\n")}\n`;
    const result = spawnSync(shell, ["-c", script(root, staging)], {
      input: stdin,
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}`, STUB_LOG: log, ...env },
    });
    assert.equal(result.status, status, `${shell}: ${result.stderr}`);
    if (status !== 0) return { changed: [], systemctl: [], cli: [], argv: "", stderr: result.stderr };
    const installed = result.stdout.split("\n").find((l) => l.startsWith("installed:"));
    assert.ok(installed, result.stdout);
    const read = (f: string) => (fs.existsSync(path.join(log, f)) ? fs.readFileSync(path.join(log, f), "utf8") : "");
    const lines = (f: string) => read(f).split("\n").filter(Boolean);
    return {
      changed:
        installed === "installed: nothing changed"
          ? []
          : installed
              .slice("installed:".length)
              .trim()
              .split(/\s+/)
              .map((p) => p.slice(root.length)),
      systemctl: lines("systemctl"),
      cli: lines("grafana"),
      resetStdin: fs.existsSync(path.join(log, "reset-stdin")) ? read("reset-stdin") : undefined,
      argv: read("argv"),
      stderr: result.stderr,
    };
  }

  for (const shell of ["bash", "dash"]) {
    it(`under ${shell}: lists every changed secret file, restarts Grafana for a new webhook, resets a new password`, () => {
      const root = fs.mkdtempSync(path.join(work, `${shell}-`));
      const first = {
        adminPassword: "first-password-0123",
        secretKey: "key-0123456789",
        slackWebhookUrl: "https://hooks.slack.com/services/T/B/one",
        metricsPassword: "metrics-password-0123",
        remediationHmacSecret: "hmac0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
      };
      const values = Object.values(first);

      const created = push(shell, root, first);
      assert.deepEqual(created.changed, [
        GRAFANA_ADMIN_PASSWORD_PATH,
        GRAFANA_METRICS_PASSWORD_PATH,
        GRAFANA_SECRETS_ENV_PATH,
      ]);
      assert.deepEqual(created.systemctl, ["restart grafana-server"]);
      assert.equal(created.resetStdin, first.adminPassword);

      const again = push(shell, root, first);
      assert.deepEqual(again.changed, [], "nothing changed, nothing listed");
      assert.deepEqual(again.systemctl, [], "and nothing restarted");
      assert.deepEqual(again.cli, [], "and no reset");

      const rotatedHook = { ...first, slackWebhookUrl: "https://hooks.slack.com/services/T/B/two" };
      const hook = push(shell, root, rotatedHook);
      assert.deepEqual(hook.changed, [GRAFANA_SECRETS_ENV_PATH]);
      assert.deepEqual(hook.systemctl, ["restart grafana-server"], "Grafana reads its environment only at start");
      assert.deepEqual(hook.cli, []);
      assert.match(
        fs.readFileSync(root + GRAFANA_SECRETS_ENV_PATH, "utf8"),
        /=https:\/\/hooks\.slack\.com\/services\/T\/B\/two\n/,
      );

      const rotatedPassword = { ...rotatedHook, adminPassword: "second-password-4567" };
      const password = push(shell, root, rotatedPassword);
      assert.deepEqual(password.changed, [GRAFANA_ADMIN_PASSWORD_PATH]);
      assert.equal(password.cli.length, 1);
      assert.match(
        password.cli[0],
        /^cli --homepath \S+ --config \S+ --configOverrides .* admin reset-admin-password --password-from-stdin$/,
      );
      assert.equal(password.resetStdin, rotatedPassword.adminPassword);
      assert.equal(fs.readFileSync(root + GRAFANA_ADMIN_PASSWORD_PATH, "utf8"), rotatedPassword.adminPassword);

      const rotatedHmac = {
        ...rotatedPassword,
        remediationHmacSecret: "hmac9876543210ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrq",
      };
      const hmac = push(shell, root, rotatedHmac);
      assert.deepEqual(hmac.changed, [GRAFANA_SECRETS_ENV_PATH]);
      assert.deepEqual(hmac.systemctl, ["restart grafana-server"], "the contact points sign with the new key");
      const env = () => fs.readFileSync(root + GRAFANA_SECRETS_ENV_PATH, "utf8");
      assert.ok(env().includes(`\nTITAN_REMEDIATION_HMAC_SECRET=${rotatedHmac.remediationHmacSecret}\n`), env());

      // remediation = off: no contact point signs, so no key in Grafana's environment.
      const off = push(shell, root, { ...rotatedHmac, remediationHmacSecret: "" });
      assert.deepEqual(off.changed, [GRAFANA_SECRETS_ENV_PATH]);
      assert.ok(!env().includes("TITAN_REMEDIATION_HMAC_SECRET"), env());

      for (const run of [created, again, hook, password, hmac, off])
        for (const secret of [
          ...values,
          rotatedHook.slackWebhookUrl,
          rotatedPassword.adminPassword,
          rotatedHmac.remediationHmacSecret,
        ])
          assert.ok(!run.argv.includes(secret), `a secret on a command line: ${run.argv}`);
    });
  }

  for (const shell of ["bash", "dash"]) {
    it(`under ${shell}: a push that stopped before Grafana answered is finished by the next one (restart and reset)`, () => {
      const root = fs.mkdtempSync(path.join(work, `${shell}-retry-`));
      const secrets = {
        adminPassword: "first-password-0123",
        secretKey: "key-0123456789",
        slackWebhookUrl: "",
        metricsPassword: "metrics-password-0123",
        remediationHmacSecret: "",
      };
      push(shell, root, secrets);
      const rotated = { ...secrets, adminPassword: "second-password-4567" };
      const stopped = push(shell, root, rotated, "ops-lead", 1, { STUB_CURL_FAIL: "1" });
      assert.match(stopped.stderr, /grafana-server is not answering/);
      assert.equal(fs.existsSync(path.join(root, "log", "grafana")), false, "no reset while Grafana is down");
      // The next `up` runs the failed install again with the same secrets: every file compares
      // equal now, yet the restart and the reset the first run never finished must happen.
      const retried = push(shell, root, rotated);
      assert.deepEqual(retried.changed, [GRAFANA_ADMIN_PASSWORD_PATH]);
      assert.deepEqual(retried.systemctl, ["restart grafana-server"]);
      assert.equal(retried.resetStdin, rotated.adminPassword);
      const done = push(shell, root, rotated);
      assert.deepEqual(done.changed, [], "once finished, nothing is left pending");
      assert.deepEqual(done.systemctl, []);
    });
  }

  for (const shell of ["bash", "dash"]) {
    it(`under ${shell}: refuses a renamed admin on a running Grafana, before anything restarts`, () => {
      const root = fs.mkdtempSync(path.join(work, `${shell}-rename-`));
      const secrets = {
        adminPassword: "first-password-0123",
        secretKey: "key-0123456789",
        slackWebhookUrl: "",
        metricsPassword: "metrics-password-0123",
        remediationHmacSecret: "",
      };
      const first = push(shell, root, secrets, "ops-lead");
      assert.deepEqual(first.systemctl, ["restart grafana-server"]);
      assert.equal(
        fs.readFileSync(root + GRAFANA_ADMIN_USER_RECORD, "utf8"),
        "ops-lead",
        "recorded once Grafana answers",
      );
      const renamed = push(shell, root, { ...secrets, adminPassword: "second-password-4567" }, "new-lead", 1);
      assert.match(renamed.stderr, /grafanaAdminUser = "new-lead": expected "ops-lead"/);
      assert.equal(fs.existsSync(path.join(root, "log", "systemctl")), false, "nothing restarted");
      assert.equal(
        fs.readFileSync(root + GRAFANA_ADMIN_PASSWORD_PATH, "utf8"),
        secrets.adminPassword,
        "no secret written",
      );
      const back = push(shell, root, secrets, "ops-lead");
      assert.deepEqual(back.changed, [], "set back: the push goes through, nothing to do");
    });
  }
});

describe("grafanaAdminPasswordRotation", () => {
  const REMOTE = "command:remote:Command";
  const PASSWORD = "random:index/randomPassword:RandomPassword";
  const stdinOf = (snap: TimedSnapshot) => {
    const stdin = one(snap, REMOTE, "grafana-push-install").inputs.stdin as { value: string };
    return stdin.value.split("\n")[GRAFANA_STDIN_ORDER.indexOf("adminPassword")];
  };

  it("set or raised: a new password, which only the Grafana push delivers (and resets)", async () => {
    const snap = await update({}, { grafanaAdminPasswordRotation: "1" });
    assert.equal(snap.error, undefined, snap.error);
    const password = one(snap, PASSWORD, "grafana-admin-password");
    assert.equal(password.action, "replace");
    assert.deepEqual(password.replacedBecause, ["keepers"]);
    assert.notEqual(stdinOf(snap), MOCK_PASSWORD);
    assert.equal(stdinOf(snap), (password.state as { result: string }).result);
    const pushes = snap.resources.filter((r) => r.type === REMOTE && r.name.endsWith("-push-install"));
    assert.deepEqual(
      pushes.filter((r) => r.action !== "same").map((r) => r.name),
      ["grafana-push-install"],
    );
  });

  it("raised: replaced again by its keeper", async () => {
    const snap = await update({ grafanaAdminPasswordRotation: "1" }, { grafanaAdminPasswordRotation: "2" });
    const password = one(snap, PASSWORD, "grafana-admin-password");
    assert.deepEqual(password.replacedBecause, ["keepers.rotation"]);
    assert.equal(one(snap, REMOTE, "grafana-push-install").action, "replace");
  });

  it("unchanged: the same password, and no push runs for it", async () => {
    const snap = await update({ grafanaAdminPasswordRotation: "3" }, { grafanaAdminPasswordRotation: "3" });
    assert.equal(snap.error, undefined, snap.error);
    assert.equal(one(snap, PASSWORD, "grafana-admin-password").action, "same");
    assert.equal(one(snap, REMOTE, "grafana-push-install").action, "same");
  });

  it("refuses a value that is not a whole number from 1, naming the key", async () => {
    const snap = await snapshot({ grafanaAdminPasswordRotation: "0" });
    assert.match(snap.error ?? "", /grafanaAdminPasswordRotation/);
  });
});
