/** The post-deploy verification's checks against a fake Prometheus and Grafana. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { formatReport, verify, type Fetch, type VerificationSpec } from "../infra/verify/checks";
import { markerLineCommand, markersWrittenAt } from "../infra/verify/marker";
import { verifyStack, type VerifyStackDeps } from "../tools/verifyStack";
import { MOCK_PASSWORD, MOCK_PRIVATE_KEY } from "./support/mockProgram";
import { snapshot } from "./support/snapshots";

const spec: VerificationSpec = {
  prometheusUrl: "http://prom:9090",
  grafanaUrl: "http://graf:3000",
  grafanaUser: "admin",
  environment: "dev",
  targets: [
    { job: "node", instance: "p-dev-web-1", role: "web" },
    { job: "titan", instance: "p-dev-web-1", role: "web" },
  ],
  logMarker: { marker: "titan-verify-abc", job: "titan", hosts: ["p-dev-web-1"] },
  grafana: {
    datasourceUids: ["titan-prometheus", "titan-loki"],
    dashboardUids: ["titan-system"],
    ruleUids: ["titan-target-down"],
    contactPoint: "titan-slack",
  },
  timeoutMs: 300,
  intervalMs: 50,
};

type Routes = Record<string, unknown>;

function fakeFetch(routes: () => Routes, seen: string[] = []): Fetch {
  return (url, init) => {
    seen.push(`${url} ${init?.headers?.Authorization ?? ""}`);
    const path = new URL(url).pathname;
    const body = routes()[path];
    return Promise.resolve({
      ok: body !== undefined,
      status: body === undefined ? 404 : 200,
      json: () => Promise.resolve(body),
    });
  };
}

const target = (job: string, health = "up", role = "web") => ({
  labels: { job, instance: "p-dev-web-1", role, environment: "dev" },
  health,
  lastError: health === "up" ? "" : "connection refused",
});

function healthy(): Routes {
  return {
    "/api/v1/targets": { data: { activeTargets: [target("node"), target("titan")] } },
    "/api/datasources/proxy/uid/titan-loki/loki/api/v1/query_range": {
      data: {
        result: [
          { stream: { job: "titan", host: "p-dev-web-1", level: "info", filename: "/var/log/titan/verify.log" } },
        ],
      },
    },
    "/api/health": { database: "ok" },
    "/api/datasources/uid/titan-prometheus/health": { status: "OK" },
    "/api/datasources/uid/titan-loki/health": { status: "OK" },
    "/api/search": [{ uid: "titan-system" }],
    "/api/v1/provisioning/alert-rules": [{ uid: "titan-target-down" }],
    "/api/v1/provisioning/contact-points": [{ name: "titan-slack", type: "slack" }],
  };
}

describe("pipeline verification", () => {
  it("passes when every check holds, and reports each with its time", async () => {
    const seen: string[] = [];
    const report = await verify(spec, "pw", fakeFetch(healthy, seen));
    assert.equal(report.ok, true, formatReport(report));
    assert.deepEqual(
      report.checks.map((c) => c.name),
      [
        "prometheus targets up",
        "loki has each web host's marker line",
        "grafana health",
        "grafana data sources healthy",
        "grafana dashboards provisioned",
        "grafana alert rules provisioned",
        "slack contact point exists",
      ],
    );
    const loki = seen.find((s) => s.includes("query_range")) ?? "";
    assert.ok(
      decodeURIComponent(loki).includes('{job="titan", host="p-dev-web-1", environment="dev"} |= "titan-verify-abc"'),
    );
    assert.ok(
      loki.endsWith(`Basic ${Buffer.from("admin:pw").toString("base64")}`),
      "Loki is asked through Grafana, with auth",
    );
  });

  it("waits for a target that comes up within the deadline", async () => {
    let calls = 0;
    const routes = () => {
      calls += 1;
      const r = healthy();
      if (calls < 3) r["/api/v1/targets"] = { data: { activeTargets: [target("node"), target("titan", "down")] } };
      return r;
    };
    const report = await verify(spec, "pw", fakeFetch(routes));
    assert.equal(report.ok, true, formatReport(report));
  });

  it("fails with the reason when a target stays down, a label is wrong or a rule is missing", async () => {
    const routes = () => ({
      ...healthy(),
      "/api/v1/targets": { data: { activeTargets: [target("node", "up", "loki"), target("titan", "down")] } },
      "/api/v1/provisioning/alert-rules": [],
    });
    const report = await verify(spec, "pw", fakeFetch(routes));
    assert.equal(report.ok, false);
    const text = formatReport(report);
    assert.match(
      text,
      /FAIL prometheus targets up .*node\/p-dev-web-1 has role=loki.*titan\/p-dev-web-1 is down: connection refused/,
    );
    assert.match(text, /FAIL grafana alert rules provisioned .*missing alert rules titan-target-down/);
    assert.match(text, /^pipeline verification FAILED in/);
    assert.ok(report.seconds < 2, "bounded by the deadline");
  });

  it("reports a marker that never reached Loki and an HTTP error", async () => {
    const routes = () => {
      const r = healthy();
      r["/api/datasources/proxy/uid/titan-loki/loki/api/v1/query_range"] = { data: { result: [] } };
      delete r["/api/v1/provisioning/contact-points"];
      return r;
    };
    const report = await verify(spec, "pw", fakeFetch(routes));
    const text = formatReport(report);
    assert.match(text, /FAIL loki has each web host's marker line .*no marker line from p-dev-web-1/);
    assert.match(text, /FAIL slack contact point exists .*answered 404/);
  });
});

describe("with metricsStore=amp, the metrics in the store through Grafana", () => {
  const STORE_QUERY = "/api/datasources/proxy/uid/titan-prometheus/api/v1/query";
  const ampSpec: VerificationSpec = { ...spec, metricsStore: { datasourceUid: "titan-prometheus" } };
  /** One series of `up` as Prometheus' query API (and AMP's) returns it: the value is text. */
  const up = (job: string, value = "1") => ({
    metric: { __name__: "up", job, instance: "p-dev-web-1", role: "web", environment: "dev" },
    value: [1_800_000_000.123, value],
  });
  const storeHolding = (...result: unknown[]): Routes => ({
    ...healthy(),
    [STORE_QUERY]: { status: "success", data: { resultType: "vector", result } },
  });
  const storeCheck = (report: Awaited<ReturnType<typeof verify>>) =>
    report.checks.find((c) => c.name === "metrics reach the store through Grafana");

  it("passes when every expected target's up is 1, asked through Grafana's proxy with auth", async () => {
    const seen: string[] = [];
    const report = await verify(
      ampSpec,
      "pw",
      fakeFetch(() => storeHolding(up("node"), up("titan")), seen),
    );
    assert.equal(report.ok, true, formatReport(report));
    assert.equal(storeCheck(report)?.ok, true);
    const asked = seen.find((s) => s.includes("/api/v1/query?")) ?? "";
    assert.equal(new URL(asked.split(" ")[0]).searchParams.get("query"), 'last_over_time(up{environment="dev"}[2m])');
    assert.ok(asked.startsWith(`http://graf:3000${STORE_QUERY}?`), asked);
    assert.ok(asked.endsWith(`Basic ${Buffer.from("admin:pw").toString("base64")}`), asked);
  });

  it("fails naming a target whose samples never reached the store", async () => {
    const report = await verify(
      ampSpec,
      "pw",
      fakeFetch(() => storeHolding(up("node"))),
    );
    assert.equal(report.ok, false);
    assert.match(
      formatReport(report),
      /FAIL metrics reach the store through Grafana .*titan\/p-dev-web-1 has no up in the store/,
    );
    assert.doesNotMatch(storeCheck(report)?.detail ?? "", /node\//);
  });

  it("fails when the store holds a target with up=0", async () => {
    const report = await verify(
      ampSpec,
      "pw",
      fakeFetch(() => storeHolding(up("node"), up("titan", "0"))),
    );
    assert.equal(report.ok, false);
    assert.match(formatReport(report), /FAIL metrics reach the store through Grafana .*titan\/p-dev-web-1 is up=0/);
  });

  it("fails with the proxy's error: Grafana's 400 for a refused signature, a query error", async () => {
    // ds_proxy.go turns the data source's 401 into a 400; everything else the proxy answered is healthy.
    const refused: Fetch = (url, init) =>
      new URL(url).pathname === STORE_QUERY
        ? Promise.resolve({ ok: false, status: 400, json: () => Promise.resolve({}) })
        : fakeFetch(() => storeHolding(up("node"), up("titan")))(url, init);
    const report = await verify(ampSpec, "pw", refused);
    assert.equal(report.ok, false);
    assert.match(formatReport(report), /FAIL metrics reach the store through Grafana .*answered 400/);
    assert.equal(report.checks.filter((c) => !c.ok).length, 1, formatReport(report));
    const failed = await verify(
      ampSpec,
      "pw",
      fakeFetch(() => ({
        ...healthy(),
        [STORE_QUERY]: { status: "error", errorType: "execution", error: "query timed out" },
      })),
    );
    assert.match(formatReport(failed), /FAIL metrics reach the store .*answered error: execution query timed out/);
  });

  it("is not run without metricsStore in the spec (a local stack)", async () => {
    const seen: string[] = [];
    const report = await verify(spec, "pw", fakeFetch(healthy, seen));
    assert.equal(storeCheck(report), undefined);
    assert.ok(!seen.some((s) => s.includes("/api/v1/query?")));
  });

  it("is asked for by the program with amp only; a local stack's spec keeps exactly its keys", async () => {
    const specOf = async (overrides: Record<string, string>) => {
      const snap = await snapshot(overrides);
      assert.equal(snap.error, undefined, snap.error);
      const env = snap.resources.find((r) => r.name === "verify-pipeline")?.inputs.environment as Record<
        string,
        string
      >;
      return JSON.parse(env.VERIFY_SPEC) as VerificationSpec;
    };
    assert.deepEqual((await specOf({ metricsStore: "amp" })).metricsStore, { datasourceUid: "titan-prometheus" });
    // The digest the markers and the verification re-run on is cut from this JSON: a new key here
    // would re-run both on every local stack's next `up`.
    assert.deepEqual(Object.keys(await specOf({})).sort(), [
      "environment",
      "grafana",
      "grafanaUrl",
      "grafanaUser",
      "intervalMs",
      "logMarker",
      "prometheusUrl",
      "targets",
      "timeoutMs",
    ]);
  });
});

