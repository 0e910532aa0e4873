/**
 * Grafana's first start uses the configured admin, the generated password and the generated
 * secret key, and nothing can start it earlier (issue 9, item 4). Grafana's side is the model
 * in support/grafanaSettings.ts (encoded from its source); systemd's side is systemd-analyze.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  GRAFANA_POST_LINES,
  GRAFANA_SECRET_LINES,
  GRAFANA_STDIN_ORDER,
  SECRET_KEY_ENV,
} from "../infra/delivery/grafanaSecrets";
import { bootstrapPlan, DATA_MOUNTS, renderBootstrapScript } from "../templates/host/bootstrap";
import {
  envLine,
  GRAFANA_ADMIN_PASSWORD_PATH,
  GRAFANA_DROP_IN_PATH,
  GRAFANA_ENV_PATH,
  GRAFANA_PACKAGE_PATHS,
  GRAFANA_SECRETS_DIR,
  GRAFANA_SECRETS_ENV_PATH,
  GRAFANA_START_REQUIRES,
  renderGrafanaDropIn,
  renderGrafanaServerFiles,
} from "../templates/host/grafanaServer";
import { cloudConfigFor } from "../templates/host/userData";
import {
  firstAdmin,
  parseEnvironmentFile,
  resolveSettings,
  runtimeSecretKey,
  GRAFANA_DEFAULTS,
} from "./support/grafanaSettings";
import { MOCK_PASSWORD, MOCK_SECRET_KEY } from "./support/mockProgram";
import { testContext } from "./support/render";
import { isSecretValue, one, ofType, plainInputs, snapshot, type TimedSnapshot } from "./support/snapshots";

const REMOTE = "command:remote:Command";
const unwrap = (v: unknown): unknown => (isSecretValue(v) ? (v as { value: unknown }).value : v);

/**
 * Runs the push's secret lines as the host would, under a stand-in root: the secrets directory
 * is a temporary one, and `sudo` runs its command as this user, logging what chown would set.
 */
function runSecretLines(stdin: string): { dir: string; owners: Record<string, string> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grafana-secrets-"));
  const shim = [
    "sudo() {",
    '  case "$1" in',
    '    chown) echo "$2" >"$3.owner" ;;',
    '    mv) mv "$2" "$3" && if [ -e "$2.owner" ]; then mv "$2.owner" "$3.owner"; fi ;;',
    '    install) mkdir -p "${@: -1}" ;;',
    '    *) "$@" ;;',
    "  esac",
    "}",
  ];
  const script = [
    "set -eu",
    "changed=''",
    ...shim,
    ...GRAFANA_SECRET_LINES.map((l) => l.split(GRAFANA_SECRETS_DIR).join(dir)),
  ].join("\n");
  const result = spawnSync("bash", ["-c", script], { input: stdin, encoding: "utf8" });
  assert.equal(result.status, 0, `secret lines failed: ${result.stderr}`);
  const owners: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith(".owner")))
    owners[f.replace(/\.owner$/, "")] = fs.readFileSync(path.join(dir, f), "utf8").trim();
  return { dir, owners };
}

/** Where a host path lands under the stand-in root. */
const hostFile = (dir: string) => (p: string) => {
  if (!p.startsWith(`${GRAFANA_SECRETS_DIR}/`)) throw new Error(`model read outside the secrets: ${p}`);
  return fs.readFileSync(path.join(dir, path.relative(GRAFANA_SECRETS_DIR, p)), "utf8");
};

