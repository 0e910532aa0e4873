/**
 * The remediation agent on the web host (issue 20): its units, the polkit rule that is its only
 * privilege, its settings file, and its HMAC secret's way from the program to the host (stdin of
 * the push, never user data, never a command line or a rendered file).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as vm from "node:vm";
import { after, before, describe, it } from "node:test";
import { GRAFANA_STDIN_ORDER } from "../infra/delivery/grafanaSecrets";
import { WEB_PUSH } from "../infra/delivery/pipeline";
import { REMEDIATION_SECRET_LINES } from "../infra/delivery/remediationSecrets";
import { installScript } from "../infra/delivery/scripts";
import { physicalName } from "../facts/naming";
import { hasDataVolume, SERVICES } from "../facts/topology";
import { bootstrapPlan, renderBootstrapScript } from "../templates/host/bootstrap";
import {
  MANAGE_UNITS_ACTION,
  POLKIT_RULE_PATH,
  REMEDIATION_GRANTS,
  renderAgentEnv,
  renderPolkitRule,
} from "../templates/host/remediation";
import {
  APP_UNIT,
  FREE_DISK_UNIT,
  REMEDIATION_ENV_PATH,
  REMEDIATION_SECRET_PATH,
  REMEDIATION_USER,
  servicesFor,
  TITAN_APP_DIR,
  unitsFor,
} from "../templates/host/units";
import { renderHostFiles } from "../templates/index";
import { addressOf } from "../templates/types";
import { parseUnit, serviceDirective } from "./e2e/systemdUnit";
import { testContext } from "./support/render";
import { isSecretValue, one, plainInputs, snapshot, update, type TimedSnapshot } from "./support/snapshots";

const unitText = (name: string) => {
  const unit = unitsFor("web").find((u) => u.path === `/etc/systemd/system/${name}`);
  assert.ok(unit, name);
  return unit.content;
};

describe("the remediation units", () => {
  it("the agent: its own user, no capability, its secret as a credential, started once the push delivered it", () => {
    const text = unitText("titan-remediation.service");
    const unit = parseUnit(text);
    const one = (key: string) => serviceDirective(unit, key);
    assert.equal(one("User"), REMEDIATION_USER);
    assert.equal(one("Group"), REMEDIATION_USER);
    assert.equal(one("ExecStart"), "/usr/bin/python3 -m remediation.agent");
    assert.equal(one("EnvironmentFile"), REMEDIATION_ENV_PATH);
    assert.equal(one("LoadCredential"), `hmac-secret:${REMEDIATION_SECRET_PATH}`);
    assert.equal(one("StateDirectory"), "titan-remediation");
    assert.equal(one("Restart"), "on-failure");
    assert.equal(one("CapabilityBoundingSet"), "");
    assert.equal(one("NoNewPrivileges"), "yes");
    // The bus socket is AF_UNIX: systemctl reaches systemd (and polkit) through it.
    assert.match(one("RestrictAddressFamilies"), /\bAF_UNIX\b/);
    for (const p of ["/opt/titan/app/remediation/agent.py", REMEDIATION_SECRET_PATH])
      assert.match(text, new RegExp(`^ConditionPathExists=${p}$`, "m"));
    assert.match(text, /^WantedBy=multi-user\.target$/m);
    assert.ok(servicesFor("web").includes("titan-remediation"), "enabled by the bootstrap");
  });

  it("the free-disk worker: a root oneshot, never enabled, writing only the app's logs and /var/tmp", () => {
    const text = unitText(FREE_DISK_UNIT);
    const unit = parseUnit(text);
    const one = (key: string) => serviceDirective(unit, key);
    assert.equal(one("Type"), "oneshot");
    assert.doesNotMatch(text, /^User=/m, "root");
    assert.equal(one("ExecStart"), "/usr/bin/python3 -m remediation.freedisk");
    assert.equal(one("StateDirectory"), "titan-free-disk");
    assert.equal(one("PrivateTmp"), "no", "the demo writes the real /var/tmp");
    assert.deepEqual(
      text.split("\n").filter((l) => l.startsWith("ReadWritePaths=")),
      ["ReadWritePaths=/var/log/titan", "ReadWritePaths=/var/tmp"],
    );
    assert.deepEqual(one("CapabilityBoundingSet").split(" ").sort(), [
      "CAP_CHOWN",
      "CAP_DAC_OVERRIDE",
      "CAP_FOWNER",
      "CAP_KILL",
      "CAP_SYS_PTRACE",
    ]);
    assert.doesNotMatch(text, /^\[Install\]/m, "started by the agent only");
    assert.ok(!servicesFor("web").includes("titan-free-disk"));
  });

  it("the bootstrap installs polkitd and dbus and creates the agent's user without a login or home", () => {
    const plan = bootstrapPlan("web");
    for (const p of ["polkitd", "dbus"]) assert.ok(plan.extras.includes(p), p);
    const script = renderBootstrapScript(plan);
    assert.match(
      script,
      /^id -u titan-remediation >\/dev\/null 2>&1 \|\| useradd --system --user-group --no-create-home --home-dir \/nonexistent --shell \/usr\/sbin\/nologin titan-remediation$/m,
    );
    for (const role of ["prometheus", "loki", "grafana"] as const)
      assert.doesNotMatch(
        renderBootstrapScript(bootstrapPlan(role, hasDataVolume(role) ? "vol-0123456789abcdef0" : undefined)),
        /titan-remediation|polkitd/,
      );
  });
});

/** The rule evaluated as polkitd 122 does: a global `polkit`, Action.lookup over `_detail_` keys (src/polkitbackend/init.js). */
function evaluateRule(rule: string) {
  const rules: ((action: unknown, subject: unknown) => unknown)[] = [];
  const polkit = {
    Result: { NO: "no", YES: "yes", AUTH_SELF: "auth_self", AUTH_ADMIN: "auth_admin" },
    addRule: (f: (action: unknown, subject: unknown) => unknown) => rules.push(f),
    addAdminRule: () => assert.fail("the rule must not change who counts as an administrator"),
    log: () => undefined,
    spawn: () => assert.fail("the rule must not run programs"),
  };
  vm.runInNewContext(rule, { polkit }, { filename: POLKIT_RULE_PATH });
  assert.equal(rules.length, 1);
  return (user: string, id: string, details: Record<string, string>) => {
    const action = { id, lookup: (name: string) => details[name] };
    const subject = { user, groups: [user], local: false, active: false, isInGroup: () => false };
    return rules[0](action, subject);
  };
}

