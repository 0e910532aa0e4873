/**
 * The stand-in vendor packages and their signed repository (tests/fleet/standins/): what dpkg
 * sees in each package, what apt and gpgv accept, and each stand-in started as its packaged
 * unit would start it, with the project's own rendered configuration, answering its health
 * endpoint on loopback.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { aptSandbox } from "../support/aptSandbox";
import { after, before, describe, it } from "node:test";
import YAML from "yaml";
import { SERVICES } from "../../facts/topology";
import { ALLOY_CONFIG_PATH, ALLOY_DEFAULTS_PATH, renderAlloyFiles } from "../../templates/alloy/config";
import { GRAFANA_DROP_IN_PATH, grafanaEnvironment } from "../../templates/host/grafanaServer";
import { GRAFANA_RESET_PASSWORD } from "../../infra/delivery/grafanaSecrets";
import { servicesFor, unitsFor } from "../../templates/host/units";
import { LOKI_CONFIG_PATH, lokiConfig, renderLokiYaml } from "../../templates/loki/config";
import { GRAFANA_APT, VERSIONS } from "../../facts/versions";
import { nextPatchVersion, renderPostinst, STANDIN_DEPENDS } from "./standins/packages";
import { renderAptPreferences } from "../../templates/host/aptPins";
import { buildStandinRepository, fingerprintOf, KEY_FILE, type StandinRepository } from "./standins/repository";
import { expandExecStart, parseEnvironmentFile } from "./standins/unitExec";
import { VENDOR_PACKAGES, type Daemon, type VendorPackage } from "./standins/vendor";
import { testContext } from "../support/render";
import { ALERT_GROUP, alertDefinitions } from "../../templates/alerts";
import {
  alertRule,
  GRAFANA_PATHS,
  PROVISIONING_DIR,
  renderGrafanaFiles,
  toYaml,
  type GrafanaRenderOptions,
} from "../../templates/grafana";
import type { TemplateContext } from "../../templates/types";
import {
  grafanaRule,
  grafanaRuleThreshold,
  grafanaRuleUids,
  lokiRunningConfig,
  durationSeconds,
  retentionSeconds,
  ruleThreshold,
  THRESHOLD_RULES,
  type GrafanaLogin,
  type ProvisionedAlertRule,
} from "./checks/effects";

const DAEMONS = Object.keys(VENDOR_PACKAGES) as Daemon[];
const sh = (cmd: string, args: string[], input?: string): string =>
  execFileSync(cmd, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });

let tmp: string;
let repo: StandinRepository;
/** Each package unpacked (dpkg-deb -x) into its own root, as if installed there. */
const roots = {} as Record<Daemon, string>;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "standins-test-"));
  repo = buildStandinRepository(path.join(tmp, "repo"));
  for (const p of repo.packages) {
    roots[p.daemon] = path.join(tmp, "root", p.daemon);
    fs.mkdirSync(roots[p.daemon], { recursive: true });
    sh("dpkg-deb", ["-x", p.file, roots[p.daemon]]);
  }
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const pkgFile = (d: Daemon): string => {
  const p = repo.packages.find((x) => x.daemon === d);
  if (!p) throw new Error(`no ${d} package built`);
  return p.file;
};
const field = (d: Daemon, name: string): string => sh("dpkg-deb", ["-f", pkgFile(d), name]).trim();
const contents = (d: Daemon): Map<string, string> =>
  new Map(
    sh("dpkg-deb", ["-c", pkgFile(d)])
      .trim()
      .split("\n")
      .map((line) => {
        const cols = line.split(/\s+/);
        return [cols[5].replace(/^\./, ""), cols[0]] as [string, string];
      }),
  );

