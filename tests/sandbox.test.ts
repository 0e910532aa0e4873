/**
 * Every sandbox allows what its daemon really does. The daemons with a binary here (Debian's
 * node_exporter and Prometheus, the Titan app and its traffic generator) run under strace with
 * their units' own command lines and are exercised; every call they make is then held against the
 * unit's effective seccomp restrictions, read from the rendered unit (or the package's unit plus
 * our drop-in), as systemd 252 would apply them (tests/sandbox/restrictions.ts, verdict.ts).
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { SERVICES } from "../facts/topology";
import { TITAN_APP_DIR, unitsFor } from "../templates/host/units";
import { PROMETHEUS_CONFIG_PATH, prometheusArgs, renderPrometheusFiles } from "../templates/prometheus/config";
import { SELF_JOB } from "../facts/scrapeJobs";
import { Processes } from "./e2e/processes";
import { parseUnit, serviceDirective, splitWords, unitEnvironment } from "./e2e/systemdUnit";
import { expandExecStart, parseEnvironmentFile } from "./fleet/standins/unitExec";
import {
  effectiveRestrictions,
  loadSyscallGroups,
  type Restrictions,
  type SyscallGroups,
} from "./sandbox/restrictions";
import { parseTraceLine, type Call } from "./sandbox/straceLog";
import { freePort, idsOf, requireRootAndStrace, runAs, startTraced } from "./sandbox/traced";
import { describe as say, violations } from "./sandbox/verdict";
import { ROOT } from "./support/files";
import { titanReadyPids } from "./support/titanReady";
import { waitFor } from "./support/wait";
import { ampTestContext, testContext } from "./support/render";
import {
  AMP_RELAY_ENV_PATH,
  AMP_RELAY_SERVICE,
  AMP_RELAY_UNIT_PATH,
  renderAmpRelayFiles,
} from "../templates/host/ampRelay";

const PACKAGED = "/lib/systemd/system";
const NODE_EXPORTER_UNIT = "prometheus-node-exporter.service";
const PROMETHEUS_UNIT = "prometheus.service";
const FIXTURES = path.join(ROOT, "tests/sandbox/fixtures");

let groups: SyscallGroups;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-sandbox-"));
// Readable by the unprivileged users the daemons run as.
fs.chmodSync(work, 0o755);
// The code those users run, copied where they can reach it: the checkout may sit under a
// directory only root may enter (a clone in a mktemp -d, which is 0700), as a host's
// /opt/titan is not.
const APP = path.join(work, "app");
const RELAY = path.join(work, "relay");
fs.cpSync(path.join(ROOT, "app"), APP, { recursive: true });
fs.cpSync(path.join(ROOT, "relay"), RELAY, { recursive: true });
const procs = new Processes(path.join(work, "logs"));
// A runner that dies early (e.g. its output pipe closed) skips after(): still leave nothing running.
process.once("exit", () => procs.killAllSync());
before(() => {
  groups = loadSyscallGroups();
});
after(async () => {
  await procs.stopAll();
  fs.rmSync(work, { recursive: true, force: true });
});

/** Our rendered drop-ins (and units) for a unit name, in the order systemd reads them. */
function ours(unit: string): string[] {
  const all = ["web", "prometheus", "loki", "grafana"] as const;
  const texts = new Map<string, string>();
  for (const role of all)
    for (const u of unitsFor(role))
      if (u.path.includes(`/${unit}.d/`) || u.path.endsWith(`/${unit}`)) texts.set(u.path, u.content);
  return [...texts.keys()].sort().map((k) => texts.get(k) ?? "");
}

const packaged = (unit: string) => fs.readFileSync(path.join(PACKAGED, unit), "utf8");
const restrictionsOf = (unit: string, texts: string[]) => effectiveRestrictions(unit, texts, groups);