describe("the polkit rule", () => {
  const rule = renderPolkitRule();
  const decide = evaluateRule(rule);
  const ask = (user: string, unit: string, verb: string) => decide(user, MANAGE_UNITS_ACTION, { unit, verb });

  it("lets the agent restart the app and start the free-disk worker", () => {
    assert.equal(ask(REMEDIATION_USER, APP_UNIT, "restart"), "yes");
    assert.equal(ask(REMEDIATION_USER, FREE_DISK_UNIT, "start"), "yes");
    assert.deepEqual(REMEDIATION_GRANTS, [
      { unit: "titan.service", verb: "restart" },
      { unit: "titan-free-disk.service", verb: "start" },
    ]);
  });

  it("refuses the agent everything else outright: other verbs, units, actions, missing details", () => {
    const denied: [string, string][] = [
      [APP_UNIT, "start"],
      [APP_UNIT, "stop"],
      [APP_UNIT, "reload"],
      [APP_UNIT, "reload-or-restart"],
      [APP_UNIT, "try-restart"],
      [APP_UNIT, "kill"],
      [APP_UNIT, "freeze"],
      [FREE_DISK_UNIT, "restart"],
      [FREE_DISK_UNIT, "stop"],
      ["titan-traffic.service", "restart"],
      ["titan-remediation.service", "restart"],
      ["ssh.service", "restart"],
      ["titan", "restart"],
      ["TITAN.SERVICE", "restart"],
    ];
    for (const [unit, verb] of denied) assert.equal(ask(REMEDIATION_USER, unit, verb), "no", `${verb} ${unit}`);
    assert.equal(decide(REMEDIATION_USER, MANAGE_UNITS_ACTION, {}), "no", "no details (enable, daemon-reload)");
    for (const id of [
      "org.freedesktop.systemd1.manage-unit-files",
      "org.freedesktop.systemd1.reload-daemon",
      "org.freedesktop.login1.reboot",
      "org.freedesktop.policykit.exec",
    ])
      assert.equal(decide(REMEDIATION_USER, id, { unit: APP_UNIT, verb: "restart" }), "no", id);
  });

  it("leaves every other user to the other rules", () => {
    for (const user of ["titan", "root", "admin", "titan-remediation2", "polkitd"])
      assert.equal(ask(user, APP_UNIT, "restart"), undefined, user);
  });

  it("is plain ES5 for polkitd's duktape, and reaches the web host with the push, which restarts nothing for it", () => {
    assert.doesNotMatch(rule, /\b(let|const|class)\b|=>|`/);
    const file = renderHostFiles(
      testContext(),
      testContext().plan.hosts.find((h) => h.role === "web")!,
      {
        slackWebhookConfigured: false,
      },
    ).find((f) => f.path === POLKIT_RULE_PATH);
    assert.deepEqual(file && { content: file.content, mode: file.mode, owner: file.owner }, {
      content: rule,
      mode: 0o644,
      owner: "root",
    });
    assert.ok(POLKIT_RULE_PATH.endsWith(".rules"), "polkitd reads and watches *.rules only");
    assert.ok(!WEB_PUSH.actions.some((a) => POLKIT_RULE_PATH.startsWith(a.prefix)));
  });
});

/**
 * The rendered rule under this machine's own polkitd (Debian 12's 122, the web hosts' package),
 * in a private mount namespace: a scratch system bus on /run/dbus, the rules directory replaced
 * by a scratch one, and the agent's user added to a copy of /etc/passwd. pkcheck asks polkitd
 * about processes of that user and of nobody with the details systemd passes; it exits 0 when
 * authorized, 1 when not, 2 when authentication would be needed (polkit's pkcheck(1)). The rule
 * is placed while polkitd runs, as the push does, so its reload is proven too.
 */
const POLKIT_PROOF = String.raw`
set -eu
rule=$1
W=$(mktemp -d /tmp/titan-polkit.XXXXXX)
pids=""
trap 'kill $pids 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p /run/dbus "$W/run-dbus" "$W/rules"
mount --bind "$W/run-dbus" /run/dbus
mount --bind "$W/rules" /etc/polkit-1/rules.d
cp /etc/passwd /etc/group "$W/"
echo "${REMEDIATION_USER}:x:64990:64990::/nonexistent:/usr/sbin/nologin" >>"$W/passwd"
echo "${REMEDIATION_USER}:x:64990:" >>"$W/group"
mount --bind "$W/passwd" /etc/passwd
mount --bind "$W/group" /etc/group
dbus-daemon --system --fork --print-pid=1 >"$W/dbus.pid"
pids="$pids $(cat "$W/dbus.pid")"
/usr/lib/polkit-1/polkitd --no-debug >"$W/polkitd.log" 2>&1 &
pids="$pids $!"
up=''
for _ in $(seq 200); do
  if dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.PolicyKit1 2>/dev/null | grep -q true; then up=1; break; fi
  sleep 0.05
done
[ -n "$up" ] || { echo "polkitd did not come up:" >&2; cat "$W/polkitd.log" >&2; exit 1; }
setpriv --reuid=64990 --regid=64990 --clear-groups sleep 120 >/dev/null 2>&1 &
agent=$!
setpriv --reuid=65534 --regid=65534 --clear-groups sleep 120 >/dev/null 2>&1 &
other=$!
pids="$pids $agent $other"
for p in $agent $other; do
  for _ in $(seq 200); do [ "$(readlink /proc/$p/exe)" = /usr/bin/sleep ] && break; sleep 0.05; done
done
ask() { # pid action unit verb
  rc=0
  pkcheck --action-id "$2" --process "$1" --detail unit "$3" --detail verb "$4" >/dev/null 2>&1 || rc=$?
  echo "$rc"
}
echo "before $(ask $agent ${MANAGE_UNITS_ACTION} ${APP_UNIT} restart)"
# Placed as the push places a file; polkitd sees the new .rules file and reloads by itself.
install -D -o root -g root -m 0644 "$rule" "$W/rules/50-titan-remediation.rules"
for _ in $(seq 200); do [ "$(ask $agent ${MANAGE_UNITS_ACTION} ${APP_UNIT} restart)" = 0 ] && break; sleep 0.05; done
while read -r who action unit verb; do
  [ "$who" = agent ] && pid=$agent || pid=$other
  echo "$who $action $unit $verb $(ask $pid "$action" "$unit" "$verb")"
done
`;

describe("the polkit rule under polkitd 122", () => {
  it("grants the agent exactly its two jobs, refuses it the rest, leaves others to authentication; reloaded without a restart", () => {
    assert.equal(process.getuid?.(), 0, "polkitd, mounts and pkcheck for other users' processes need root");
    for (const tool of ["/usr/bin/unshare", "/usr/bin/dbus-daemon", "/usr/lib/polkit-1/polkitd", "/usr/bin/pkcheck"])
      assert.ok(
        fs.existsSync(tool),
        `${tool} is missing: install dbus-daemon and polkitd (scripts/debian-packages.txt)`,
      );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "titan-polkit-rule-"));
    try {
      const rule = path.join(dir, "rule");
      fs.writeFileSync(rule, renderPolkitRule());
      const cases = [
        ["agent", MANAGE_UNITS_ACTION, APP_UNIT, "restart", "0"],
        ["agent", MANAGE_UNITS_ACTION, FREE_DISK_UNIT, "start", "0"],
        ["agent", MANAGE_UNITS_ACTION, APP_UNIT, "stop", "1"],
        ["agent", MANAGE_UNITS_ACTION, APP_UNIT, "start", "1"],
        ["agent", MANAGE_UNITS_ACTION, APP_UNIT, "reload-or-restart", "1"],
        ["agent", MANAGE_UNITS_ACTION, FREE_DISK_UNIT, "restart", "1"],
        ["agent", MANAGE_UNITS_ACTION, "ssh.service", "restart", "1"],
        ["agent", MANAGE_UNITS_ACTION, "titan-remediation.service", "restart", "1"],
        ["agent", "org.freedesktop.systemd1.manage-unit-files", APP_UNIT, "restart", "1"],
        ["agent", "org.freedesktop.login1.reboot", APP_UNIT, "restart", "1"],
        ["other", MANAGE_UNITS_ACTION, APP_UNIT, "restart", "2"],
        ["other", MANAGE_UNITS_ACTION, FREE_DISK_UNIT, "start", "2"],
      ];
      const result = spawnSync(
        "unshare",
        ["-m", "--propagation", "private", "bash", "-c", POLKIT_PROOF, "proof", rule],
        {
          input: `${cases.map((c) => c.slice(0, 4).join(" ")).join("\n")}\n`,
          encoding: "utf8",
          timeout: 120_000,
        },
      );
      assert.equal(result.status, 0, `${result.stderr}\n${result.stdout}`);
      const lines = result.stdout.trim().split("\n");
      assert.equal(lines[0], "before 2", "without the rule, the agent's user would need authentication");
      assert.deepEqual(
        lines.slice(1),
        cases.map((c) => c.join(" ")),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("agent.env", () => {
  const envOf = (overrides: Record<string, string> = {}) => {
    const ctx = testContext(overrides);
    return ctx.plan.hosts
      .filter((h) => h.role === "web")
      .map((host) => {
        const file = renderHostFiles(ctx, host, { slackWebhookConfigured: false }).find(
          (f) => f.path === REMEDIATION_ENV_PATH,
        );
        assert.ok(file, host.name);
        const vars = Object.fromEntries(
          file.content
            .split("\n")
            .filter((l) => l && !l.startsWith("#"))
            .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
        );
        return { ctx, host, file, vars };
      });
  };

  it("names each web host's own physical name, Grafana's address, the ports and the headers; no secret", () => {
    const hosts = envOf({ webCount: "2" });
    assert.equal(hosts.length, 2);
    for (const { ctx, host, file, vars } of hosts) {
      assert.deepEqual(vars, {
        TITAN_REMEDIATION_MODE: "on",
        TITAN_REMEDIATION_HOST: physicalName(ctx.config, host.name),
        TITAN_REMEDIATION_LISTEN: `0.0.0.0:${SERVICES.remediation.port}`,
        TITAN_REMEDIATION_METRICS_LISTEN: `0.0.0.0:${SERVICES.remediationMetrics.port}`,
        TITAN_REMEDIATION_ALLOWED_SOURCES: addressOf(ctx.plan, "grafana"),
        TITAN_REMEDIATION_SIGNATURE_HEADER: "X-Grafana-Alerting-Signature",
        TITAN_REMEDIATION_TIMESTAMP_HEADER: "X-Grafana-Alerting-Timestamp",
        TITAN_REMEDIATION_MAX_SKEW_SECONDS: "300",
        TITAN_REMEDIATION_APP_URL: `http://127.0.0.1:${SERVICES.titan.port}`,
      });
      assert.deepEqual([file.mode, file.owner, file.group], [0o644, "root", "root"]);
      assert.doesNotMatch(file.content, /SECRET/);
    }
    assert.notEqual(hosts[0].vars.TITAN_REMEDIATION_HOST, hosts[1].vars.TITAN_REMEDIATION_HOST);
  });

  it("follows the remediation key; off keeps the agent enabled, refusing every action", () => {
    for (const mode of ["on", "dry-run", "off"])
      for (const { vars } of envOf({ remediation: mode })) assert.equal(vars.TITAN_REMEDIATION_MODE, mode);
    assert.ok(servicesFor("web").includes("titan-remediation"));
  });

  it("a changed settings file, secret or agent code restarts the agent; the polkit rule restarts nothing", () => {
    const restarted = (file: string) =>
      WEB_PUSH.actions.filter((a) => file.startsWith(a.prefix)).map((a) => `${a.then.action} ${a.then.service}`);
    for (const file of [REMEDIATION_ENV_PATH, REMEDIATION_SECRET_PATH, `${TITAN_APP_DIR}/remediation/agent.py`])
      assert.ok(restarted(file).includes("restart titan-remediation"), file);
    assert.deepEqual(restarted(POLKIT_RULE_PATH), []);
  });

  it("refuses a value that would not survive systemd's EnvironmentFile= parsing, naming it", () => {
    assert.throws(
      () => renderAgentEnv({ TITAN_REMEDIATION_HOST: "a b" }),
      /agent\.env: TITAN_REMEDIATION_HOST="a b": expected letters/,
    );
  });
});