describe("stand-in packages (dpkg-deb -I / -c)", () => {
  for (const d of DAEMONS) {
    const v = VENDOR_PACKAGES[d];
    it(`${d}: the name and exact version the bootstrap installs, clearly a stand-in`, () => {
      assert.equal(field(d, "Package"), VERSIONS[d].package);
      assert.equal(field(d, "Version"), VERSIONS[d].aptPin);
      assert.match(field(d, "Description"), /^STAND-IN for /);
      const info = sh("dpkg-deb", ["-I", pkgFile(d)]);
      assert.match(info, /not Grafana's build/);
      assert.equal(field(d, "Depends"), [...v.depends, ...STANDIN_DEPENDS].join(", "));
    });

    it(`${d}: ships the vendor's unit, binary and wrappers at the vendor's paths, executable`, () => {
      const files = contents(d);
      assert.equal(files.get(v.unit.path), "-rw-r--r--", `${v.unit.path} missing or wrong mode`);
      assert.equal(files.get(v.binary), "-rwxr-xr-x", `${v.binary} missing or not executable`);
      for (const w of v.wrappers) assert.equal(files.get(w.path), "-rwxr-xr-x", `${w.path} missing`);
      if (v.defaults) assert.ok(files.has(v.defaults.path), `${v.defaults.path} missing`);
      assert.equal(files.has(v.config.path), v.config.shipped);
      assert.deepEqual(readControl(d, "conffiles").trim().split("\n"), [...v.conffiles]);
    });

    it(`${d}: its --version output says STAND-IN and what it cannot prove`, () => {
      const out = sh("/usr/bin/python3", [path.join(roots[d], v.binary), "--version"]);
      assert.match(out, new RegExp(`version ${VERSIONS[d].version.replace(/\./g, "\\.")} \\(STAND-IN`));
      assert.match(out, /does not|has no/);
    });

    it(`${d}: the postinst is valid POSIX sh and makes the vendor's user`, () => {
      const script = readControl(d, "postinst");
      const check = spawnSync("shellcheck", ["-s", "sh", "-"], { input: script, encoding: "utf8" });
      assert.equal(check.status, 0, check.stdout);
      assert.ok(script.includes(`|| ${v.postinst.user.tool === "adduser" ? "adduser" : "useradd"} `));
      assert.match(script, new RegExp(` ${v.postinst.user.name}\\n`));
    });
  }

  it("the units are the ones the project's bootstrap enables and its drop-ins extend", () => {
    const enabled = new Set((["web", "loki", "grafana"] as const).flatMap((r) => servicesFor(r)));
    const dropIns = [
      ...["web", "loki"].flatMap((r) => unitsFor(r as "web" | "loki").map((u) => u.path)),
      GRAFANA_DROP_IN_PATH,
    ];
    for (const d of DAEMONS) {
      const unit = VENDOR_PACKAGES[d].unit.name;
      assert.ok(enabled.has(unit.replace(/\.service$/, "")), `${unit} is not enabled by any role`);
      assert.ok(
        dropIns.some((p) => p.startsWith(`/etc/systemd/system/${unit}.d/`)),
        `no project drop-in extends ${unit}`,
      );
    }
    assert.equal(VENDOR_PACKAGES.loki.config.path, LOKI_CONFIG_PATH);
    assert.equal(VENDOR_PACKAGES.alloy.config.path, ALLOY_CONFIG_PATH);
    assert.equal(VENDOR_PACKAGES.alloy.defaults?.path, ALLOY_DEFAULTS_PATH);
  });

  it("the postinst runs the vendor's systemctl steps only on a first install, and each may fail", () => {
    const script = renderPostinst("loki.service", VENDOR_PACKAGES.loki.postinst);
    for (const verb of ["unmask loki", "preset loki", "enable loki", "restart loki"])
      assert.ok(script.includes(`systemctl ${verb} || :`), verb);
    assert.match(script, /if \[ -z "\$2" \]/);
    // Loki's script has no `set -e` (a missing adduser does not fail the install); Alloy's and Grafana's do.
    assert.doesNotMatch(script, /^set -e$/m);
    for (const d of ["alloy", "grafana"] as const) assert.match(readControl(d, "postinst"), /^set -e$/m);
    // Alloy's and Grafana's postinsts never start the service on a first install.
    for (const d of ["alloy", "grafana"] as const)
      assert.doesNotMatch(readControl(d, "postinst"), /systemctl (enable|start)/);
  });
});

function readControl(d: Daemon, member: string): string {
  const dir = path.join(tmp, "control", d);
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    sh("dpkg-deb", ["-e", pkgFile(d), dir]);
  }
  return fs.readFileSync(path.join(dir, member), "utf8");
}