describe("Grafana's first start", () => {
  const ctx = testContext({ grafanaAdminUser: "ops-lead" });
  const password = "Zq7generated-password-0123456789";
  const key = "9f2c4e6a8b0d1f3a5c7e9b1d3f5a7c9e";
  const webhook = "https://hooks.slack.com/services/T0/B0/abc";
  const stdinLines: Record<(typeof GRAFANA_STDIN_ORDER)[number], string> = {
    adminPassword: password,
    secretKey: key,
    slackWebhookUrl: webhook,
    metricsPassword: "metrics-password-0123",
    remediationHmacSecret: "remediation-hmac-secret-0123",
  };
  let pushed: { dir: string; owners: Record<string, string> };
  before(() => {
    pushed = runSecretLines(`${GRAFANA_STDIN_ORDER.map((k) => stdinLines[k]).join("\n")}\n`);
  });
  after(() => fs.rmSync(pushed.dir, { recursive: true, force: true }));

  const unitEnvironment = () => {
    const rendered = renderGrafanaServerFiles(ctx).find((f) => f.path === GRAFANA_ENV_PATH);
    assert.ok(rendered, `${GRAFANA_ENV_PATH} is rendered`);
    // EnvironmentFile= lines in the drop-in's order; a later file wins a repeated key.
    return {
      ...parseEnvironmentFile(rendered.content),
      ...parseEnvironmentFile(hostFile(pushed.dir)(GRAFANA_SECRETS_ENV_PATH)),
    };
  };

  it("creates the configured non-default admin with the generated password, and encrypts with the generated key", () => {
    assert.notEqual(ctx.config.grafanaAdminUser, GRAFANA_DEFAULTS.security.admin_user);
    const env = unitEnvironment();
    const settings = resolveSettings(env, hostFile(pushed.dir));
    assert.deepEqual(firstAdmin(settings), { login: "ops-lead", password });
    assert.equal(runtimeSecretKey(settings, env), key);
    assert.equal(env.TITAN_SLACK_WEBHOOK_URL, webhook);
  });

  it("keeps the secrets in root-owned files only Grafana or systemd can read", () => {
    const mode = (f: string) => (fs.statSync(path.join(pushed.dir, f)).mode & 0o777).toString(8);
    assert.equal(pushed.owners[path.basename(GRAFANA_ADMIN_PASSWORD_PATH)], "root:grafana");
    assert.equal(mode(path.basename(GRAFANA_ADMIN_PASSWORD_PATH)), "440");
    assert.equal(pushed.owners[path.basename(GRAFANA_SECRETS_ENV_PATH)], "root:root");
    assert.equal(mode(path.basename(GRAFANA_SECRETS_ENV_PATH)), "600");
    assert.equal(hostFile(pushed.dir)(GRAFANA_ADMIN_PASSWORD_PATH), password, "no trailing newline");
  });

  it("refuses to write anything without a password and a key on stdin", () => {
    const script = ["set -eu", "changed=''", 'sudo() { echo "sudo $*" >&2; exit 3; }', ...GRAFANA_SECRET_LINES];
    const result = spawnSync("bash", ["-c", script.join("\n")], { input: `${password}\n\n\n`, encoding: "utf8" });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /admin password, secret key and metrics password must arrive on stdin/);
  });

  it("names no setting in a form only Grafana's Docker entrypoint or a raw read would take", () => {
    const env = parseEnvironmentFile(renderGrafanaServerFiles(ctx)[0].content);
    for (const name of Object.keys(env)) assert.ok(!name.endsWith("__FILE"), `${name}: read only by run.sh`);
    // secret_key is read raw at run time: a reference there would become the key itself.
    assert.equal(env[SECRET_KEY_ENV], undefined);
    const literal = { [SECRET_KEY_ENV]: `$__file{${GRAFANA_SECRETS_DIR}/secret_key}` };
    assert.equal(
      runtimeSecretKey(
        resolveSettings(literal, () => key),
        literal,
      ),
      literal[SECRET_KEY_ENV],
    );
  });

  it("refuses environment values systemd or Grafana would read differently, naming key and value", () => {
    assert.equal(envLine(["A", "$__file{/etc/x}"]), 'A="$__file{/etc/x}"');
    assert.throws(() => envLine(["GF_X", "a$HOME"]), /GF_X="a\$HOME": expected no quote/);
    assert.throws(() => envLine(["GF_X", 'say "hi"']), /GF_X=.*expected no quote/);
    assert.throws(() => envLine(["gf-x", "1"]), /environment key "gf-x": expected A-Z/);
  });
});