/** No refusal; with a second unit, `calls` is two traces split at `split`, checked together. */
function assertAllowed(calls: readonly Call[], r: Restrictions, second?: Restrictions, split = calls.length): void {
  const parts: [readonly Call[], Restrictions][] = [[calls.slice(0, split), r]];
  if (second) parts.push([calls.slice(split), second]);
  const found: string[] = [];
  for (const [trace, unit] of parts) {
    assert.ok(trace.length > 100, `${unit.unit}: the trace is nearly empty (${trace.length} calls)`);
    found.push(...violations(trace, unit).map(say));
  }
  assert.deepEqual(found, [], "a sandbox refuses what its daemon does");
}

/** Binds a datagram socket at argv[1] that anyone may send to and prints each message (escaped). */
const NOTIFY_RECEIVER = [
  "import os, socket, sys",
  "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)",
  "s.bind(sys.argv[1])",
  "os.chmod(sys.argv[1], 0o666)",
  "print('bound')",
  "while True: print(repr(s.recv(4096).decode()))",
].join("\n");

const calls = (lines: string[]) => lines.map((l) => parseTraceLine(1, l)).filter((c): c is Call => c !== undefined);

describe("the sandbox checker reads systemd 252's rules", () => {
  it("applies SystemCallFilter= lines in order: allow-list, then removals, then additions", () => {
    const unit = "[Service]\nSystemCallFilter=@system-service\nSystemCallFilter=~@privileged\n";
    const r = restrictionsOf("x.service", [unit]);
    const adj = calls(["adjtimex({modes=0}) = 0"]);
    assert.deepEqual(
      violations(adj, r).map((v) => v.directive),
      ["SystemCallFilter"],
    );
    const readded = restrictionsOf("x.service", [unit, "[Service]\nSystemCallFilter=adjtimex\n"]);
    assert.deepEqual(violations(adj, readded), []);
    const reset = restrictionsOf("x.service", [unit, "[Service]\nSystemCallFilter=\n"]);
    assert.equal(reset.syscalls, undefined, "an empty assignment resets the filter");
    assert.deepEqual(violations(calls(['read(3, "", 1) = 0']), r), [], "@default is always in an allow-list");
  });

  it("names the directive behind each implied filter", () => {
    const r = restrictionsOf("x.service", [
      "[Service]\nProtectClock=yes\nMemoryDenyWriteExecute=yes\nRestrictNamespaces=yes\nLockPersonality=yes\n" +
        "RestrictAddressFamilies=AF_INET AF_UNIX\nRestrictRealtime=yes\nRestrictSUIDSGID=yes\n",
    ]);
    const found = violations(
      calls([
        "adjtimex({modes=0}) = 0",
        "socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE) = 3",
        "socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 4",
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE|PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0",
        "mmap(NULL, 4096, PROT_READ|PROT_EXEC, MAP_PRIVATE, 3, 0) = 0x7f0",
        "mprotect(0x7f0, 4096, PROT_READ|PROT_EXEC) = 0",
        "unshare(CLONE_NEWNS) = 0",
        "personality(0xffffffff) = 0",
        "sched_setscheduler(0, SCHED_FIFO, [1]) = 0",
        "fchmod(3, 04755) = 0",
        "fchmod(3, 0640) = 0",
      ]),
      r,
    ).map((v) => `${v.directive} ${v.what}`);
    assert.deepEqual(found.sort(), [
      "LockPersonality personality(0xffffffff)",
      "MemoryDenyWriteExecute mmap(PROT_READ|PROT_WRITE|PROT_EXEC)",
      "MemoryDenyWriteExecute mprotect(PROT_READ|PROT_EXEC)",
      "ProtectClock adjtimex",
      "RestrictAddressFamilies socket(AF_NETLINK)",
      "RestrictNamespaces unshare(CLONE_NEWNS)",
      "RestrictRealtime sched_setscheduler(SCHED_FIFO)",
      "RestrictSUIDSGID fchmod(04755)",
    ]);
  });

  it("holds clone3 to the clone() glibc falls back to when RestrictNamespaces= answers ENOSYS", () => {
    const thread =
      "clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, exit_signal=0}, 88) = 7";
    const onlyNs = restrictionsOf("x.service", ["[Service]\nRestrictNamespaces=yes\n"]);
    assert.deepEqual(violations(calls([thread]), onlyNs), []);
    const noClone = restrictionsOf("x.service", ["[Service]\nRestrictNamespaces=yes\nSystemCallFilter=~clone\n"]);
    assert.deepEqual(
      violations(calls([thread]), noClone).map((v) => v.what),
      ["clone"],
    );
    const newNs = "clone3({flags=CLONE_NEWUSER|CLONE_NEWNS, exit_signal=SIGCHLD}, 88) = 7";
    assert.deepEqual(
      violations(calls([newNs]), onlyNs).map((v) => v.directive),
      ["RestrictNamespaces"],
    );
  });

  it("refuses unit values it cannot read, naming unit, key and value", () => {
    assert.throws(
      () => restrictionsOf("x.service", ["[Service]\nProtectClock=maybe\n"]),
      /x\.service: ProtectClock=maybe/,
    );
    assert.throws(
      () => restrictionsOf("x.service", ["[Service]\nSystemCallFilter=~adjtimex:EPERM\n"]),
      /x\.service: SystemCallFilter=~adjtimex:EPERM/,
    );
  });
});