describe("the signed repository", () => {
  it("has the shape of Grafana's: suite, component, keyring path, a key URL under its URI", () => {
    assert.equal(repo.suite, GRAFANA_APT.suite);
    assert.deepEqual(repo.components, GRAFANA_APT.components);
    assert.equal(repo.keyringPath, GRAFANA_APT.keyringPath);
    assert.equal(repo.keyUrl, `${repo.uri}/${KEY_FILE}`);
    assert.match(repo.keyFingerprint, /^[0-9A-F]{40}$/);
    assert.notEqual(repo.keyFingerprint, GRAFANA_APT.keyFingerprint);
  });

  it("exports the key it signs with: the fingerprint the bootstrap computes matches", () => {
    const served = fs.readFileSync(path.join(repo.dir, KEY_FILE), "utf8");
    assert.equal(served, repo.armoredKey);
    assert.equal(fingerprintOf(served), repo.keyFingerprint);
  });

  it("InRelease verifies with the exported key, and not with another key", () => {
    const keyring = path.join(tmp, "keyring.gpg");
    fs.writeFileSync(keyring, execFileSync("gpg", ["--batch", "--dearmor"], { input: repo.armoredKey }));
    const inRelease = path.join(repo.dir, "dists", repo.suite, "InRelease");
    const ok = spawnSync("gpgv", ["--status-fd", "1", "--keyring", keyring, inRelease], { encoding: "utf8" });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`VALIDSIG ${repo.keyFingerprint}`));

    const other = buildStandinRepository(path.join(tmp, "other-repo"));
    const otherRing = path.join(tmp, "other.gpg");
    fs.writeFileSync(otherRing, execFileSync("gpg", ["--batch", "--dearmor"], { input: other.armoredKey }));
    assert.notEqual(other.keyFingerprint, repo.keyFingerprint, "each build must make its own key");
    const bad = spawnSync("gpgv", ["--keyring", otherRing, inRelease], { encoding: "utf8" });
    assert.notEqual(bad.status, 0);
  });

  it("apt, with the key as signed-by, accepts it; it offers the pin and the next patch, and only the program's preferences keep the pin", () => {
    const { root: apt, opts } = aptSandbox(tmp);
    const keyring = path.join(apt, "grafana.gpg");
    fs.writeFileSync(keyring, execFileSync("gpg", ["--batch", "--dearmor"], { input: repo.armoredKey }));
    fs.writeFileSync(
      path.join(apt, "etc/sources.list"),
      `deb [signed-by=${keyring}] ${repo.uri} ${repo.suite} ${repo.components.join(" ")}\n`,
    );
    const update = spawnSync("apt-get", [...opts, "update"], { encoding: "utf8" });
    assert.equal(update.status, 0, update.stderr);
    assert.doesNotMatch(update.stdout + update.stderr, /NO_PUBKEY|not signed|^W:|^E:/m);
    const candidate = (d: Daemon): string => {
      const policy = sh("apt-cache", [...opts, "policy", VERSIONS[d].package]);
      const pinned = VERSIONS[d].aptPin;
      const next = repo.newer.find((p) => p.daemon === d)?.version ?? "";
      // Both are offered, and the newer one is a next patch, not a re-issue the pins accept.
      assert.equal(next, nextPatchVersion(pinned));
      for (const v of [pinned, next])
        assert.match(policy, new RegExp(`^ +(\\*\\*\\* )?${v.replace(/[.+]/g, "\\$&")} `, "m"), policy);
      return /Candidate: (\S+)/.exec(policy)?.[1] ?? policy;
    };
    // Without the preferences file apt would install the newer release...
    for (const d of DAEMONS) assert.equal(candidate(d), nextPatchVersion(VERSIONS[d].aptPin), `${d} without pins`);
    // ...with the program's own (templates/host/aptPins.ts), the pin.
    fs.writeFileSync(path.join(apt, "etc/preferences.d", "titan-pins"), renderAptPreferences());
    for (const d of DAEMONS) assert.equal(candidate(d), VERSIONS[d].aptPin, `${d} with the program's pins`);
  });
});

/** A port nobody listens on right now (the kernel picks it). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function get(url: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers["content-type"]) }));
      })
      .on("error", reject);
  });
}

/** Polls until the URL answers 200; fails at once if the process exits first. */
async function waitHealthy(child: ChildProcess, url: string, log: () => string, limitMs = 15000): Promise<string> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`stand-in exited (${child.exitCode ?? child.signalCode}) before ${url} answered:\n${log()}`);
    try {
      const res = await get(url);
      if (res.status === 200) return res.body;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${limitMs} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Host paths in argv/env moved under the package's unpacked root, as if it were `/`. */
const under = (root: string, value: string): string =>
  value.replace(/(^|=)(\/(?:etc|usr|var|run)\/[^\s]*)/g, (_, pre: string, p: string) => pre + path.join(root, p));

interface Started {
  readonly child: ChildProcess;
  readonly log: () => string;
  readonly argv: readonly string[];
}

function startUnit(d: Daemon, env: Record<string, string>, patch: (argv: string[]) => string[] = (a) => a): Started {
  const v: VendorPackage = VENDOR_PACKAGES[d];
  const root = roots[d];
  const exec = String(v.unit.file.Service?.ExecStart);
  const argv = patch(expandExecStart(exec, env).map((a) => under(root, a)));
  const workDir = v.unit.file.Service?.WorkingDirectory;
  const cwd = workDir ? path.join(root, String(workDir)) : root;
  fs.mkdirSync(cwd, { recursive: true });
  // The binary's shebang is /usr/bin/python3; run it through that interpreter explicitly.
  const child = spawn("/usr/bin/python3", argv, { cwd, env: { PATH: "/usr/bin:/bin", ...env }, stdio: "pipe" });
  let out = "";
  child.stdout?.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (out += c.toString()));
  return { child, log: () => out, argv };
}

async function stop(s: Started): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise((r) => s.child.once("exit", r));
  if (s.child.pid) process.kill(s.child.pid, "SIGTERM");
  await exited;
}

function writeUnder(root: string, file: string, content: string): void {
  const full = path.join(root, file);
  fs.mkdirSync(path.dirname(full), { recursive: true });
  fs.writeFileSync(full, content);
}

