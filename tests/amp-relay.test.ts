/**
 * The AMP signing relay in the stack (templates/host/ampRelay.ts, infra/delivery/ampRelayPush.ts):
 * with metricsStore=amp the Prometheus host gets relay/'s package as it is in the checkout, its
 * settings and a sandboxed unit, and Prometheus writes to it on loopback; with local nothing of it
 * is rendered and the Prometheus push removes a relay an earlier amp push left. The relay's own behaviour is proven by its
 * pytest suite (relay/tests), its path through the real Prometheus by tests/fleet/ampRemoteWrite.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { AMP_RELAY_PATH, AMP_RELAY_PORT } from "../facts/metricsStore";
import {
  AMP_RELAY_DIR,
  AMP_RELAY_ENV_PATH,
  AMP_RELAY_MODULES,
  AMP_RELAY_SERVICE,
  AMP_RELAY_UNIT_PATH,
  renderAmpRelayFiles,
} from "../templates/host/ampRelay";
import { ampRelayRemovalLines } from "../infra/delivery/ampRelayPush";
import { renderHostFiles } from "../templates/index";
import { projectRoot } from "../templates/projectFiles";
import { renderPrometheusFiles } from "../templates/prometheus/config";
import { ampTestContext, testContext } from "./support/render";
import { one, snapshot, type TimedSnapshot } from "./support/snapshots";

const RELAY_ROOT = path.join(projectRoot(), "relay");
const options = { slackWebhookConfigured: false };

function prometheusFiles(ctx: ReturnType<typeof testContext>) {
  const host = ctx.plan.hosts.find((h) => h.role === "prometheus");
  assert.ok(host, "the test plan has a prometheus host");
  return renderHostFiles(ctx, host, options);
}

/** The relay's Python modules in the checkout (tests and caches aside), relative to relay/. */
function checkoutModules(): string[] {
  const dir = path.join(RELAY_ROOT, "titan_amp_relay");
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".py"))
    .map((f) => `titan_amp_relay/${f}`)
    .sort();
}

describe("the relay's files", () => {
  it("are not rendered with metricsStore=local: the Prometheus host gets its config and flags only", () => {
    const ctx = testContext();
    assert.deepEqual(renderAmpRelayFiles(ctx), []);
    assert.deepEqual(prometheusFiles(ctx), renderPrometheusFiles(ctx));
  });

  it("with amp: every module of relay/titan_amp_relay as it is in the checkout", () => {
    assert.deepEqual([...AMP_RELAY_MODULES].sort(), checkoutModules());
    const files = new Map(prometheusFiles(ampTestContext()).map((f) => [f.path, f]));
    for (const module of AMP_RELAY_MODULES) {
      const file = files.get(`${AMP_RELAY_DIR}/${module}`);
      assert.ok(file, module);
      assert.equal(file.content, fs.readFileSync(path.join(RELAY_ROOT, module), "utf8"), module);
      assert.equal(`${file.owner}:${file.group} ${file.mode.toString(8)}`, "root:root 644", module);
    }
  });

  it("with amp: the settings the relay reads, under the names server.py reads them, and the path it answers", () => {
    const server = fs.readFileSync(path.join(RELAY_ROOT, "titan_amp_relay/server.py"), "utf8");
    assert.match(server, new RegExp(`^PATH = "${AMP_RELAY_PATH}"$`, "m"));
    const env = prometheusFiles(ampTestContext()).find((f) => f.path === AMP_RELAY_ENV_PATH);
    assert.ok(env);
    const names = [...env.content.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]);
    for (const name of names) assert.match(server, new RegExp(`^ENV_[A-Z_]+ = "${name}"$`, "m"), name);
    assert.deepEqual(names, ["TITAN_AMP_RELAY_PORT", "TITAN_AMP_RELAY_REMOTE_WRITE_URL", "TITAN_AMP_RELAY_REGION"]);
    assert.match(env.content, new RegExp(`^TITAN_AMP_RELAY_PORT=${AMP_RELAY_PORT}$`, "m"));
  });

  it("refuses a setting that would not survive the env file", () => {
    const ctx = ampTestContext();
    const bad = { ...ctx, amp: { ...ctx.amp!, region: "us east 1" } };
    assert.throws(() => renderAmpRelayFiles(bad), /TITAN_AMP_RELAY_REGION="us east 1": expected/);
  });

  it("with amp: a unit with its own dynamic user, the common sandbox, IP and Unix sockets only, no capability", () => {
    const unit = prometheusFiles(ampTestContext()).find((f) => f.path === AMP_RELAY_UNIT_PATH);
    assert.ok(unit);
    const lines = unit.content.split("\n");
    for (const line of [
      "DynamicUser=yes",
      "ExecStart=/usr/bin/python3 -m titan_amp_relay",
      `Environment="PYTHONPATH=${AMP_RELAY_DIR}"`,
      `EnvironmentFile=${AMP_RELAY_ENV_PATH}`,
      "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
      "CapabilityBoundingSet=",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "WantedBy=multi-user.target",
    ]) {
      assert.ok(lines.includes(line), `${AMP_RELAY_SERVICE}.service has no ${line}`);
    }
    assert.ok(!lines.some((l) => /^(User|AmbientCapabilities|ReadWritePaths)=/.test(l)), unit.content);
  });
});