describe("the marker's freshness", () => {
  /** A Loki through Grafana holding one marker line at `lineAt` (Unix seconds); the query's start bounds it. */
  function lokiWithLineAt(lineAt: number, starts: string[]): Fetch {
    return (url, init) => {
      const u = new URL(url);
      if (!u.pathname.endsWith("/loki/api/v1/query_range")) return fakeFetch(healthy)(url, init);
      const start = u.searchParams.get("start") ?? "0";
      starts.push(start);
      const inRange = BigInt(start) <= BigInt(lineAt) * 1_000_000_000n;
      const stream = { job: "titan", level: "info", filename: "/var/log/titan/verify.log" };
      return Promise.resolve({
        ok: true,
        status: 200,
        json: () => Promise.resolve({ data: { result: inRange ? [{ stream }] : [] } }),
      });
    };
  }
  const withSince = (since?: number): VerificationSpec => ({
    ...spec,
    logMarker: { marker: "titan-verify-abc", job: "titan", hosts: ["p-dev-web-1"], ...(since ? { since } : {}) },
  });

  it("counts only lines written since the markers ran (less two minutes), not an earlier run's", async () => {
    const starts: string[] = [];
    const since = 1_800_000_000;
    const fresh = await verify(withSince(since), "pw", lokiWithLineAt(since + 3, starts));
    assert.equal(fresh.ok, true, formatReport(fresh));
    assert.equal(starts[0], "1799999880000000000");
    // The same marker logged ten minutes before this verification's markers ran.
    const stale = await verify(withSince(since), "pw", lokiWithLineAt(since - 600, []));
    assert.match(formatReport(stale), /FAIL loki has each web host's marker line .*no marker line from p-dev-web-1/);
    // Without the time (a preview's unknown, an older state), the last 30 minutes, as before.
    const older: string[] = [];
    await verify(withSince(), "pw", lokiWithLineAt(Math.floor(Date.now() / 1000), older));
    const window = Date.now() * 1e6 - Number(older[0]);
    assert.ok(Math.abs(window - 30 * 60 * 1e9) < 60 * 1e9, `window ${window} ns`);
  });

  it("takes the earliest time the marker commands printed, and none unless every one printed one", () => {
    assert.match(markerLineCommand("titan-verify-0123456789ab"), / && date -u \+%s$/);
    assert.equal(markersWrittenAt(["1800000100", "1800000050"]), 1800000050);
    assert.equal(markersWrittenAt(["1800000100\n"]), 1800000100);
    assert.equal(markersWrittenAt(["1800000100", undefined]), undefined);
    assert.equal(markersWrittenAt(["sudo: unknown user"]), undefined);
    assert.equal(markersWrittenAt([]), undefined);
  });
});

describe("npm run verify (tools/verifyStack.ts), on the stack's outputs", () => {
  /** The outputs as `pulumi stack output --json --show-secrets` prints them, from the program under mocks. */
  let outputs: Record<string, unknown>;
  let deployMarker: string;
  before(async () => {
    const snap = await snapshot();
    assert.equal(snap.error, undefined, snap.error);
    outputs = Object.fromEntries(Object.entries(snap.outputs).map(([k, o]) => [k, o.value]));
    const verifyPipeline = snap.resources.find((r) => r.name === "verify-pipeline");
    const env = verifyPipeline?.inputs.environment as Record<string, string>;
    deployMarker = String((JSON.parse(env.VERIFY_SPEC) as VerificationSpec).logMarker?.marker);
  });

  /** A Grafana and Prometheus where Loki returns a host's marker only once that host logged it. */
  function stand(nonces: string[]) {
    const logged = new Set<string>();
    const calls: { args: readonly string[]; key: string; keyMode: number; knownHosts: string }[] = [];
    const option = (args: readonly string[], name: string) =>
      args.find((a, i) => args[i - 1] === "-o" && a.startsWith(`${name}=`))?.slice(name.length + 1) ?? "";
    const deps: VerifyStackDeps = {
      ssh: (args) => {
        const key = args[args.indexOf("-i") + 1];
        calls.push({
          args,
          key: fs.readFileSync(key, "utf8"),
          keyMode: fs.statSync(key).mode & 0o777,
          knownHosts: fs.readFileSync(option(args, "UserKnownHostsFile"), "utf8"),
        });
        const marker = /marker=(titan-verify-[0-9a-f]+)/.exec(args[args.length - 1])?.[1];
        if (marker) logged.add(marker);
        return { status: 0, stderr: "" };
      },
      fetch: (url, init) => {
        const u = new URL(url);
        if (u.pathname.endsWith("/loki/api/v1/query_range")) {
          const query = u.searchParams.get("query") ?? "";
          const found = [...logged].some((m) => query.includes(`|= "${m}"`));
          const stream = { job: "titan", level: "info", filename: "/var/log/titan/verify.log" };
          return Promise.resolve({
            ok: true,
            status: 200,
            json: () => Promise.resolve({ data: { result: found ? [{ stream }] : [] } }),
          });
        }
        return fakeFetch(() => {
          const spec = outputs.verificationSpec as { spec: VerificationSpec };
          return {
            ...healthy(),
            "/api/v1/targets": {
              data: {
                activeTargets: spec.spec.targets.map((t) => ({
                  labels: { job: t.job, instance: t.instance, role: t.role, environment: spec.spec.environment },
                  health: "up",
                })),
              },
            },
            "/api/search": spec.spec.grafana.dashboardUids.map((uid) => ({ uid })),
            "/api/v1/provisioning/alert-rules": spec.spec.grafana.ruleUids.map((uid) => ({ uid })),
            "/api/datasources/uid/titan-prometheus/health": { status: "OK" },
            "/api/datasources/uid/titan-loki/health": { status: "OK" },
          };
        })(url, init);
      },
      nonce: () => nonces.shift() ?? "",
      home: os.tmpdir(),
      log: () => undefined,
    };
    return { deps, calls };
  }

  it("has each web host log a fresh marker over SSH with the stack's key, then passes the same checks", async () => {
    const { deps, calls } = stand(["0123456789ab", "ba9876543210"]);
    const fast = { ...outputs };
    const v = fast.verificationSpec as { spec: VerificationSpec };
    fast.verificationSpec = { ...v, spec: { ...v.spec, timeoutMs: 2000, intervalMs: 50 } };
    const first = await verifyStack(fast, deps);
    assert.equal(first.ok, true, formatReport(first));
    assert.equal(calls.length, 1, "one web host");
    const call = calls[0];
    assert.equal(call.key, MOCK_PRIVATE_KEY, "the stack's generated key");
    assert.equal(call.keyMode, 0o600);
    assert.match(call.args.join(" "), /^-i \S+ -o BatchMode=yes .* admin@[\d.]+ /);
    assert.equal(call.args[call.args.length - 1], markerLineCommand("titan-verify-0123456789ab"));
    assert.notEqual("titan-verify-0123456789ab", deployMarker, "not the deploy's marker: lines written now");
    // Another run, another marker: Loki must hold this run's lines, not the last run's.
    const second = await verifyStack(fast, deps);
    assert.equal(second.ok, true, formatReport(second));
    assert.match(calls[1].args[calls[1].args.length - 1], /marker=titan-verify-ba9876543210/);
  });

  it("on a stack deployed with the operator's own key, offers ssh's own identities or TITAN_SSH_KEY_FILE", async () => {
    // Such a stack exports neither sshPrivateKey nor sshKeyFile: no key file was ever written.
    const own = Object.fromEntries(
      Object.entries(outputs).filter(([k]) => k !== "sshPrivateKey" && k !== "sshKeyFile"),
    );
    const { deps } = stand(["0123456789ab", "0123456789ac", "0123456789ad"]);
    const seen: (readonly string[])[] = [];
    const refused = {
      ...deps,
      ssh: (args: readonly string[]) => (seen.push(args), { status: 255, stderr: "Permission denied (publickey)." }),
    };
    await assert.rejects(verifyStack(own, refused), /load it into ssh-agent or set TITAN_SSH_KEY_FILE/);
    assert.ok(!seen[0].includes("-i") && !seen[0].includes("IdentitiesOnly=yes"), seen[0].join(" "));

    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "titan-own-key-")), "id_ed25519");
    fs.writeFileSync(file, MOCK_PRIVATE_KEY, { mode: 0o600 });
    await assert.rejects(verifyStack(own, { ...refused, operatorKeyFile: file }), /Permission denied/);
    assert.deepEqual(seen[1].slice(0, 2), ["-i", file]);
    assert.ok(seen[1].includes("IdentitiesOnly=yes"));
    await assert.rejects(
      verifyStack(own, { ...refused, operatorKeyFile: `${file}.missing` }),
      /TITAN_SSH_KEY_FILE names .*\.missing, which does not exist/,
    );
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });

  it("pins a host key the stack knows, and accepts a host's first key only when it knows none", async () => {
    const { deps, calls } = stand(["0123456789ab", "0123456789ac"]);
    const v = outputs.verificationSpec as { spec: VerificationSpec; markers: { hosts: { address: string }[] } };
    const unpinned = v.markers.hosts.map((h) => ({ ...h, hostKey: undefined }));
    const fast = {
      ...v,
      spec: { ...v.spec, timeoutMs: 2000, intervalMs: 50 },
      markers: { ...v.markers, hosts: unpinned },
    };
    await verifyStack({ ...outputs, verificationSpec: fast }, deps);
    const pinned = {
      ...fast,
      markers: { ...v.markers, hosts: v.markers.hosts.map((h) => ({ ...h, hostKey: "ssh-ed25519 AAAAC3Nza-host" })) },
    };
    await verifyStack({ ...outputs, verificationSpec: pinned }, deps);
    assert.ok(calls[0].args.includes("StrictHostKeyChecking=accept-new"));
    assert.equal(calls[0].knownHosts, "");
    assert.ok(calls[1].args.includes("StrictHostKeyChecking=yes"));
    assert.equal(calls[1].knownHosts, `${v.markers.hosts[0].address} ssh-ed25519 AAAAC3Nza-host\n`);
  });

  it("names what is missing: the spec output, the password without --show-secrets, a failed SSH", async () => {
    const { deps } = stand(["0123456789ab"]);
    const { verificationSpec: _dropped, ...older } = outputs;
    void _dropped;
    await assert.rejects(verifyStack(older, deps), /stack output verificationSpec is missing/);
    await assert.rejects(
      verifyStack({ ...outputs, grafanaAdminPassword: "[secret]" }, deps),
      /grafanaAdminPassword: expected the password itself; read the outputs with --show-secrets/,
    );
    assert.equal(outputs.grafanaAdminPassword, MOCK_PASSWORD);
    const refused: VerifyStackDeps = {
      ...deps,
      nonce: () => "0123456789ab",
      ssh: () => ({ status: 255, stderr: "Permission denied (publickey)." }),
    };
    await assert.rejects(
      verifyStack(outputs, refused),
      /logging the marker on titan-observability-dev-web-1 \(admin@[\d.]+\) failed: Permission denied/,
    );
  });
});
