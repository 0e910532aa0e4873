/**
 * The fleet's fake EC2 API and IMDS (awsEndpoints.ts) against Debian's real Prometheus 2.42:
 * Prometheus runs in a network namespace that stands in for the Prometheus host (its private IP
 * from the fleet's stack plan, on a veth in the fleet bridge, with the route seed.ts gives every
 * host), with the stack's prometheus.yml whose one override is the EC2 endpoint, and with no AWS
 * variable or credentials file: it must get its keys from the IMDS over IMDSv2, sign with them
 * (the fake verifies the signature), and list exactly the stack's instances. Then a host marked
 * stopped and one added show up in the next discovery round. Needs root (bridge, namespace) and
 * takes the fleet's lock, as its bridge and 169.254.169.254 are the fleet's.
 *
 * The namespace is a stand-in for a booted container: it proves the endpoints and the SDK's
 * path to them, not cloud-init's handling of the route (a fleet run boots real hosts for that).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { renderPrometheusFiles, PROMETHEUS_CONFIG_PATH } from "../../templates/prometheus/config";
import { SCRAPE_JOBS } from "../../facts/scrapeJobs";
import { IMDS_ADDRESS, type AwsEndpoints } from "./awsEndpoints";
import { Cleanup } from "./cleanup";
import { probeAsync, run, waitFor } from "./exec";
import { newInstanceId } from "./fleet";
import { prometheusStandIn } from "./hostNamespace";
import { dialsInstance, stackContext } from "./provision";
import type { StackPlan } from "./stackPlan";

const TIMEOUT = 30 * 60_000;
const STACK = "fleet-aws-test";
const IP = "/usr/sbin/ip";
const PROMETHEUS = "/usr/bin/prometheus";
const NS = `titan-aws-${process.pid}`;
const VETH = `vb-titan-aws`;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-aws-test-"));
const cleanup = new Cleanup();
const log = (l: string) => process.stderr.write(`aws test: ${l}\n`);

let plan: StackPlan;
let aws: AwsEndpoints;
let promIp: string;
let promUrl: string;
let instanceIds: Map<string, string>;

/** GET or POST over the bridge; the answer's status and body. */
function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: options.method ?? "GET", headers: options.headers, timeout: 10_000 },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${url}: no answer in 10 s`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

interface Target {
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
}

async function discovered(): Promise<Set<string>> {
  const r = await request(`${promUrl}/api/v1/targets?state=active`);
  if (r.status !== 200) throw new Error(`targets API: ${r.status} ${r.body.slice(0, 200)}`);
  const targets = (JSON.parse(r.body) as { data: { activeTargets: Target[] } }).data.activeTargets;
  return new Set(
    targets
      .filter((t) => t.discoveredLabels.__meta_ec2_instance_id)
      .map((t) => `${t.labels.job} ${t.discoveredLabels.__meta_ec2_instance_id} ${t.discoveredLabels.__address__}`),
  );
}

/** What the rendered prometheus.yml must find among `hosts`: job, instance id and scrape address. */
function expected(
  hosts: readonly { instanceId: string; privateIp: string; tags: Record<string, string> }[],
): Set<string> {
  const out = new Set<string>();
  for (const job of SCRAPE_JOBS) {
    for (const h of hosts) {
      if ((job.roles as readonly string[]).includes(h.tags.Role)) out.add(`${job.job} ${h.instanceId} ${h.privateIp}:`);
    }
  }
  return out;
}

const matches = (seen: Set<string>, want: Set<string>) =>
  seen.size === want.size && [...want].every((w) => [...seen].some((s) => s.startsWith(w)));

const show = (s: Set<string>) => [...s].sort().join("\n  ");

before(async () => {
  // The Prometheus host's stand-in and the fake EC2 API and IMDS (hostNamespace.ts).
  const standIn = await prometheusStandIn(cleanup, log, {
    stack: STACK,
    tmp,
    keyComment: "aws-test",
    ns: NS,
    veth: VETH,
  });
  ({ plan, aws } = standIn);
  const ctx = standIn.ctx;
  instanceIds = new Map(standIn.instanceIds);
  promIp = standIn.prom.privateIp;
  promUrl = `http://${promIp}:9090`;

  const rendered = renderPrometheusFiles(ctx, { ec2Endpoint: aws.ec2Endpoint }).find(
    (f) => f.path === PROMETHEUS_CONFIG_PATH,
  );
  if (!rendered) throw new Error(`renderPrometheusFiles renders no ${PROMETHEUS_CONFIG_PATH}`);
  const configFile = path.join(tmp, "prometheus.yml");
  fs.writeFileSync(configFile, rendered.content);
  const logFile = path.join(tmp, "prometheus.log");
  const out = fs.openSync(logFile, "w");
  // No AWS_* variable, and a HOME without ~/.aws: the only credentials are the IMDS's.
  const child: ChildProcess = spawn(
    IP,
    [
      "netns",
      "exec",
      NS,
      PROMETHEUS,
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(tmp, "data")}`,
      `--web.listen-address=${promIp}:9090`,
      "--log.level=debug",
    ],
    { env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: tmp, LANG: "C.UTF-8" }, stdio: ["ignore", out, out] },
  );
  fs.closeSync(out);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  cleanup.add(`prometheus pid ${child.pid}`, async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  });
  log(`prometheus pid ${child.pid} in ${NS} at ${promUrl}, EC2 API ${aws.ec2Endpoint}`);
});

after(async () => {
  const failures = await cleanup.run();
  assert.deepEqual(failures, []);
});

test(
  "Prometheus discovers the stack's instances with credentials from the IMDS (IMDSv2), signing every call",
  { timeout: TIMEOUT },
  async () => {
    const hosts = plan.hosts.map((h) => ({
      instanceId: instanceIds.get(h.name) as string,
      privateIp: h.privateIp,
      tags: { ...h.tags },
    }));
    const want = expected(hosts);
    assert.ok(want.size >= plan.hosts.length, "the plan gives Prometheus nothing to discover: the test proves nothing");
    let seen = new Set<string>();
    await waitFor(
      "Prometheus to list every planned instance",
      async () => ((seen = await discovered()), matches(seen, want) ? true : undefined),
      {
        timeoutMs: 180_000,
        intervalMs: 1_000,
        why: () =>
          `expected\n  ${show(want)}\nseen\n  ${show(seen)}\nrequests ${JSON.stringify(aws.requests.slice(-6))}\n` +
          fs
            .readFileSync(path.join(tmp, "prometheus.log"), "utf8")
            .split("\n")
            .filter((l) => /ec2|aws|credential/i.test(l))
            .slice(-10)
            .join("\n"),
      },
    );

    const promHost = plan.hosts.find((h) => h.role === "prometheus");
    const promRole = promHost?.instanceRole;
    assert.ok(promRole, "the stack gives Prometheus no instance profile");
    const creds = aws.credentials.get(instanceIds.get(promHost?.name ?? "") as string);
    assert.ok(creds, "the Prometheus instance has no credentials");
    assert.equal(creds.roleName, promRole);
    const imds = aws.requests.filter((r) => r.endpoint === "imds");
    const ec2 = aws.requests.filter((r) => r.endpoint === "ec2");
    // The SDK's path: a token, then the role name and its credentials, every GET with the token.
    assert.ok(
      imds.some((r) => r.method === "PUT" && r.what === "/latest/api/token" && r.status === 200),
      JSON.stringify(imds),
    );
    assert.ok(imds.some((r) => r.what === "/latest/meta-data/iam/security-credentials/" && r.status === 200));
    assert.ok(
      imds.some((r) => r.what === `/latest/meta-data/iam/security-credentials/${promRole}` && r.status === 200),
    );
    assert.deepEqual(
      imds.filter((r) => r.method !== "PUT" && !r.token),
      [],
      "an IMDS request without a token (an IMDSv1 fallback)",
    );
    assert.ok(
      imds.every((r) => r.from === promIp),
      JSON.stringify(imds),
    );
    // Both actions, every one signed with the issued key (the signature verified) and answered.
    assert.ok(
      ec2.some((r) => r.what === "DescribeAvailabilityZones"),
      JSON.stringify(ec2),
    );
    assert.ok(
      ec2.some((r) => r.what === "DescribeInstances"),
      JSON.stringify(ec2),
    );
    assert.deepEqual(
      ec2.filter((r) => r.status !== 200 || r.accessKeyId !== creds.accessKeyId),
      [],
      "an EC2 call not signed with the IMDS's key",
    );
  },
);

test("a stop and start keeps an Elastic IP and moves an auto-assigned address; a push dials only the one EC2 lists", () => {
  const withEip = {
    instanceId: newInstanceId(),
    privateIp: "10.42.0.210",
    tags: {},
    roleName: null,
    elasticIp: "203.0.113.77",
  };
  const without = { instanceId: newInstanceId(), privateIp: "10.42.0.211", tags: {}, roleName: null };
  aws.addInstance(withEip);
  aws.addInstance(without);
  const before = aws.publicIpOf(without.instanceId);
  assert.equal(aws.publicIpOf(withEip.instanceId), "203.0.113.77");
  aws.stopStart(withEip.instanceId);
  aws.stopStart(without.instanceId);
  assert.equal(aws.publicIpOf(withEip.instanceId), "203.0.113.77", "an Elastic IP stays through a stop and start");
  assert.ok(before && aws.publicIpOf(without.instanceId) !== before, "an auto-assigned address moves");
  assert.equal(dialsInstance("203.0.113.77", aws.publicIpOf(withEip.instanceId)), undefined);
  assert.match(
    dialsInstance(before ?? "", aws.publicIpOf(without.instanceId)) ?? "",
    /EC2 gives the instance 198\.51\.100\.\d+ now/,
  );
  assert.throws(
    () => aws.addInstance({ ...without, instanceId: newInstanceId(), privateIp: "10.42.0.212", elasticIp: "x" }),
    /elasticIp "x"/,
  );
  for (const i of [withEip, without]) aws.setState(i.instanceId, "terminated");
});

test(
  "a host marked stopped leaves discovery and an added one joins it, in the next refresh",
  { timeout: TIMEOUT },
  async () => {
    const web = plan.hosts.find((h) => h.role === "web");
    assert.ok(web, "the plan has no web host");
    const webId = instanceIds.get(web.name) as string;
    const joined = {
      instanceId: newInstanceId(),
      privateIp: "10.42.0.200",
      tags: { ...web.tags, Name: "web-joined" },
      roleName: null,
    };
    const hosts = [
      ...plan.hosts
        .filter((h) => h.name !== web.name)
        .map((h) => ({ instanceId: instanceIds.get(h.name) as string, privateIp: h.privateIp, tags: { ...h.tags } })),
      joined,
    ];
    aws.setState(webId, "stopped");
    aws.addInstance(joined);
    assert.throws(() => aws.setState("i-0000000000000dead", "stopped"), /setState instanceId "i-0000000000000dead"/);
    assert.throws(() => aws.addInstance({ ...joined, instanceId: "i-1" }), /addInstance.instanceId "i-1": expected i-/);
    const want = expected(hosts);
    let seen = new Set<string>();
    // refresh_interval is 60s in the rendered config: the change shows in the next round.
    await waitFor(
      "Prometheus to drop the stopped host and list the added one",
      async () => ((seen = await discovered()), matches(seen, want) ? true : undefined),
      {
        timeoutMs: 240_000,
        intervalMs: 2_000,
        why: () => `expected\n  ${show(want)}\nseen\n  ${show(seen)}`,
      },
    );
  },
);

test(
  "the IMDS gives credentials only to the hosts the stack gives an instance profile (Prometheus, Loki), 404 to the others",
  { timeout: TIMEOUT },
  async () => {
    const withProfile = plan.hosts.filter((h) => h.instanceRole !== undefined);
    assert.deepEqual(withProfile.map((h) => h.role).sort(), ["loki", "prometheus"]);
    assert.deepEqual(
      [...aws.credentials.keys()].sort(),
      withProfile.map((h) => instanceIds.get(h.name)).sort(),
      "credentials issued to an instance without a profile",
    );
    // Asked from each host's own private IP (a second address in the namespace, as source):
    // the IMDS tells instances apart by source address, as EC2's does.
    const asHost = async (ip: string, args: string[]) =>
      (await probeAsync(IP, ["netns", "exec", NS, "/usr/bin/curl", "-s", "-m", "10", "--interface", ip, ...args])).out;
    // Not web: the test before stopped it.
    for (const h of plan.hosts.filter((x) => x.role === "loki" || x.role === "grafana")) {
      if (h.privateIp !== promIp) run(IP, ["-n", NS, "addr", "add", `${h.privateIp}/32`, "dev", "host0"]);
      try {
        const token = await asHost(h.privateIp, [
          "-X",
          "PUT",
          "-H",
          "x-aws-ec2-metadata-token-ttl-seconds: 60",
          `http://${IMDS_ADDRESS}/latest/api/token`,
        ]);
        assert.ok(token.length > 0, `${h.name}: no IMDSv2 token`);
        const get = (what: string) =>
          asHost(h.privateIp, [
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            `x-aws-ec2-metadata-token: ${token}`,
            `http://${IMDS_ADDRESS}/latest/meta-data/${what}`,
          ]);
        assert.equal(await get("instance-id"), "200", `${h.name}: its own metadata`);
        const want = h.instanceRole ? "200" : "404";
        assert.equal(await get("iam/security-credentials/"), want, `${h.name}: the role list`);
        assert.equal(await get("iam/info"), want, `${h.name}: iam/info`);
        if (h.instanceRole) {
          assert.equal(await get(`iam/security-credentials/${h.instanceRole}`), "200", `${h.name}: its credentials`);
        }
        // No other host's role is handed out here.
        for (const other of withProfile.filter((o) => o.instanceRole !== h.instanceRole)) {
          assert.equal(
            await get(`iam/security-credentials/${other.instanceRole}`),
            "404",
            `${h.name}: ${other.name}'s role`,
          );
        }
      } finally {
        if (h.privateIp !== promIp) run(IP, ["-n", NS, "addr", "del", `${h.privateIp}/32`, "dev", "host0"]);
      }
    }
  },
);