describe("the Prometheus push", () => {
  let local: TimedSnapshot;
  let amp: TimedSnapshot;
  const script = (snap: TimedSnapshot) =>
    String(one(snap, "command:remote:Command", "prometheus-push-install").inputs.create);
  before(async () => {
    local = await snapshot();
    assert.equal(local.error, undefined, local.error);
    amp = await snapshot({ metricsStore: "amp" });
    assert.equal(amp.error, undefined, amp.error);
  });

  it("with amp installs python3-botocore in place, enables the relay and restarts it when its files change", () => {
    const s = script(amp);
    assert.match(s, /apt-get install -y -q --no-install-recommends python3-botocore/);
    assert.match(s, /systemctl enable --quiet titan-amp-relay\.service/);
    for (const prefix of [`${AMP_RELAY_DIR}/`, AMP_RELAY_ENV_PATH, AMP_RELAY_UNIT_PATH]) {
      assert.ok(s.includes(`*" ${prefix}"*) sudo systemctl restart titan-amp-relay;`), prefix);
    }
  });

  it("with local installs nothing of the relay and removes one an earlier push installed", () => {
    const s = script(local);
    assert.doesNotMatch(s, /botocore|systemctl enable|restart titan-amp-relay/);
    assert.ok(s.includes(ampRelayRemovalLines().join("\n")), "the removal lines are in the local push");
    assert.ok(!script(amp).includes("removed titan-amp-relay"), "and not in the amp push");
  });
});

describe("the relay's removal (metricsStore back to local), run with stand-in sudo and systemctl", () => {
  let work: string;
  let log: string;
  before(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "relay-removal-"));
    const shim = path.join(work, "bin");
    fs.mkdirSync(shim);
    fs.writeFileSync(path.join(shim, "sudo"), '#!/bin/sh\nexec "$@"\n', { mode: 0o755 });
    log = path.join(work, "systemctl.log");
    // is-failed answers as $RELAY_FAILED says (0: the relay had failed), every other call succeeds.
    fs.writeFileSync(
      path.join(shim, "systemctl"),
      `#!/bin/sh\necho "$*" >>${log}\n[ "$1" = is-failed ] && exit "\${RELAY_FAILED:-0}"\nexit 0\n`,
      { mode: 0o755 },
    );
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  const root = () => path.join(work, "host");
  const run = (failed = true) => {
    fs.rmSync(log, { force: true });
    const r = spawnSync("sh", ["-c", ["set -eu", ...ampRelayRemovalLines(root())].join("\n")], {
      encoding: "utf8",
      env: {
        ...process.env,
        PATH: `${path.join(work, "bin")}:${process.env.PATH ?? ""}`,
        RELAY_FAILED: failed ? "0" : "1",
      },
    });
    assert.equal(r.status, 0, r.stderr);
    return { out: r.stdout, calls: fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : [] };
  };
  const install = () => {
    for (const p of [AMP_RELAY_UNIT_PATH, AMP_RELAY_ENV_PATH, `${AMP_RELAY_DIR}/titan_amp_relay/server.py`]) {
      fs.mkdirSync(path.dirname(path.join(root(), p)), { recursive: true });
      fs.writeFileSync(path.join(root(), p), "x\n");
    }
  };

  it("stops, disables and forgets the unit, then removes its unit file, settings and package", () => {
    install();
    const { out, calls } = run();
    assert.deepEqual(calls, [
      `disable --quiet --now ${AMP_RELAY_SERVICE}.service`,
      `is-failed --quiet ${AMP_RELAY_SERVICE}.service`,
      `reset-failed ${AMP_RELAY_SERVICE}.service`,
      "daemon-reload",
    ]);
    for (const p of [AMP_RELAY_UNIT_PATH, AMP_RELAY_ENV_PATH, AMP_RELAY_DIR]) {
      assert.ok(!fs.existsSync(path.join(root(), p)), `${p} is gone`);
    }
    assert.match(out, /removed titan-amp-relay/);
  });

  it("asks for no reset-failed of a relay that did not fail (systemd has unloaded it and would refuse)", () => {
    install();
    const { calls } = run(false);
    assert.deepEqual(calls, [
      `disable --quiet --now ${AMP_RELAY_SERVICE}.service`,
      `is-failed --quiet ${AMP_RELAY_SERVICE}.service`,
      "daemon-reload",
    ]);
    assert.ok(!fs.existsSync(path.join(root(), AMP_RELAY_UNIT_PATH)));
  });

  it("does nothing on a host that has no relay (every later push, a stack that never had amp)", () => {
    const { out, calls } = run();
    assert.deepEqual(calls, []);
    assert.equal(out, "");
  });

  it("removes what a push cut short left behind without calling systemd for a unit that is not there", () => {
    install();
    fs.rmSync(path.join(root(), AMP_RELAY_UNIT_PATH));
    const { calls } = run();
    assert.deepEqual(calls, []);
    assert.ok(
      !fs.existsSync(path.join(root(), AMP_RELAY_DIR)) && !fs.existsSync(path.join(root(), AMP_RELAY_ENV_PATH)),
    );
  });
});
