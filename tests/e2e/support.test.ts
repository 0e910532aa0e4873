/** The e2e run's plumbing: unit files read back, processes stopped, the bridge, expected targets (no root needed). */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { unitsFor } from "../../templates/host/units";
import { bridgeRequest, createBridge } from "./bridge";
import type { Ec2Instance } from "./fakeEc2";
import { decoys } from "./hosts";
import { Processes } from "./processes";
import type { Target } from "./prometheusApi";
import { parseUnit, serviceDirective, splitWords, unitEnvironment } from "./systemdUnit";
import { diffTargets, expectedTargets } from "./targets";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "titan-e2e-unit-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("systemd units read back", () => {
  it("splits words with systemd's quoting", () => {
    assert.deepEqual(splitWords(`"A=1 2" B=3 'C=x"y' D=a\\"b "E=q\\"r"`), ["A=1 2", "B=3", 'C=x"y', 'D=a"b', 'E=q"r']);
    assert.throws(() => splitWords('"open'), /unterminated/);
  });

  it("reads Environment= (later wins) and single directives", () => {
    const unit = parseUnit('[Service]\nEnvironment="A=1" B=2\nEnvironment="A=3"\nExecStart=/bin/x -y\n');
    assert.deepEqual(unitEnvironment(unit), { A: "3", B: "2" });
    assert.equal(serviceDirective(unit, "ExecStart"), "/bin/x -y");
    assert.throws(() => serviceDirective(unit, "User"), /expected one User=/);
    assert.throws(() => parseUnit("Environment=A=1\n"), /not a unit line/);
  });

  it("reads the rendered titan unit", () => {
    const unit = unitsFor("web").find((u) => u.path.endsWith("/titan.service"));
    assert.ok(unit);
    const env = unitEnvironment(parseUnit(unit.content));
    assert.equal(env.TITAN_PORT, "5000");
    assert.ok(env.TITAN_LOG_DIR.startsWith("/"));
  });
});

describe("processes", () => {
  it("stops a process that ignores SIGTERM with SIGKILL, and its children", async () => {
    const procs = new Processes(path.join(tmp, "logs"));
    procs.start("stubborn", "/bin/sh", ["-c", "trap '' TERM; sleep 60 & echo child=$!; wait"], {
      env: { PATH: "/usr/bin:/bin" },
    });
    await new Promise((r) => setTimeout(r, 300));
    const exit = await procs.stop("stubborn", 500);
    assert.equal(exit.signal, "SIGKILL");
    const child = Number(/child=(\d+)/.exec(procs.tail("stubborn"))?.[1]);
    assert.ok(child > 0);
    await new Promise((r) => setTimeout(r, 200));
    // Gone, or a zombie waiting for whoever reaps orphans here.
    const state = fs.existsSync(`/proc/${child}/stat`)
      ? fs.readFileSync(`/proc/${child}/stat`, "utf8").split(" ")[2]
      : "gone";
    assert.ok(state === "gone" || state === "Z", `the child is still ${state}`);
  });

  it("stops a well-behaved process with SIGTERM and reports it", async () => {
    const procs = new Processes(path.join(tmp, "logs2"));
    procs.start("sleeper", "/bin/sleep", ["60"], { env: {} });
    const exit = await procs.stop("sleeper", 5000);
    assert.equal(exit.signal, "SIGTERM");
    assert.match(procs.diagnostics(), /sleeper \(pid \d+, exited \(code null, signal SIGTERM\)\)/);
  });
});

describe("bridge", () => {
  const upstream = http.createServer((req, res) => res.end(`${req.method} ${req.url} ${req.headers.host}`));
  const socketPath = path.join(tmp, "bridge.sock");
  const bridge = createBridge(new Set(["127.0.0.1"]));
  after(() => {
    upstream.close();
    bridge.close();
  });

  it("forwards allowed addresses, refuses others, and reports connection failures", async () => {
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    await new Promise<void>((r) => bridge.listen(socketPath, r));
    const port = (upstream.address() as AddressInfo).port;
    const ok = await bridgeRequest(socketPath, `http://127.0.0.1:${port}/x?y=1`, { method: "POST", body: "b" });
    assert.deepEqual(ok, { status: 200, body: `POST /x?y=1 127.0.0.1:${port}` });
    assert.equal((await bridgeRequest(socketPath, "http://192.0.2.1:80/")).status, 403);
    assert.equal((await bridgeRequest(socketPath, "/relative")).status, 400);
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const closedPort = (closed.address() as AddressInfo).port;
    closed.close();
    assert.equal((await bridgeRequest(socketPath, `http://127.0.0.1:${closedPort}/`)).status, 599);
  });
});

describe("expected targets", () => {
  const base = {
    imageId: "ami",
    instanceType: "t3.small",
    state: "running",
    availabilityZone: "z",
    subnetId: "s",
    vpcId: "v",
    architecture: "x86_64",
    ownerId: "o",
  } as const;
  const mk = (n: number, role: string): Ec2Instance => ({
    ...base,
    instanceId: `i-${n}`,
    privateIp: `10.0.0.${n}`,
    tags: { Name: `p-dev-${role}`, Role: role, Environment: "dev", Project: "p", Scrape: "true" },
  });
  const hosts = [mk(1, "web"), mk(2, "prometheus"), mk(3, "loki"), mk(4, "grafana")];

  it("expects each service on the roles that run it, plus Prometheus on localhost", () => {
    const keys = expectedTargets(hosts).map((t) => `${t.job}@${t.address}`);
    assert.deepEqual(keys.sort(), [
      "alloy@10.0.0.1:12345",
      "grafana@10.0.0.4:3000",
      "loki@10.0.0.3:3100",
      "node@10.0.0.1:9100",
      "node@10.0.0.2:9100",
      "node@10.0.0.3:9100",
      "node@10.0.0.4:9100",
      "prometheus@localhost:9090",
      "remediation@10.0.0.1:9181",
      "titan@10.0.0.1:5000",
    ]);
  });

  it("reports missing and unexpected live targets", () => {
    const live = (job: string, instance: string, url: string, role = "web"): Target => ({
      labels: { job, instance, role, environment: "dev" },
      discoveredLabels: {},
      scrapePool: job,
      scrapeUrl: url,
      health: "up",
      lastError: "",
    });
    const diff = diffTargets(expectedTargets([hosts[0]].concat(hosts[1])), [
      live("titan", "p-dev-web", "http://10.0.0.1:5000/metrics"),
      live("titan", "wrong-name", "http://10.0.0.9:5000/metrics"),
    ]);
    assert.equal(diff.unexpected.length, 1);
    assert.ok(diff.missing.some((m) => m.startsWith("job=node instance=p-dev-web ")));
  });

  it("makes decoys that differ from a real host in exactly one way, on unroutable addresses", () => {
    for (const d of decoys(hosts)) {
      assert.match(d.privateIp, /^192\.0\.2\./);
      const diffs = Object.keys(d.tags).filter((k) => k !== "Name" && d.tags[k] !== hosts[0].tags[k]);
      assert.equal(diffs.length + (d.state === "running" ? 0 : 1), 1, JSON.stringify(d));
    }
  });
});