describe("every sandbox allows what its daemon really does", () => {
  let nodeExporterTrace: Call[] = [];

  before(() => requireRootAndStrace());

  it("node_exporter, every default collector scraped, under Debian's unit and our drop-in", async () => {
    const unit = parseUnit(packaged(NODE_EXPORTER_UNIT));
    const env = parseEnvironmentFile(fs.readFileSync(serviceDirective(unit, "EnvironmentFile"), "utf8"));
    const port = await freePort();
    // The unit's own command line; only the listen address moves to a free loopback port.
    const argv = [
      ...expandExecStart(serviceDirective(unit, "ExecStart"), env),
      `--web.listen-address=127.0.0.1:${port}`,
    ];
    const daemon = startTraced(procs, work, "node-exporter", runAs(serviceDirective(unit, "User")), argv, {
      env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
    });
    const scrape = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    // Collectors run on every scrape: wait for a full one, then scrape again.
    await daemon.until("a scrape with every collector", 60_000, async () => {
      const body = await scrape();
      return /node_scrape_collector_success\{collector="timex"\}/.test(body) &&
        /node_scrape_collector_success\{collector="netdev"\}/.test(body)
        ? body
        : undefined;
    });
    const body = await scrape();
    assert.ok(/^node_network_receive_bytes_total\{device="/m.test(body), "netdev reports (over netlink)");
    assert.ok(/^node_timex_sync_status /m.test(body), "timex reports (adjtimex)");
    nodeExporterTrace = await daemon.stop();
    assertAllowed(
      nodeExporterTrace,
      restrictionsOf(NODE_EXPORTER_UNIT, [packaged(NODE_EXPORTER_UNIT), ...ours(NODE_EXPORTER_UNIT)]),
    );
  });

  it("the node_exporter drop-in before issue 9 fails this check (netlink and adjtimex)", () => {
    assert.ok(nodeExporterTrace.length > 0, "needs the node_exporter trace above");
    const before = fs.readFileSync(path.join(FIXTURES, "node-exporter-drop-in-before-issue-9.conf"), "utf8");
    const found = violations(
      nodeExporterTrace,
      restrictionsOf(NODE_EXPORTER_UNIT, [packaged(NODE_EXPORTER_UNIT), before]),
    );
    const named = found.map((v) => `${v.directive} ${v.what}`);
    assert.ok(named.includes("RestrictAddressFamilies socket(AF_NETLINK)"), named.join("\n"));
    assert.ok(named.includes("SystemCallFilter adjtimex"), named.join("\n"));
    assert.ok(named.includes("ProtectClock adjtimex"), named.join("\n"));
    assert.match(say(found[0]), /^prometheus-node-exporter\.service: .* is refused by [A-Za-z]+= \(e\.g\. /);
  });

  it("Prometheus, discovering, scraping and answering queries, under Debian's unit and our drop-ins", async () => {
    const unit = parseUnit(packaged(PROMETHEUS_UNIT));
    const user = runAs(serviceDirective(unit, "User"));
    const ids = idsOf(user);
    const port = await freePort();
    const closedPort = await freePort();
    const dir = path.join(work, "prometheus");
    fs.mkdirSync(path.join(dir, "data"), { recursive: true });
    fs.chownSync(path.join(dir, "data"), ids.uid, ids.gid);
    // The rendered prometheus.yml: discovery talks to an EC2 endpoint that refuses (its HTTP
    // client runs all the same) and the self-scrape points at this run's port.
    const rendered = renderPrometheusFiles(testContext(), { ec2Endpoint: `http://127.0.0.1:${closedPort}` });
    const config = rendered.find((f) => f.path === PROMETHEUS_CONFIG_PATH)?.content ?? "";
    const self = `localhost:${SERVICES.prometheus.port}`;
    assert.ok(config.includes(self), "the rendered self-scrape target");
    const configPath = path.join(dir, "prometheus.yml");
    fs.writeFileSync(configPath, config.replace(self, `127.0.0.1:${port}`));
    const args = prometheusArgs(testContext()).map((a) =>
      a
        .replace(/^--config\.file=.*/, `--config.file=${configPath}`)
        .replace(/^--storage\.tsdb\.path=.*/, `--storage.tsdb.path=${path.join(dir, "data")}`)
        .replace(/^--web\.listen-address=.*/, `--web.listen-address=127.0.0.1:${port}`),
    );
    const argv = expandExecStart(serviceDirective(unit, "ExecStart"), { ARGS: args.join(" ") });
    const daemon = startTraced(procs, work, "prometheus", user, argv, {
      env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
    });
    const query = async (q: string) => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
      return (await res.json()) as { data?: { result?: { value: [number, string] }[] } };
    };
    await daemon.until("its own scrape to succeed", 60_000, async () =>
      (await query(`up{job="${SELF_JOB}"}`)).data?.result?.[0]?.value[1] === "1" ? true : undefined,
    );
    await daemon.until("a discovery attempt", 60_000, async () => {
      const r = await query(`prometheus_sd_refresh_failures_total{mechanism="ec2"}`);
      return r.data?.result?.some((s) => Number(s.value[1]) > 0) ? true : undefined;
    });
    const trace = await daemon.stop();
    assertAllowed(trace, restrictionsOf(PROMETHEUS_UNIT, [packaged(PROMETHEUS_UNIT), ...ours(PROMETHEUS_UNIT)]));
  });

  it("the Titan app and its traffic generator, serving and sending every kind of request, under their units", async () => {
    const titanText = unitsFor("web").find((u) => u.path.endsWith("/titan.service"))?.content ?? "";
    const trafficText = unitsFor("web").find((u) => u.path.endsWith("/titan-traffic.service"))?.content ?? "";
    const titan = parseUnit(titanText);
    const traffic = parseUnit(trafficText);
    const appPath = (p: string) => (p.startsWith(TITAN_APP_DIR) ? path.join(APP, p.slice(TITAN_APP_DIR.length)) : p);
    const appUser = runAs(serviceDirective(titan, "User"));
    // DynamicUser=yes: some unprivileged uid.
    const trafficUser = runAs(undefined);
    const ids = idsOf(appUser);
    const dir = path.join(work, "titan");
    const dirs = { log: path.join(dir, "log"), data: path.join(dir, "data"), run: path.join(dir, "run") };
    for (const d of Object.values(dirs)) {
      fs.mkdirSync(d, { recursive: true });
      fs.chownSync(d, ids.uid, ids.gid);
    }
    const port = await freePort();
    // systemd's notify socket, played by a datagram socket the app's user may write to: the
    // master's READY=1 and its watchdog pings (Type=notify, WatchdogSec=) are traced too.
    const notifySocket = path.join(work, "notify");
    const notify = procs.start("notify", "/usr/bin/python3", ["-u", "-c", NOTIFY_RECEIVER, notifySocket], {
      env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
    });
    const notifyLog = () => fs.readFileSync(notify.logPath, "utf8");
    await waitFor("the notify socket", () => (notifyLog().includes("bound\n") ? true : undefined), {
      timeoutMs: 20_000,
      intervalMs: 100,
      why: notifyLog,
    });
    assert.match(serviceDirective(titan, "Type"), /^notify$/);
    const [cmd, ...args] = splitWords(serviceDirective(titan, "ExecStart")).map(appPath);
    const app = startTraced(procs, work, "titan", appUser, [cmd, ...args], {
      env: {
        PATH: "/usr/bin:/bin",
        LANG: "C.UTF-8",
        ...unitEnvironment(titan),
        TITAN_BIND: "127.0.0.1",
        TITAN_PORT: String(port),
        TITAN_LOG_DIR: dirs.log,
        TITAN_DATA_DIR: dirs.data,
        RUNTIME_DIRECTORY: dirs.run,
        NOTIFY_SOCKET: notifySocket,
        // A short WatchdogSec= so the trace holds pings (one a second) well before the app stops.
        WATCHDOG_USEC: "2000000",
      },
    });
    const base = `http://127.0.0.1:${port}`;
    // Every worker serving (each logs a ready line), not the first answer: a worker still
    // booting when the app is stopped would be traced only in part.
    const workers = Number(unitEnvironment(titan).TITAN_WORKERS);
    assert.ok(workers > 0, `titan's unit sets TITAN_WORKERS: ${unitEnvironment(titan).TITAN_WORKERS}`);
    await app.until(`all ${workers} workers to serve`, 60_000, () =>
      Promise.resolve(
        titanReadyPids(fs.readFileSync(procs.get("titan").logPath, "utf8")).size === workers ? true : undefined,
      ),
    );
    await app.until("the master's READY=1 and a watchdog ping", 20_000, () =>
      Promise.resolve(/READY=1/.test(notifyLog()) && /WATCHDOG=1/.test(notifyLog()) ? true : undefined),
    );
    const [tcmd, ...targs] = splitWords(serviceDirective(traffic, "ExecStart"));
    const generator = startTraced(procs, work, "titan-traffic", trafficUser, [tcmd, ...targs], {
      env: {
        PATH: "/usr/bin:/bin",
        LANG: "C.UTF-8",
        ...unitEnvironment(traffic),
        TITAN_TRAFFIC_TARGET: base,
        TITAN_TRAFFIC_RATE: "20",
      },
      cwd: appPath(serviceDirective(traffic, "WorkingDirectory")),
    });
    // Served: reads, writes (SQLite), bad requests and the metrics page, all from the generator.
    const wanted = [
      'method="POST"',
      'endpoint="/api/transactions"',
      'endpoint="/generate_logs"',
      'endpoint="/process"',
      'status="4',
    ];
    await generator
      .until("the app to count every kind of request", 120_000, async () => {
        if (!app.running()) throw new Error(`the app exited:\n${app.log()}`);
        const body = await (await fetch(`${base}/metrics`)).text();
        return wanted.every((w) => body.includes(w)) ? true : undefined;
      })
      .catch((err: Error) => {
        throw new Error(`${err.message}\n--- the app's log:\n${app.log()}`);
      });
    const trafficTrace = await generator.stop();
    const appTrace = await app.stop();
    assertAllowed(
      [...appTrace, ...trafficTrace],
      restrictionsOf("titan.service", [titanText]),
      restrictionsOf("titan-traffic.service", [trafficText]),
      appTrace.length,
    );
  });

  it("the remediation agent, refusing, acting through systemctl and serving its metrics, under its unit", async () => {
    // Its user, settings file and credential as the unit gives them; systemctl is the real one,
    // traced with it (a child keeps the unit's seccomp filter). This machine has no system bus,
    // so systemctl fails at connect(): the bus path past it is the fleet's to prove.
    const text = unitsFor("web").find((u) => u.path.endsWith("/titan-remediation.service"))?.content ?? "";
    const unit = parseUnit(text);
    const user = runAs(serviceDirective(unit, "User"));
    const ids = idsOf(user);
    const dir = path.join(work, "remediation");
    const creds = path.join(dir, "credentials");
    const state = path.join(dir, "state");
    for (const d of [creds, state]) {
      fs.mkdirSync(d, { recursive: true });
      fs.chownSync(d, ids.uid, ids.gid);
    }
    const secret = "sandbox-secret-0123456789abcdefghijklmnopqrstuvwx";
    fs.writeFileSync(path.join(creds, "hmac-secret"), secret, { mode: 0o400 });
    fs.chownSync(path.join(creds, "hmac-secret"), ids.uid, ids.gid);
    const [port, metricsPort, closedPort] = [await freePort(), await freePort(), await freePort()];
    const host = "titan-sandbox-web-1";
    const [cmd, ...args] = splitWords(serviceDirective(unit, "ExecStart"));
    const agent = startTraced(procs, work, "titan-remediation", user, [cmd, ...args], {
      env: {
        PATH: "/usr/bin:/bin",
        LANG: "C.UTF-8",
        ...unitEnvironment(unit),
        PYTHONPATH: APP,
        CREDENTIALS_DIRECTORY: creds,
        STATE_DIRECTORY: state,
        TITAN_REMEDIATION_MODE: "on",
        TITAN_REMEDIATION_HOST: host,
        TITAN_REMEDIATION_LISTEN: `127.0.0.1:${port}`,
        TITAN_REMEDIATION_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
        TITAN_REMEDIATION_ALLOWED_SOURCES: "127.0.0.1",
        TITAN_REMEDIATION_SIGNATURE_HEADER: "X-Grafana-Alerting-Signature",
        TITAN_REMEDIATION_TIMESTAMP_HEADER: "X-Grafana-Alerting-Timestamp",
        TITAN_REMEDIATION_MAX_SKEW_SECONDS: "300",
        TITAN_REMEDIATION_APP_URL: `http://127.0.0.1:${closedPort}`,
      },
      cwd: APP,
    });
    const metrics = async () => {
      try {
        return await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      } catch {
        return undefined;
      }
    };
    await agent.until("its metrics", 30_000, metrics);
    const post = async (action: string, sign: boolean) => {
      const body = JSON.stringify({
        receiver: "titan-remediation-web-1",
        status: "firing",
        alerts: [
          {
            status: "firing",
            labels: { alertname: "Sandbox", instance: host, remediation: action },
            annotations: {},
            startsAt: "2027-01-15T08:00:00Z",
            endsAt: "0001-01-01T00:00:00Z",
            fingerprint: `sandbox-${action}`,
          },
        ],
      });
      const ts = String(Math.floor(Date.now() / 1000));
      const signature = createHmac("sha256", secret).update(`${ts}:${body}`).digest("hex");
      const headers: Record<string, string> = { "Content-Type": "application/json" };
      if (sign)
        Object.assign(headers, { "X-Grafana-Alerting-Timestamp": ts, "X-Grafana-Alerting-Signature": signature });
      return (await fetch(`http://127.0.0.1:${port}/grafana`, { method: "POST", headers, body })).status;
    };
    assert.equal(await post("restart-app", false), 401);
    for (const action of ["restart-app", "free-disk"]) assert.equal(await post(action, true), 200, agent.log());
    await agent.until("a decision for each action", 60_000, async () => {
      const body = (await metrics()) ?? "";
      return ["restart-app", "free-disk"].every((a) =>
        new RegExp(`actions_total\\{action="${a}",result="\\w+"\\} [1-9]`).test(body),
      )
        ? true
        : undefined;
    });
    const trace = await agent.stop();
    assert.ok(
      trace.some((c) => c.name === "execve" && /systemctl/.test(c.line)),
      "systemctl ran under the trace",
    );
    assertAllowed(trace, restrictionsOf("titan-remediation.service", [text]));
  });

  it("the AMP signing relay, fetching IMDSv2 credentials and forwarding signed writes, under its unit", async () => {
    // metricsStore=amp only. A stand-in IMDS (token, role, credentials) and AMP (200) on
    // loopback; the relay finds the IMDS through botocore's AWS_EC2_METADATA_SERVICE_ENDPOINT.
    const amp = ampTestContext();
    const files = renderAmpRelayFiles(amp);
    const text = files.find((f) => f.path === AMP_RELAY_UNIT_PATH)?.content ?? "";
    const unit = parseUnit(text);
    assert.equal(serviceDirective(unit, "DynamicUser"), "yes");
    const received: string[] = [];
    const stub = http.createServer((req, res) => {
      const body: Buffer[] = [];
      req.on("data", (d: Buffer) => body.push(d));
      req.on("end", () => {
        const url = req.url ?? "";
        if (req.method === "PUT" && url === "/latest/api/token") return void res.end("sandbox-token");
        if (url.startsWith("/latest/") && req.headers["x-aws-ec2-metadata-token"] !== "sandbox-token")
          return void res.writeHead(401).end();
        if (url === "/latest/meta-data/iam/security-credentials/") return void res.end("sandbox-role");
        if (url === "/latest/meta-data/iam/security-credentials/sandbox-role") {
          const expiration = new Date(Date.now() + 6 * 3600_000).toISOString().replace(/\.\d{3}Z$/, "Z");
          return void res.end(
            JSON.stringify({
              Code: "Success",
              AccessKeyId: "ASIASANDBOX",
              SecretAccessKey: "s",
              Token: "t",
              Expiration: expiration,
            }),
          );
        }
        if (req.method === "POST" && url === "/workspaces/ws-sandbox/api/v1/remote_write") {
          received.push(String(req.headers.authorization ?? ""));
          return void res.end();
        }
        res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => stub.listen(0, "127.0.0.1", resolve));
    const stubPort = (stub.address() as { port: number }).port;
    try {
      const port = await freePort();
      const env = {
        PATH: "/usr/bin:/bin",
        LANG: "C.UTF-8",
        ...unitEnvironment(unit),
        ...parseEnvironmentFile(files.find((f) => f.path === AMP_RELAY_ENV_PATH)?.content ?? ""),
        PYTHONPATH: RELAY,
        TITAN_AMP_RELAY_PORT: String(port),
        TITAN_AMP_RELAY_REMOTE_WRITE_URL: `http://127.0.0.1:${stubPort}/workspaces/ws-sandbox/api/v1/remote_write`,
        AWS_EC2_METADATA_SERVICE_ENDPOINT: `http://127.0.0.1:${stubPort}/`,
      };
      const relay = startTraced(
        procs,
        work,
        AMP_RELAY_SERVICE,
        "nobody",
        expandExecStart(serviceDirective(unit, "ExecStart"), env),
        {
          env,
          cwd: "/",
        },
      );
      const write = async () => {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/api/v1/remote_write`, {
            method: "POST",
            headers: { "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf" },
            body: "sandbox",
          });
          return res.status === 200 ? true : undefined;
        } catch {
          return undefined;
        }
      };
      await relay.until("a write forwarded", 30_000, write);
      assert.equal(await write(), true);
      assert.ok(received.length >= 2 && received.every((a) => a.includes("Credential=ASIASANDBOX/")), relay.log());
      assertAllowed(await relay.stop(), restrictionsOf(`${AMP_RELAY_SERVICE}.service`, [text]));
    } finally {
      await new Promise<void>((resolve) => stub.close(() => resolve()));
    }
  });

  it("the free-disk worker, stopping another user's disk fill and rotating the app's logs, under its unit", async () => {
    // Root, as the unit runs it; the demo's file and the logs belong to another user, so the
    // trace holds the calls its capabilities are for: kill(), /proc/<pid>/fd, fchown() (@chown).
    const text = unitsFor("web").find((u) => u.path.endsWith("/titan-free-disk.service"))?.content ?? "";
    const unit = parseUnit(text);
    const other = runAs(undefined);
    const ids = idsOf(other);
    const dir = path.join(work, "free-disk");
    const fill = path.join(dir, "var-tmp");
    const logs = path.join(dir, "log-titan");
    const state = path.join(dir, "state");
    for (const d of [fill, logs, state]) fs.mkdirSync(d, { recursive: true });
    fs.chmodSync(fill, 0o1777);
    fs.chownSync(logs, ids.uid, ids.gid);
    fs.chmodSync(logs, 0o750);
    const log = path.join(logs, "app.log");
    fs.writeFileSync(log, "a line the app wrote\n".repeat(2000));
    fs.chownSync(log, ids.uid, ids.gid);
    fs.chmodSync(log, 0o640);
    // The app's own policy, pointed at the stand-in log directory.
    const policy = path.join(dir, "titan.logrotate");
    fs.writeFileSync(
      policy,
      fs.readFileSync(path.join(ROOT, "app/packaging/titan.logrotate"), "utf8").replaceAll("/var/log/titan", logs),
    );
    // The disk-fill demo as another user: holds its file open until SIGTERM.
    const holder = procs.start(
      "disk-fill",
      // setpriv execs the demo itself: its pid is the one the worker must signal.
      "/usr/bin/setpriv",
      [
        `--reuid=${ids.uid}`,
        `--regid=${ids.gid}`,
        "--clear-groups",
        "/usr/bin/python3",
        "-c",
        `import os, time\nf = open(os.path.join(${JSON.stringify(fill)}, ".titan-disk-fill-%d" % os.getpid()), "wb")\nf.write(b"x" * 65536); f.flush(); print("holding", flush=True)\ntime.sleep(600)`,
      ],
      { env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" } },
    );
    await waitFor(
      "the disk fill to hold its file",
      () => (fs.readFileSync(holder.logPath, "utf8").includes("holding") ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 100, why: () => fs.readFileSync(holder.logPath, "utf8") },
    );
    const [cmd, ...args] = splitWords(serviceDirective(unit, "ExecStart"));
    // Root with only the unit's capabilities, as systemd leaves it: the bounding set is cut
    // before the exec, so root's permitted set is that set (capabilities(7), execve rules).
    const caps = serviceDirective(unit, "CapabilityBoundingSet")
      .split(" ")
      .map((c) => `+${c.replace(/^CAP_/, "").toLowerCase()}`);
    const worker = startTraced(
      procs,
      work,
      "titan-free-disk",
      "root",
      [
        "/usr/bin/setpriv",
        `--bounding-set=-all,${caps.join(",")}`,
        cmd,
        ...args,
        "--fill-dir",
        fill,
        "--log-dir",
        logs,
        "--logrotate-config",
        policy,
        "--state-dir",
        state,
      ],
      {
        env: { PATH: "/usr/bin:/bin:/usr/sbin:/sbin", LANG: "C.UTF-8", ...unitEnvironment(unit) },
        cwd: APP,
      },
    );
    // A oneshot: it exits by itself once done.
    await waitFor("the worker to finish", () => (worker.running() ? undefined : true), {
      timeoutMs: 60_000,
      intervalMs: 200,
      why: () => worker.log(),
    });
    const line = worker
      .log()
      .split("\n")
      .find((l) => l.startsWith("{"));
    assert.ok(line, worker.log());
    const report = JSON.parse(line) as Record<string, unknown>;
    assert.equal(report.ok, true, worker.log());
    assert.deepEqual(report.processes_signalled, [holder.pid]);
    assert.ok(
      fs.readdirSync(logs).some((f) => f.endsWith(".gz")),
      "rotated and compressed",
    );
    // setpriv's own calls (it drops the capabilities) come before it execs the worker.
    const all = await worker.stop();
    const exec = all.findIndex((c) => c.name === "execve" && c.args[0] === `"${cmd}"`);
    assert.ok(exec >= 0, "the worker was exec'd");
    const trace = all.filter((c, i) => c.pid !== all[exec].pid || i >= exec);
    for (const call of ["kill", "fchown"])
      assert.ok(
        trace.some((c) => c.name === call),
        `${call} is in the trace`,
      );
    assertAllowed(trace, restrictionsOf("titan-free-disk.service", [text]));
  });
});