describe("nothing starts Grafana before the push", () => {
  it("the bootstrap enables grafana-server and never starts it", () => {
    const script = renderBootstrapScript(bootstrapPlan("grafana", "vol-0123456789abcdef0"));
    const starts = script
      .split("\n")
      .filter((l) => /systemctl\s+(start|restart|reload-or-restart|try-restart)\b/.test(l));
    assert.ok(starts.length > 0, "other services are still started");
    for (const line of starts) assert.ok(!line.includes("grafana-server"), line);
    assert.ok(!/systemctl\s+enable\s+--now/.test(script));
    assert.match(script, /systemctl enable [^\n]*grafana-server/);
  });

  it("user data carries the drop-in that holds the unit until the settings and both secrets exist", () => {
    const files = cloudConfigFor({ role: "grafana", dataVolumeId: "vol-0123456789abcdef0" }).write_files;
    const dropIn = files.find((f) => f.path === GRAFANA_DROP_IN_PATH);
    assert.ok(dropIn, "the drop-in is in user data");
    const conditions = dropIn.content.split("\n").filter((l) => l.startsWith("ConditionPathExists="));
    assert.deepEqual(
      conditions.map((l) => l.slice("ConditionPathExists=".length)),
      [GRAFANA_ENV_PATH, GRAFANA_ADMIN_PASSWORD_PATH, GRAFANA_SECRETS_ENV_PATH],
    );
    assert.deepEqual([...GRAFANA_START_REQUIRES].sort(), conditions.map((l) => l.split("=")[1]).sort());
  });

  it("systemd loads the drop-in onto the packaged unit, and its conditions fail while the files are missing", () => {
    for (const f of GRAFANA_START_REQUIRES) assert.ok(!fs.existsSync(f), `precondition: ${f} absent on this machine`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grafana-unit-"));
    try {
      // The packaged unit's shape (packaging/deb/systemd/grafana-server.service); /bin/true
      // stands in for the binary, which verify insists on finding.
      fs.writeFileSync(
        path.join(dir, "grafana-server.service"),
        "[Unit]\nDescription=Grafana instance\n\n[Service]\nUser=root\nType=simple\nRestart=on-failure\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n",
      );
      fs.mkdirSync(path.join(dir, "grafana-server.service.d"));
      fs.writeFileSync(path.join(dir, "grafana-server.service.d", "titan.conf"), renderGrafanaDropIn());
      const verify = spawnSync("systemd-analyze", ["verify", path.join(dir, "grafana-server.service")], {
        encoding: "utf8",
        env: { ...process.env, SYSTEMD_LOG_LEVEL: "debug" },
      });
      assert.equal(verify.status, 0, verify.stderr);
      assert.match(verify.stdout + verify.stderr, /DropIn Path: .*grafana-server\.service\.d\/titan\.conf/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    // Each condition on its own: systemd-analyze stops at the first that fails.
    const conditions = renderGrafanaDropIn()
      .split("\n")
      .filter((l) => l.startsWith("Condition"));
    assert.equal(conditions.length, GRAFANA_START_REQUIRES.length);
    for (const condition of conditions) {
      const result = spawnSync("systemd-analyze", ["condition", condition], { encoding: "utf8" });
      assert.notEqual(result.status, 0, `${condition}: the unit would start`);
      assert.match(result.stderr, new RegExp(`${condition.replace(/[.$]/g, "\\$&")} failed`));
    }
  });

  it("leaves restarting to the packaged unit", () => {
    assert.ok(!/^Restart=/m.test(renderGrafanaDropIn()), "the packaged unit already has Restart=on-failure");
  });
});

describe("the push", () => {
  let snap: TimedSnapshot;
  before(async () => {
    snap = await snapshot(
      { grafanaAdminUser: "ops-lead", slackWebhookUrl: "https://hooks.slack.com/services/T0/B0/SENTINELhook" },
      { secretKeys: ["slackWebhookUrl"] },
    );
    assert.equal(snap.error, undefined);
  });

  it("hands the generated key to Grafana on stdin, as a secret, after the password", () => {
    const install = one(snap, REMOTE, "grafana-push-install");
    assert.ok(isSecretValue(install.inputs.stdin));
    assert.equal(
      unwrap(install.inputs.stdin),
      // The mocks give every RandomPassword the same result: the metrics password is the fourth
      // line, the remediation agents' HMAC key the fifth (remediation is on by default).
      `${MOCK_PASSWORD}\n${MOCK_SECRET_KEY}\nhttps://hooks.slack.com/services/T0/B0/SENTINELhook\n${MOCK_PASSWORD}\n${MOCK_PASSWORD}\n`,
    );
    const key = one(snap, "random:index/randomBytes:RandomBytes", "grafana-secret-key");
    assert.ok((key.inputs.length as number) >= 32, "at least 256 bits");
  });

  it("keeps the key out of user data, every plain input and every plain output", () => {
    const stdin = one(snap, REMOTE, "grafana-push-install").inputs.stdin;
    assert.ok(isSecretValue(stdin) && String(unwrap(stdin)).includes(MOCK_SECRET_KEY), "the key is delivered, secret");
    for (const r of snap.resources) assert.ok(!plainInputs(r).includes(MOCK_SECRET_KEY), r.name);
    for (const host of ofType(snap, "aws:ec2/instance:Instance"))
      assert.ok(!String(host.inputs.userData).includes("SENTINEL"), host.name);
    const plain = JSON.stringify(Object.values(snap.outputs).filter((o) => !o.secret));
    assert.ok(!plain.includes(MOCK_SECRET_KEY));
  });

  it("writes the secrets and settings before it starts Grafana, and fails if Grafana does not answer", () => {
    const script = String(one(snap, REMOTE, "grafana-push-install").inputs.create).split("\n");
    const first = (re: RegExp) => script.findIndex((l) => re.test(l));
    const start = first(/systemctl (re)?start grafana-server/);
    assert.ok(start > 0, "the push starts Grafana");
    for (const [what, re] of [
      ["password", new RegExp(`^secret ${GRAFANA_ADMIN_PASSWORD_PATH} `)],
      ["secret key", new RegExp(`^secret ${GRAFANA_SECRETS_ENV_PATH} `)],
      ["settings", new RegExp(`place "\\$staging${GRAFANA_ENV_PATH}" ${GRAFANA_ENV_PATH} `)],
    ] as const) {
      const at = first(re);
      assert.ok(at >= 0 && at < start, `${what} (line ${at}) before the start (line ${start})`);
    }
    const health = first(/api\/health/);
    assert.ok(health > start, "waits for Grafana after starting it");
    assert.ok(
      script.slice(health).some((l) => /^\s*exit 1$/.test(l)),
      "and fails when it never answers",
    );
    assert.ok(!script.some((l) => l.includes("SENTINEL")), "no secret in the script itself");
  });

  it("resets a changed password in the database the service uses", () => {
    const cli = GRAFANA_POST_LINES.find((l) => l.includes("reset-admin-password"));
    assert.ok(cli);
    assert.ok(cli.includes(`cfg:default.paths.data=${GRAFANA_PACKAGE_PATHS.data}`), "not <homepath>/data");
    assert.equal(GRAFANA_PACKAGE_PATHS.data, DATA_MOUNTS.grafana.mountPoint, "the database lives on the data volume");
    assert.ok(cli.includes("--password-from-stdin") && cli.startsWith(`  sudo cat ${GRAFANA_ADMIN_PASSWORD_PATH} |`));
  });
});