describe("the HMAC secret on the web host", () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "remediation-secret-"));
  after(() => fs.rmSync(work, { recursive: true, force: true }));
  const bin = path.join(work, "bin");
  fs.mkdirSync(bin);
  // Records every argv (a secret on a command line would show); chown is the only call it fakes.
  fs.writeFileSync(
    path.join(bin, "sudo"),
    [
      "#!/bin/sh",
      'printf "%s\\n" "sudo $*" >>"$LOG/argv"',
      'case "$1" in chown) exit 0 ;; install) eval "last=\\${$#}"; mkdir -p "$last" ;; *) exec "$@" ;; esac',
    ].join("\n"),
    { mode: 0o755 },
  );
  fs.writeFileSync(path.join(bin, "systemctl"), '#!/bin/sh\necho "$*" >>"$LOG/systemctl"\n', { mode: 0o755 });

  for (const shell of ["bash", "dash"]) {
    it(`under ${shell}: written 0400 once, a rotated one rewritten and the agent restarted, never on a command line`, () => {
      const root = fs.mkdtempSync(path.join(work, `${shell}-`));
      const log = path.join(root, "log");
      const staging = path.join(root, "titan-staging", "0123456789abcdef");
      fs.mkdirSync(staging, { recursive: true });
      const script = installScript({ staging, files: [], actions: WEB_PUSH.actions, extra: REMEDIATION_SECRET_LINES })
        .split("/etc/titan-remediation")
        .join(`${root}/etc/titan-remediation`);
      const push = (secret: string) => {
        fs.rmSync(log, { recursive: true, force: true });
        fs.mkdirSync(log);
        const r = spawnSync(shell, ["-c", script], {
          input: `${secret}\n`,
          encoding: "utf8",
          env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}`, LOG: log },
        });
        const read = (f: string) =>
          fs.existsSync(path.join(log, f)) ? fs.readFileSync(path.join(log, f), "utf8") : "";
        return { ...r, systemctl: read("systemctl"), argv: read("argv") };
      };
      const target = root + REMEDIATION_SECRET_PATH;
      const first = push("first0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ");
      assert.equal(first.status, 0, first.stderr);
      assert.match(first.stdout, new RegExp(`installed: ${target}$`, "m"));
      assert.equal(fs.readFileSync(target, "utf8"), "first0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ");
      assert.equal(fs.statSync(target).mode & 0o777, 0o400);
      assert.equal(first.systemctl, "restart titan-remediation\n");

      const again = push("first0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ");
      assert.match(again.stdout, /installed: nothing changed/);
      assert.equal(again.systemctl, "", "the same secret restarts nothing");

      const rotated = push("second987654321ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsr");
      assert.match(rotated.stdout, new RegExp(`installed: ${target}$`, "m"));
      assert.equal(fs.readFileSync(target, "utf8"), "second987654321ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsr");
      assert.equal(rotated.systemctl, "restart titan-remediation\n", "the agent reads its credential at start");

      for (const run of [first, again, rotated]) {
        assert.ok(!run.argv.includes("first0123") && !run.argv.includes("second9876"), run.argv);
        assert.deepEqual(fs.readdirSync(path.dirname(target)), ["hmac-secret"], "no temporary file left");
      }
      const empty = push("");
      assert.notEqual(empty.status, 0);
      assert.match(empty.stderr, /HMAC secret must arrive on stdin/);
    });
  }
});

describe("remediationSecretRotation", () => {
  const PASSWORD = "random:index/randomPassword:RandomPassword";
  const REMOTE = "command:remote:Command";
  const changedInstalls = (snap: TimedSnapshot) =>
    snap.resources
      .filter((r) => r.type === REMOTE && r.name.endsWith("-push-install") && r.action !== "same")
      .map((r) => r.name)
      .sort();

  it("set or raised: a new key, delivered by Grafana's and every web host's push, and no other", async () => {
    for (const [base, changed, because] of [
      [{}, { remediationSecretRotation: "1" }, "keepers"],
      [{ remediationSecretRotation: "1" }, { remediationSecretRotation: "2" }, "keepers.rotation"],
    ] as const) {
      const snap = await update({ webCount: "2", ...base }, { webCount: "2", ...changed });
      assert.equal(snap.error, undefined, snap.error);
      const secret = one(snap, PASSWORD, "remediation-hmac-secret");
      assert.equal(secret.action, "replace");
      assert.deepEqual(secret.replacedBecause, [because]);
      assert.deepEqual(changedInstalls(snap), ["grafana-push-install", "web-1-push-install", "web-2-push-install"]);
      const key = (secret.state as { result: string }).result;
      const web = snap.resources.find((r) => r.name === "web-1-push-install")?.inputs.stdin as { value?: string };
      assert.equal(web.value, `${key}\n`, "the web host gets the new key");
    }
  });

  it("unchanged: the same key, and no push runs for it", async () => {
    const snap = await update({ remediationSecretRotation: "3" }, { remediationSecretRotation: "3" });
    assert.equal(snap.error, undefined, snap.error);
    assert.equal(one(snap, PASSWORD, "remediation-hmac-secret").action, "same");
    assert.deepEqual(changedInstalls(snap), []);
  });

  it("refuses a value that is not a whole number from 1, naming the key", async () => {
    const snap = await snapshot({ remediationSecretRotation: "0" });
    assert.match(snap.error ?? "", /remediationSecretRotation/);
  });
});

describe("the HMAC secret in the program", () => {
  let on: TimedSnapshot;
  let off: TimedSnapshot;
  before(async () => {
    [on, off] = await Promise.all([snapshot({ webCount: "2" }), snapshot({ webCount: "2", remediation: "off" })]);
    assert.equal(on.error, undefined, on.error);
    assert.equal(off.error, undefined, off.error);
  });

  const stdinOf = (snap: TimedSnapshot, name: string) => {
    const v = snap.resources.find((r) => r.name === name)?.inputs.stdin as { value?: string } | undefined;
    assert.ok(isSecretValue(v), `${name}: stdin is a secret`);
    return String(v?.value);
  };
  const grafanaLine = (snap: TimedSnapshot) =>
    stdinOf(snap, "grafana-push-install").split("\n")[GRAFANA_STDIN_ORDER.indexOf("remediationHmacSecret")];

  /** Whether a push's stdin is made from the generated secret (the mocks give every password one value). */
  const stdinFromSecret = (snap: TimedSnapshot, name: string) => {
    const secret = snap.resources.find((r) => r.name === "remediation-hmac-secret");
    assert.ok(secret);
    const install = snap.resources.find((r) => r.name === name);
    assert.ok(install, name);
    return (install.propertyDependencies.stdin ?? []).includes(secret.urn);
  };

  it("is generated once, 48 letters and digits, and reaches Grafana and every web host on stdin", () => {
    const password = on.resources.find((r) => r.name === "remediation-hmac-secret");
    assert.equal(password?.type, "random:index/randomPassword:RandomPassword");
    assert.deepEqual([password?.inputs.length, password?.inputs.special], [48, false]);
    const secret = grafanaLine(on);
    assert.ok(secret.length > 0);
    assert.ok(stdinFromSecret(on, "grafana-push-install"));
    for (const web of ["web-1", "web-2"]) {
      assert.equal(stdinOf(on, `${web}-push-install`), `${secret}\n`, web);
      assert.deepEqual(
        on.resources.find((r) => r.name === `${web}-push-install`)?.propertyDependencies.stdin,
        [on.resources.find((r) => r.name === "remediation-hmac-secret")?.urn],
        `${web}: its stdin is the secret alone`,
      );
    }
    for (const other of ["prometheus-push-install", "loki-push-install"]) assert.ok(!stdinFromSecret(on, other), other);
  });

  it("appears in no plain input: not in user data, a command, a file or a trigger", () => {
    const secret = grafanaLine(on);
    for (const r of on.resources) assert.ok(!plainInputs(r).includes(secret), `${r.name} carries it in plain text`);
    const instances = on.resources.filter((r) => r.type === "aws:ec2/instance:Instance");
    assert.ok(instances.length >= 5);
    for (const i of instances) assert.ok(!String(i.inputs.userData).includes(secret), `${i.name}: user data`);
  });

  it("off: Grafana gets no key (no contact point signs), the web hosts still do (the agent runs, refusing)", () => {
    assert.equal(grafanaLine(off), "");
    assert.ok(!stdinFromSecret(off, "grafana-push-install"));
    for (const web of ["web-1", "web-2"]) {
      assert.ok(stdinFromSecret(off, `${web}-push-install`), web);
      assert.equal(stdinOf(off, `${web}-push-install`), stdinOf(on, `${web}-push-install`), web);
    }
  });
});