async function checkServes(s: Started, port: number, health: string): Promise<string> {
  const body = await waitHealthy(s.child, `http://127.0.0.1:${port}${health}`, s.log);
  const metrics = await get(`http://127.0.0.1:${port}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.type, /^text\/plain; version=0\.0\.4/);
  assert.match(metrics.body, /^# TYPE standin_info gauge$/m);
  assert.match(metrics.body, /^standin_info\{daemon="[a-z]+",version="[^"]+"\} 1$/m);
  const other = await get(`http://127.0.0.1:${port}/loki/api/v1/push`);
  assert.equal(other.status, 404, "a stand-in must not pretend to serve the daemon's API");
  return body;
}

describe("each stand-in, started as its unit starts it, with the project's rendered config", () => {
  it("loki: reads /etc/loki/config.yml from -config.file and serves /ready on server.http_listen_port", async () => {
    const root = roots.loki;
    const port = await freePort();
    const config = lokiConfig(testContext());
    assert.equal(config.server.http_listen_port, SERVICES.loki.port);
    // Loopback and a free port instead of :3100; the state dir inside the test's root.
    const local = {
      ...config,
      server: { ...config.server, http_listen_port: port, http_listen_address: "127.0.0.1" },
      common: { ...config.common, path_prefix: path.join(root, config.common.path_prefix) },
    };
    writeUnder(root, LOKI_CONFIG_PATH, renderLokiYaml(local));
    const s = startUnit("loki", {});
    try {
      assert.deepEqual(s.argv.slice(1), ["-config.file", path.join(root, LOKI_CONFIG_PATH)]);
      assert.equal(await checkServes(s, port, "/ready"), "ready\n");
      assert.ok(fs.existsSync(path.join(local.common.path_prefix, "standin-was-here")), "path_prefix not written");
      // Its record of the start, which the fleet's Loki check reads (checks/loki.ts).
      assert.match(
        s.log(),
        /STAND-IN loki \S+: started on config \S+\/etc\/loki\/config\.yml sha256 [0-9a-f]{64} first line: # Loki .*Rendered by templates\/loki\/config\.ts/,
      );
    } finally {
      await stop(s);
    }
    assert.equal(s.child.exitCode, 0, s.log());
  });

  it("alloy: takes $CUSTOM_ARGS and $CONFIG_FILE from the rendered /etc/default/alloy", async () => {
    const root = roots.alloy;
    const ctx = testContext();
    const web = ctx.plan.hosts.find((h) => h.role === "web");
    assert.ok(web);
    const files = renderAlloyFiles(ctx, web);
    for (const f of files) writeUnder(root, f.path, f.content);
    const defaults = parseEnvironmentFile(files.find((f) => f.path === ALLOY_DEFAULTS_PATH)?.content ?? "");
    const port = await freePort();
    const rendered = `--server.http.listen-addr=0.0.0.0:${SERVICES.alloy.port}`;
    const s = startUnit("alloy", { HOSTNAME: "web-1", ALLOY_DEPLOY_MODE: "deb", ...defaults }, (argv) => {
      assert.ok(argv.includes(rendered), `the rendered args lack ${rendered}: ${argv.join(" ")}`);
      return argv.map((a) => (a === rendered ? `--server.http.listen-addr=127.0.0.1:${port}` : a));
    });
    try {
      assert.equal(s.argv[1], "run");
      assert.equal(s.argv[s.argv.length - 1], path.join(root, ALLOY_CONFIG_PATH));
      assert.ok(s.argv.includes("--disable-reporting"));
      assert.equal(await checkServes(s, port, "/-/ready"), "Alloy is ready.\n");
      assert.ok(fs.existsSync(path.join(root, "var/lib/alloy/data/standin-was-here")), "--storage.path not written");
    } finally {
      await stop(s);
    }
    assert.equal(s.child.exitCode, 0, s.log());
  });

  it("grafana: the unit's ${...} from /etc/default/grafana-server, the port from GF_SERVER_HTTP_PORT", async () => {
    const root = roots.grafana;
    const v = VENDOR_PACKAGES.grafana;
    const env = parseEnvironmentFile(fs.readFileSync(path.join(root, v.defaults?.path ?? ""), "utf8"));
    const gf = grafanaEnvironment(testContext());
    assert.equal(gf.GF_SERVER_HTTP_PORT, String(SERVICES.grafana.port));
    const port = await freePort();
    // What the postinst would have done: the sample config in place, the runtime dir made by systemd.
    writeUnder(
      root,
      "/etc/grafana/grafana.ini",
      fs.readFileSync(path.join(root, "usr/share/grafana/conf/sample.ini"), "utf8"),
    );
    fs.mkdirSync(path.join(root, "var/run/grafana"), { recursive: true });
    // Grafana reads $__file{} itself and refuses to start without the file (pkg/setting/expanders.go).
    fs.writeFileSync(path.join(tmp, "unit-admin-password"), "unit-password");
    const s = startUnit("grafana", {
      ...env,
      ...gf,
      GF_SECURITY_ADMIN_PASSWORD: `$__file{${path.join(tmp, "unit-admin-password")}}`,
      // /metrics without credentials here (checkServes); the basic auth is checked below.
      GF_METRICS_BASIC_AUTH_USERNAME: "",
      GF_METRICS_BASIC_AUTH_PASSWORD: "",
      GF_SERVER_HTTP_PORT: String(port),
      GF_SERVER_HTTP_ADDR: "127.0.0.1",
    });
    try {
      assert.ok(s.argv.includes("--packaging=deb"));
      assert.ok(s.argv.includes(`--config=${path.join(root, "/etc/grafana/grafana.ini")}`));
      const health = JSON.parse(await checkServes(s, port, "/api/health")) as Record<string, string>;
      assert.equal(health.version, VERSIONS.grafana.version);
      assert.equal(
        fs.readFileSync(path.join(root, "var/run/grafana/grafana-server.pid"), "utf8").trim(),
        String(s.child.pid),
      );
      assert.ok(fs.existsSync(path.join(root, "var/lib/grafana/standin-was-here")), "paths.data not written");
    } finally {
      await stop(s);
    }
    assert.equal(s.child.exitCode, 0, s.log());
  });

  it("grafana: the push's `grafana cli … admin reset-admin-password` sets the password /api/user accepts", async () => {
    const root = roots.grafana;
    const v = VENDOR_PACKAGES.grafana;
    const env = parseEnvironmentFile(fs.readFileSync(path.join(root, v.defaults?.path ?? ""), "utf8"));
    const data = fs.mkdtempSync(path.join(tmp, "grafana-data-"));
    const passwordFile = path.join(tmp, "admin_password");
    fs.writeFileSync(passwordFile, "first-password-0123");
    const metricsFile = path.join(tmp, "metrics_password");
    fs.writeFileSync(metricsFile, "metrics-password-0123");
    const gf = grafanaEnvironment(testContext({ grafanaAdminUser: "ops-lead" }));
    const port = await freePort();
    writeUnder(
      root,
      "/etc/grafana/grafana.ini",
      fs.readFileSync(path.join(root, "usr/share/grafana/conf/sample.ini"), "utf8"),
    );
    fs.mkdirSync(path.join(root, "var/run/grafana"), { recursive: true });
    const s = startUnit(
      "grafana",
      {
        ...env,
        ...gf,
        GF_SECURITY_ADMIN_PASSWORD: `$__file{${passwordFile}}`,
        GF_METRICS_BASIC_AUTH_PASSWORD: `$__file{${metricsFile}}`,
        GF_SERVER_HTTP_PORT: String(port),
        GF_SERVER_HTTP_ADDR: "127.0.0.1",
      },
      (argv) => argv.map((a) => a.replace(/cfg:default\.paths\.data=\S+/, `cfg:default.paths.data=${data}`)),
    );
    const signIn = async (password: string) =>
      (
        await fetch(`http://127.0.0.1:${port}/api/user`, {
          headers: { Authorization: `Basic ${Buffer.from(`ops-lead:${password}`).toString("base64")}` },
        })
      ).status;
    // The push's own command line, with the package's paths under this root and this data dir.
    const cli = GRAFANA_RESET_PASSWORD.replace(/^sudo -u grafana grafana /, "")
      .replace(/ \//g, ` ${root}/`)
      .replace(/cfg:default\.paths\.data=\S+/, `cfg:default.paths.data=${data}`);
    const reset = (password: string, args = cli) =>
      spawnSync("sh", ["-c", `/usr/bin/python3 ${path.join(root, v.binary)} ${args}`], {
        input: `${password}\n`,
        encoding: "utf8",
      });
    try {
      await waitHealthy(s.child, `http://127.0.0.1:${port}/api/health`, s.log);
      assert.equal(await signIn("first-password-0123"), 200, "the first start creates the configured admin");
      const r = reset("second-password-4567");
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /STAND-IN grafana/);
      assert.equal(await signIn("second-password-4567"), 200, "the new password logs in");
      assert.equal(await signIn("first-password-0123"), 401, "the old one is refused");
      // Grafana's CLI (urfave/cli, pkg/cmd/grafana/main.go) exits 1 on any error.
      assert.equal(reset("x", `${cli} --no-such-flag`).status, 1);
      assert.equal(reset("abc").status, 1, "new password is too short");
      assert.equal(await signIn("second-password-4567"), 200);
      // pkg/api/http_server.go metricsEndpoint: 401 without the [metrics] credentials.
      const metrics = (auth?: string) =>
        fetch(`http://127.0.0.1:${port}/metrics`, { headers: auth ? { Authorization: `Basic ${auth}` } : {} });
      assert.equal((await metrics()).status, 401);
      const user = gf.GF_METRICS_BASIC_AUTH_USERNAME;
      assert.equal((await metrics(Buffer.from(`${user}:wrong`).toString("base64"))).status, 401);
      assert.equal((await metrics(Buffer.from(`${user}:metrics-password-0123`).toString("base64"))).status, 200);
    } finally {
      await stop(s);
    }
  });

  for (const [d, missing] of [
    ["loki", LOKI_CONFIG_PATH],
    ["alloy", ALLOY_CONFIG_PATH],
    ["grafana", "/etc/grafana/grafana.ini"],
  ] as const) {
    it(`${d}: fails like the daemon when the config file it is given is missing`, () => {
      const root = fs.mkdtempSync(path.join(tmp, `empty-${d}-`));
      const v = VENDOR_PACKAGES[d];
      const binary = path.join(roots[d], v.binary);
      const args: Record<Daemon, string[]> = {
        loki: ["-config.file", path.join(root, missing)],
        alloy: ["run", path.join(root, missing)],
        grafana: [
          "server",
          `--homepath=${path.join(roots.grafana, "usr/share/grafana")}`,
          `--config=${path.join(root, missing)}`,
        ],
      };
      const r = spawnSync("/usr/bin/python3", [binary, ...args[d]], { encoding: "utf8", timeout: 10000 });
      assert.equal(r.status, 1, r.stderr);
      assert.ok(r.stderr.includes(path.join(root, missing)), r.stderr);
    });
  }

  it("loki: refuses -verify-config rather than pass a config it cannot check", () => {
    const cfg = path.join(tmp, "verify.yml");
    fs.writeFileSync(cfg, YAML.stringify({ server: { http_listen_port: 1 } }));
    const r = spawnSync(
      "/usr/bin/python3",
      [path.join(roots.loki, "/usr/bin/loki"), "-config.file", cfg, "-verify-config"],
      {
        encoding: "utf8",
      },
    );
    assert.equal(r.status, 2);
    assert.match(r.stderr, /cannot verify/);
  });
});

/**
 * The effect of a push on the running daemon: the Grafana stand-in provisions the program's own
 * rendered alert rules into its store and answers them on Grafana's provisioning API, and the
 * Loki stand-in answers /config with the rendered config; each asked through the fleet's own
 * checks (checks/effects.ts). Every answer below comes from the files, so a stand-in that
 * ignored them fails.
 */
describe("stand-ins answer with what the program pushed (checks/effects.ts)", () => {
  const local = { name: "loopback", privateIp: "127.0.0.1" };
  const login: GrafanaLogin = { user: "ops-lead", password: "effects-password-0123" };

  /** The rendered provisioning tree of `ctx` written under `dir` (for PROVISIONING_DIR). */
  function writeProvisioning(dir: string, ctx: TemplateContext, opts: GrafanaRenderOptions): string {
    const files = renderGrafanaFiles(ctx, opts).filter((f) => f.path.startsWith(`${PROVISIONING_DIR}/`));
    assert.ok(
      files.some((f) => f.path === GRAFANA_PATHS.alertRules),
      "no rules file rendered",
    );
    for (const f of files) writeUnder(dir, f.path.slice(PROVISIONING_DIR.length), f.content);
    return dir;
  }

  /** grafana-server as its unit starts it, on loopback, with this data and provisioning directory. */
  async function startGrafana(data: string, provisioning: string): Promise<{ s: Started; port: number }> {
    const root = roots.grafana;
    const env = parseEnvironmentFile(
      fs.readFileSync(path.join(root, VENDOR_PACKAGES.grafana.defaults?.path ?? ""), "utf8"),
    );
    const passwordFile = path.join(tmp, "effects-admin-password");
    fs.writeFileSync(passwordFile, login.password);
    writeUnder(
      root,
      "/etc/grafana/grafana.ini",
      fs.readFileSync(path.join(root, "usr/share/grafana/conf/sample.ini"), "utf8"),
    );
    fs.mkdirSync(path.join(root, "var/run/grafana"), { recursive: true });
    const port = await freePort();
    const s = startUnit(
      "grafana",
      {
        ...env,
        ...grafanaEnvironment(testContext({ grafanaAdminUser: login.user })),
        GF_SECURITY_ADMIN_PASSWORD: `$__file{${passwordFile}}`,
        GF_METRICS_BASIC_AUTH_USERNAME: "",
        GF_METRICS_BASIC_AUTH_PASSWORD: "",
        GF_SERVER_HTTP_PORT: String(port),
        GF_SERVER_HTTP_ADDR: "127.0.0.1",
      },
      (argv) => {
        // The unit's own paths, moved to this test's directories.
        const wanted = [`cfg:default.paths.provisioning=${path.join(root, PROVISIONING_DIR)}`];
        assert.ok(argv.includes(wanted[0]), `the unit passes no ${wanted[0]}: ${argv.join(" ")}`);
        return argv.map((a) =>
          a
            .replace(/^cfg:default\.paths\.data=\S+/, `cfg:default.paths.data=${data}`)
            .replace(/^cfg:default\.paths\.provisioning=\S+/, `cfg:default.paths.provisioning=${provisioning}`),
        );
      },
    );
    await waitHealthy(s.child, `http://127.0.0.1:${port}/api/health`, s.log);
    return { s, port };
  }

  it("grafana: answers every rule of the table with its threshold; a threshold changed in the config is in effect after a restart", async () => {
    const data = fs.mkdtempSync(path.join(tmp, "effects-data-"));
    const prov = fs.mkdtempSync(path.join(tmp, "effects-prov-"));
    const before = testContext();
    const defs = alertDefinitions(before.config);
    writeProvisioning(prov, before, { slackWebhookConfigured: false });
    let { s, port } = await startGrafana(data, prov);
    try {
      assert.deepEqual(await grafanaRuleUids(local, login, port), defs.map((d) => d.uid).sort());
      for (const d of defs) {
        assert.equal(await grafanaRuleThreshold(local, d.uid, login, port), d.threshold, d.uid);
        const rule = await grafanaRule(local, d.uid, login, port);
        assert.equal(rule.title, d.name);
        assert.equal(rule.ruleGroup, ALERT_GROUP.name);
        assert.equal(rule.for, d.for);
        assert.equal(rule.labels?.severity, d.severity);
        assert.match(rule.folderUID, /^[a-z0-9]+$/);
      }
      // Basic auth as on every API route: no credentials, no rules.
      const anonymous = await fetch(`http://127.0.0.1:${port}/api/v1/provisioning/alert-rules`);
      assert.equal(anonymous.status, 401);
      const wrong = grafanaRuleUids(local, { ...login, password: "wrong" }, port);
      await assert.rejects(wrong, /HTTP 401/);
    } finally {
      await stop(s);
    }

    // Every threshold key changed at once, to values no default has.
    const changed = {
      rootDiskCriticalPercent: 71,
      cpuWarningPercent: 67,
      memoryWarningPercent: 73,
      logErrorLinesPerMinute: 123,
    };
    const after = testContext(Object.fromEntries(Object.entries(changed).map(([k, v]) => [k, String(v)])));
    for (const [key, value] of Object.entries(changed))
      assert.notEqual(
        before.config.thresholds[key as keyof typeof changed],
        value,
        `${key}: pick a value the default is not`,
      );
    writeProvisioning(prov, after, { slackWebhookConfigured: false });
    ({ s, port } = await startGrafana(data, prov));
    try {
      for (const [key, uid] of Object.entries(THRESHOLD_RULES)) {
        const value = changed[key as keyof typeof changed];
        // The table agrees that this key sets this rule...
        assert.equal(alertDefinitions(after.config).find((d) => d.uid === uid)?.threshold, value, `${key} -> ${uid}`);
        // ...and the running Grafana holds the new value.
        assert.equal(await grafanaRuleThreshold(local, uid, login, port), value, `${key} (${uid})`);
      }
      const keyed = new Set(Object.values(THRESHOLD_RULES));
      for (const d of defs.filter((x) => !keyed.has(x.uid)))
        assert.equal(await grafanaRuleThreshold(local, d.uid, login, port), d.threshold, `${d.uid} unchanged`);
      assert.match(s.log(), /alert rules provisioned from \S+: 0 created, 4 changed, 0 deleted/);
    } finally {
      await stop(s);
    }
  });

  it("grafana: a rule in deleteRules leaves the store at the next start; a rule whose file vanished without one stays", async () => {
    const data = fs.mkdtempSync(path.join(tmp, "effects-data-"));
    const prov = fs.mkdtempSync(path.join(tmp, "effects-prov-"));
    const ctx = testContext();
    const [first] = alertDefinitions(ctx.config);
    const panel = { dashboardUid: first.dashboardUid, panelId: 1 };
    const retiring = alertRule(
      { ...first, uid: "titan-standin-retiring", name: "Retired by the stand-in test" },
      panel,
    );
    const orphan = alertRule({ ...first, uid: "titan-standin-orphan", name: "Its file is removed" }, panel);
    const orphanFile = path.join(prov, "alerting", "standin-orphan.yaml");
    writeProvisioning(prov, ctx, { slackWebhookConfigured: false, alertRuleChanges: { extra: [retiring] } });
    writeUnder(
      prov,
      "/alerting/standin-orphan.yaml",
      toYaml({
        apiVersion: 1,
        groups: [{ orgId: 1, name: "orphans", folder: "Titan", interval: "1m", rules: [orphan] }],
      }),
    );
    let { s, port } = await startGrafana(data, prov);
    try {
      const uids = await grafanaRuleUids(local, login, port);
      assert.ok(uids.includes(retiring.uid) && uids.includes(orphan.uid), uids.join(" "));
      assert.equal((await grafanaRule(local, orphan.uid, login, port)).ruleGroup, "orphans");
    } finally {
      await stop(s);
    }

    // The next push: the rule retired (deleteRules), the other file gone without a word.
    const retired = { uid: retiring.uid, name: retiring.title, retired: "2026-12-06", why: "removed by the test" };
    writeProvisioning(prov, ctx, { slackWebhookConfigured: false, alertRuleChanges: { retired: [retired] } });
    assert.match(
      fs.readFileSync(path.join(prov, "alerting", path.basename(GRAFANA_PATHS.alertRules)), "utf8"),
      new RegExp(`deleteRules:\\n\\s+- orgId: 1\\n\\s+uid: ${retiring.uid}`),
    );
    fs.rmSync(orphanFile);
    ({ s, port } = await startGrafana(data, prov));
    try {
      const uids = await grafanaRuleUids(local, login, port);
      assert.ok(!uids.includes(retiring.uid), `${retiring.uid} is still stored`);
      await assert.rejects(grafanaRule(local, retiring.uid, login, port), /HTTP 404/);
      assert.ok(uids.includes(orphan.uid), `${orphan.uid} was dropped, though nothing deleted it`);
      for (const d of alertDefinitions(ctx.config)) assert.ok(uids.includes(d.uid), d.uid);
      assert.match(s.log(), /0 created, 0 changed, 1 deleted/);
    } finally {
      await stop(s);
    }
  });

  it("grafana: refuses to start on an alerting file Grafana's provisioning refuses", () => {
    const home = path.join(roots.grafana, "usr/share/grafana");
    const ini = path.join(tmp, "refuse-grafana.ini");
    fs.writeFileSync(ini, "[server]\nhttp_addr = 127.0.0.1\nhttp_port = 1\n");
    const rendered = renderGrafanaFiles(testContext(), { slackWebhookConfigured: false }).find(
      (f) => f.path === GRAFANA_PATHS.alertRules,
    )?.content;
    assert.ok(rendered);
    const cases: [string, string, RegExp][] = [
      [
        "rule without uid",
        rendered.replace("uid: titan-cpu-high\n", "uid: ''\n"),
        /rule 'HighCpuUsage' failed to parse: no UID set/,
      ],
      ["not YAML", `${rendered}\n  : [unclosed\n`, /failure to parse file titan-rules\.yaml/],
      ["`for` not a duration", rendered.replace(/^(\s+)for: 5m$/m, "$1for: 5 minutes"), /failed to parse 'for' field/],
    ];
    for (const [what, content, message] of cases) {
      assert.notEqual(content, rendered, `${what}: the edit did not apply`);
      const prov = fs.mkdtempSync(path.join(tmp, "refuse-prov-"));
      writeUnder(prov, "/alerting/titan-rules.yaml", content);
      const r = spawnSync(
        "/usr/bin/python3",
        [
          path.join(roots.grafana, VENDOR_PACKAGES.grafana.binary),
          "server",
          `--homepath=${home}`,
          `--config=${ini}`,
          `cfg:default.paths.data=${fs.mkdtempSync(path.join(tmp, "refuse-data-"))}`,
          `cfg:default.paths.provisioning=${prov}`,
        ],
        { encoding: "utf8", timeout: 10000 },
      );
      assert.equal(r.status, 1, `${what}: ${r.stderr}`);
      assert.match(r.stderr, message, what);
    }
  });

  it("effects: Prometheus durations as real Loki prints them, and a rule that is not a threshold is named, not guessed", () => {
    // Real Loki's /config prints model.Duration's form (168h as 1w, 264h as 1w4d).
    assert.equal(durationSeconds("1w4d"), 11 * 86400);
    assert.equal(durationSeconds("264h"), 11 * 86400);
    assert.equal(durationSeconds("1h30m"), 5400);
    assert.equal(durationSeconds("0"), 0);
    for (const bad of ["", "7 days", "30", "1m1h"])
      assert.throws(() => durationSeconds(bad), /not a Prometheus duration/);
    const rule = alertRule(alertDefinitions(testContext().config)[0], { dashboardUid: "d", panelId: 1 });
    const asServed = JSON.parse(JSON.stringify(rule)) as ProvisionedAlertRule;
    assert.equal(ruleThreshold(asServed), alertDefinitions(testContext().config)[0].threshold);
    assert.throws(
      () => ruleThreshold({ ...asServed, condition: "B" }),
      new RegExp(`rule ${rule.uid}: condition B is not a threshold`),
    );
    assert.throws(() => ruleThreshold({ ...asServed, condition: "Z" }), /no data entry has the condition's refId "Z"/);
  });

  /** The rendered Loki config of `ctx`, on loopback and a free port, its state in the test's root. */
  async function renderLocalLoki(ctx: TemplateContext): Promise<{ text: string; port: number }> {
    const config = lokiConfig(ctx);
    const port = await freePort();
    const local = {
      ...config,
      server: { ...config.server, http_listen_port: port, http_listen_address: "127.0.0.1" },
      common: { ...config.common, path_prefix: path.join(roots.loki, config.common.path_prefix) },
    };
    return { text: renderLokiYaml(local), port };
  }

  it("loki: /config answers the config it started with, retention_period from lokiRetentionDays", async () => {
    const ctx = testContext({ lokiRetentionDays: "11" });
    const { text, port } = await renderLocalLoki(ctx);
    writeUnder(roots.loki, LOKI_CONFIG_PATH, text);
    const s = startUnit("loki", {});
    try {
      await waitHealthy(s.child, `http://127.0.0.1:${port}/ready`, s.log);
      const running = await lokiRunningConfig(local, port);
      assert.equal(running, text);
      assert.equal(retentionSeconds(running), 11 * 86400);
    } finally {
      await stop(s);
    }
  });

  it("loki: refuses a retention_period that is not a duration and a config without a schema period", async () => {
    const { text } = await renderLocalLoki(testContext());
    const config = YAML.parse(text) as Record<string, Record<string, unknown>>;
    const cases: [string, unknown, RegExp][] = [
      [
        "retention_period: 7 days",
        { ...config, limits_config: { ...config.limits_config, retention_period: "7 days" } },
        /failed parsing config: .*retention_period: unknown unit " days" in duration "7 days"/,
      ],
      ["no schema_config", { ...config, schema_config: undefined }, /must specify at least one schema configuration/],
    ];
    for (const [what, value, message] of cases) {
      const file = path.join(tmp, "refused-loki.yml");
      fs.writeFileSync(file, YAML.stringify(value));
      const r = spawnSync("/usr/bin/python3", [path.join(roots.loki, "/usr/bin/loki"), "-config.file", file], {
        encoding: "utf8",
        timeout: 10000,
      });
      assert.equal(r.status, 1, `${what}: ${r.stderr}`);
      assert.match(r.stderr, message, what);
    }
  });
});