test(
  "the fakes refuse what EC2 refuses: unsigned, unknown key, bad signature; IMDSv1; strangers; a taken private IP; an aborted request",
  { timeout: TIMEOUT },
  async () => {
    const creds = [...aws.credentials.values()][0];
    const body = "Action=DescribeInstances&Version=2016-11-15";
    const form = { "Content-Type": "application/x-www-form-urlencoded; charset=utf-8" };
    const date = "20261123T000000Z";
    const authFor = (key: string, sig: string) =>
      `AWS4-HMAC-SHA256 Credential=${key}/20261123/${stackContext(plan).config.region}/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=${sig}`;
    const unsigned = await request(aws.ec2Endpoint, { method: "POST", headers: form, body });
    assert.equal(unsigned.status, 401);
    assert.match(unsigned.body, /<Code>AuthFailure<\/Code>/);
    const stranger = await request(aws.ec2Endpoint, {
      method: "POST",
      headers: {
        ...form,
        "X-Amz-Date": date,
        "X-Amz-Security-Token": creds.token,
        Authorization: authFor("ASIAUNKNOWNKEY000000", "0".repeat(64)),
      },
      body,
    });
    assert.equal(stranger.status, 401);
    assert.match(stranger.body, /was not issued by the fleet/);
    const forged = await request(aws.ec2Endpoint, {
      method: "POST",
      headers: {
        ...form,
        "X-Amz-Date": date,
        "X-Amz-Security-Token": creds.token,
        Authorization: authFor(creds.accessKeyId, "0".repeat(64)),
      },
      body,
    });
    assert.equal(forged.status, 403);
    assert.match(forged.body, /<Code>SignatureDoesNotMatch<\/Code>/);

    // From the Prometheus host: no token, no metadata (httpTokens "required"); a token TTL is required.
    // A client gone mid-request (Prometheus restarted by a push) ends that request, not this process.
    const { hostname, port } = new URL(aws.ec2Endpoint);
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(Number(port), hostname, () => {
        socket.write(`POST / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Length: 100\r\n\r\nAction=Desc`, () => {
          socket.destroy();
          resolve();
        });
      });
      socket.on("error", reject);
    });
    assert.equal((await request(aws.ec2Endpoint, { method: "POST", headers: form, body })).status, 401);

    // A private IP is one running instance's; a terminated one frees it for its replacement.
    const web = plan.hosts.find((h) => h.role === "web");
    assert.ok(web, "the plan has no web host");
    const webId = instanceIds.get(web.name) as string;
    assert.throws(
      () => aws.addInstance({ instanceId: newInstanceId(), privateIp: promIp, tags: {}, roleName: null }),
      /addInstance.privateIp "[\d.]+": expected unique/,
    );
    aws.setState(webId, "terminated");
    aws.addInstance({ instanceId: newInstanceId(), privateIp: web.privateIp, tags: { ...web.tags }, roleName: null });
    assert.throws(() => aws.setState(webId, "running"), /setState state "running": expected not while i-/);

    // Asynchronously: the fakes run in this process, and a blocking spawn would starve them.
    const fromHost = async (args: string[]) =>
      (
        await probeAsync(IP, [
          "netns",
          "exec",
          NS,
          "/usr/bin/curl",
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "-m",
          "10",
          ...args,
        ])
      ).out;
    assert.equal(await fromHost([`http://${IMDS_ADDRESS}/latest/meta-data/instance-id`]), "401");
    assert.equal(await fromHost(["-X", "PUT", `http://${IMDS_ADDRESS}/latest/api/token`]), "400");
    // From an address that is no instance's (this machine, on the bridge): nothing.
    const stray = await request(`http://${IMDS_ADDRESS}/latest/api/token`, {
      method: "PUT",
      headers: { "x-aws-ec2-metadata-token-ttl-seconds": "60" },
    });
    assert.equal(stray.status, 403);
  },
);
