/**
 * The fleet's planning, without containers: what the program declares per host under the
 * fleet's configuration, which command resources a `pulumi up` of a change runs (decided by the
 * mocks as the engine decides), and the provider's copy and environment rules the SSH push
 * reproduces (push.ts), checked against tests/support/providerCopy.ts.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { projectRoot } from "../../templates/projectFiles";
import { providerCopy } from "../support/providerCopy";
import { FLEET_PLAN } from "./layout";
import { acceptedBy, copyOperations, protocolDefaultMirror, type RemoteKind } from "./push";
import {
  dependentReplacements,
  fleetConfig,
  INSTANCE,
  planStack,
  recordedState,
  REMOTE_COMMAND,
  resourceKey,
  updateSteps,
  type StackPlan,
} from "./stackPlan";

// Its own stack name, so its push trees never mix with a fleet run's (.titan-push/fleet).
const STACK = "fleet-plan-test";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-plan-test-"));
execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "plan-test", "-f", path.join(tmp, "id")]);
const KEY = {
  publicKey: fs.readFileSync(path.join(tmp, "id.pub"), "utf8"),
  privateKey: fs.readFileSync(path.join(tmp, "id"), "utf8"),
};
const REPO = {
  uri: "http://10.42.0.1:8080",
  keyUrl: "http://10.42.0.1:8080/gpg.key",
  keyFingerprint: "0123456789ABCDEF0123456789ABCDEF01234567",
};

let base: StackPlan;
before(async () => {
  base = await planStack(fleetConfig({ ...KEY, vendorAptRepository: REPO }), { stack: STACK });
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(path.join(projectRoot(), ".titan-push", STACK), { recursive: true, force: true });
});

const ran = (prior: StackPlan, next: StackPlan) =>
  updateSteps(prior, next).map((s) => `${s.host} ${s.push.resource} ${s.action} ${s.runs}`);

describe("the fleet's stack plan", () => {
  test("every host of the address plan, with the stack's user data, key, volume and push", () => {
    assert.deepEqual(
      base.hosts.map((h) => [h.name, h.role, h.privateIp]).sort(),
      FLEET_PLAN.hosts.map((h) => [h.name, h.role, h.privateIp]).sort(),
    );
    for (const h of base.hosts) {
      assert.match(h.userData, /^#cloud-config\n/);
      assert.equal(h.publicKey, KEY.publicKey.trim(), `${h.name}: the stack declares the run's key`);
      assert.equal(h.tags.Role, h.role);
      assert.equal(h.dataVolume !== undefined, h.role !== "web");
      // The instance metadata's role: only the hosts with an instance profile (infra/stack.ts).
      const role = base.resources.find((r) => r.type === "aws:iam/role:Role" && r.name === `${h.role}-role`);
      assert.equal(role !== undefined, h.role === "prometheus" || h.role === "loki", `${h.name}: a role of its own`);
      assert.equal(h.instanceRole, role?.state?.name, `${h.name}: the role of its instance profile`);
      if (h.dataVolume) assert.ok(h.userData.includes(h.dataVolume.volumeId), `${h.name}: user data names its volume`);
      // The stand-in repository reaches exactly the roles that install vendor packages.
      assert.equal(
        h.userData.includes(`${REPO.uri} stable main`),
        h.role !== "prometheus",
        `${h.name}: vendor repository`,
      );
      assert.ok(!h.userData.includes("apt.grafana.com"), `${h.name}: Grafana's repository is out of the fleet's reach`);
      const names = h.pushes.map((p) => p.resource);
      assert.deepEqual(names.slice(0, 3), [`${h.name}-push-ready`, `${h.name}-push-files`, `${h.name}-push-install`]);
      for (const p of h.pushes) {
        assert.equal(p.connection.privateKey, KEY.privateKey);
        assert.equal(p.connection.user, "admin");
      }
      const copy = h.pushes.find((p) => p.type === "command:remote:CopyToRemote");
      assert.ok(copy && copy.type === "command:remote:CopyToRemote");
      assert.equal(copy.source.path, `.titan-push/${STACK}/${h.name}/titan-staging`);
      assert.ok(fs.statSync(copy.source.absolute).isDirectory());
    }
    // Secrets reach a host only on its install command's stdin: Grafana's (admin password, keys,
    // webhooks), Prometheus' (Grafana's metrics password), each web host's (the agent's HMAC key).
    for (const h of base.hosts) {
      const reading = h.pushes.filter((p) => p.type === "command:remote:Command" && !!p.stdin).map((p) => p.resource);
      assert.deepEqual(reading, h.role === "loki" ? [] : [`${h.name}-push-install`], `${h.name}: what reads stdin`);
    }
    assert.deepEqual(
      base.localCommands.map((c) => c.resource).sort(),
      // Each host's key is read from its console on the deploying machine (infra/hostKey/).
      [...base.hosts.map((h) => `${h.name}-host-key`), "verify-pipeline"].sort(),
    );
    for (const h of base.hosts) {
      for (const p of h.pushes) assert.ok(p.connection.hostKey, `${p.resource}: connects with a pinned host key`);
    }
  });

  test("a threshold change runs only Grafana's copy and install (and the verification's log marker)", async () => {
    const next = await planStack(
      { ...base.config, "titan-observability:rootDiskCriticalPercent": "85" },
      { stack: STACK, prior: base.resources },
    );
    assert.deepEqual(ran(base, next), [
      // infra/delivery/pipeline.ts: the verification covers every push, so a changed push is a
      // new verification and each web host logs its new marker.
      "web-1 web-1-log-marker replace create",
      "grafana grafana-push-files replace copy",
      "grafana grafana-push-install replace create",
    ]);
  });

  test("a retention change runs only Prometheus' copy and install", async () => {
    const next = await planStack(
      { ...base.config, "titan-observability:prometheusRetentionDays": "21" },
      { stack: STACK, prior: base.resources },
    );
    assert.deepEqual(ran(base, next), [
      "web-1 web-1-log-marker replace create",
      "prometheus prometheus-push-files replace copy",
      "prometheus prometheus-push-install replace create",
    ]);
    const install = next.hosts
      .find((h) => h.role === "prometheus")
      ?.pushes.find((p) => p.resource === "prometheus-push-install");
    assert.ok(install?.type === "command:remote:Command");
    assert.match(install.create ?? "", /systemctl restart prometheus/);
  });

  test("no change runs nothing, not even the verification", async () => {
    const next = await planStack({ ...base.config }, { stack: STACK, prior: base.resources });
    assert.deepEqual(ran(base, next), []);
    assert.deepEqual(
      next.localCommands.filter((c) => c.action !== "same").map((c) => c.resource),
      [],
    );
  });
});

/** `plan` with the push named `resource` changed by `patch` (as if the program had declared it so). */
const withPush = (plan: StackPlan, resource: string, patch: Record<string, unknown>): StackPlan => ({
  ...plan,
  hosts: plan.hosts.map((h) => ({
    ...h,
    pushes: h.pushes.map((p) => (p.resource === resource ? { ...p, ...patch } : p)),
  })),
});

/**
 * The run before a Grafana-only change of the user data (a raised pin of a package only the
 * Grafana host installs): the same stack, its Grafana instance launched with other user data.
 * The next render replaces that instance (userDataReplaceOnChange), delete-before-replace.
 */
const beforeGrafanaUserDataChange = (): StackPlan => ({
  ...base,
  resources: base.resources.map((r) =>
    r.type === INSTANCE && r.name === "grafana"
      ? { ...r, inputs: { ...r.inputs, userData: `${String(r.inputs.userData)}# the older pin\n` } }
      : r,
  ),
});

describe("the engine's and pulumi-command's rules for an update", () => {
  test("an address the pushes dial, changed without a replacement: every command on that host runs again, no copy", async () => {
    // The Elastic IP the mocks gave web-1, reported anew (a refresh or an in-place update): the
    // connections of web-1's commands take the new address, an update; pulumi-command's Update
    // runs `create` again (no `update` given), and CopyToRemote's copies only for a new source
    // hash or remotePath (remote/copyController.go needCopy), so the staged files stay.
    const moved = "203.0.113.200";
    const next = await planStack(base.config, {
      stack: STACK,
      prior: base.resources,
      outputChanges: { "aws:ec2/eip:Eip::web-1-eip": { publicIp: moved } },
    });
    assert.deepEqual(ran(base, next), [
      "web-1 web-1-push-ready update create",
      "web-1 web-1-push-install update create",
      "web-1 web-1-log-marker update create",
    ]);
    for (const s of updateSteps(base, next))
      assert.equal(s.push.connection.host, moved, `${s.push.resource} dials the new address`);
    // An instance's own public IP (a stop and start moves it) is dialled by nothing: every push
    // connects to the Elastic IP (infra/host.ts publicIp), so nothing runs.
    const stopStart = await planStack(base.config, {
      stack: STACK,
      prior: base.resources,
      outputChanges: { [`${INSTANCE}::grafana`]: { publicIp: "198.51.100.250" } },
    });
    assert.deepEqual(ran(base, stopStart), []);
  });

  test("an update runs `update` when given, and a copy runs for a new remotePath", async () => {
    const next = await planStack(base.config, {
      stack: STACK,
      prior: base.resources,
      outputChanges: { "aws:ec2/eip:Eip::web-1-eip": { publicIp: "203.0.113.201" } },
    });
    const copy = base.hosts.find((h) => h.name === "web-1")?.pushes.find((p) => p.resource === "web-1-push-files");
    assert.ok(copy && copy.type === "command:remote:CopyToRemote");
    const edited = withPush(withPush(next, "web-1-push-ready", { update: "true" }), "web-1-push-files", {
      remotePath: `${copy.remotePath}/elsewhere`,
    });
    assert.deepEqual(ran(base, edited), [
      "web-1 web-1-push-ready update update",
      "web-1 web-1-push-files update copy",
      "web-1 web-1-push-install update create",
      "web-1 web-1-log-marker update create",
    ]);
  });

  test("a replaced Grafana instance: what the engine replaces with it, and what runs on the other hosts", async () => {
    const prior = beforeGrafanaUserDataChange();
    const next = await planStack(base.config, { stack: STACK, prior: prior.resources });
    // The Grafana URL is the Elastic IP's address once associated (infra/host.ts publicIp:
    // eip.publicIp with the association's id); the association follows the instance, and only
    // Grafana's own files carry the URL (infra/delivery/pipeline.ts), so of the other hosts'
    // resources only the verification's log marker goes with it (its triggers hold the digest
    // of the spec, whose URL depends on the association, and of every push).
    assert.deepEqual(
      [...dependentReplacements(prior.resources, next.resources).keys()],
      [
        "aws:ec2/eipAssociation:EipAssociation::grafana-eip-association",
        "aws:ec2/volumeAttachment:VolumeAttachment::grafana-data-attachment",
        "command:local:Command::grafana-host-key",
        "command:remote:Command::grafana-push-ready",
        "command:remote:CopyToRemote::grafana-push-files",
        "command:remote:Command::grafana-push-install",
        "command:remote:Command::web-1-log-marker",
        "command:local:Command::verify-pipeline",
      ],
    );
    assert.deepEqual(ran(prior, next), [
      "web-1 web-1-log-marker replace create",
      "grafana grafana-push-ready replace create",
      "grafana grafana-push-files replace copy",
      "grafana grafana-push-install replace create",
    ]);
  });

  test("a push whose triggers depend on the replaced instance's address is replaced with it, though its values are the same", async () => {
    // What the issue feared: every host's files carrying the Grafana URL. Its value does not
    // change (the Elastic IP stays), so the mocks' diff says "same"; the engine, deleting the
    // instance first, treats every input that depends on a replaced resource as unknown and
    // asks pulumi-command's Diff, which replaces on an unknown `triggers`.
    const prior = beforeGrafanaUserDataChange();
    const association = base.resources.find((r) => r.name === "grafana-eip-association");
    assert.ok(association);
    const tampered: StackPlan = {
      ...prior,
      resources: prior.resources.map((r) =>
        r.name === "prometheus-push-install"
          ? {
              ...r,
              propertyDependencies: {
                ...r.propertyDependencies,
                triggers: [...(r.propertyDependencies.triggers ?? []), association.urn],
              },
            }
          : r,
      ),
    };
    const next = await planStack(base.config, { stack: STACK, prior: prior.resources });
    assert.equal(next.resources.find((r) => r.name === "prometheus-push-install")?.action, "same");
    const steps = updateSteps(tampered, next).filter((s) => s.host === "prometheus");
    assert.deepEqual(
      steps.map((s) => `${s.push.resource} ${s.action} ${s.runs}`),
      ["prometheus-push-install replace create"],
    );
    assert.match(steps[0].because ?? "", /grafana-eip-association|Instance::grafana/);
    // Through `connection` alone (not a replacing key) it is not replaced.
    const viaConnection: StackPlan = {
      ...prior,
      resources: prior.resources.map((r) =>
        r.name === "prometheus-push-install"
          ? {
              ...r,
              propertyDependencies: {
                ...r.propertyDependencies,
                connection: [...(r.propertyDependencies.connection ?? []), association.urn],
              },
            }
          : r,
      ),
    };
    assert.deepEqual(
      updateSteps(viaConnection, next).filter((s) => s.host === "prometheus"),
      [],
    );
  });

  test("deletes: a create-first replacement's at the end of the run, a delete-before-replace dependent's first", async () => {
    const threshold = await planStack(
      { ...base.config, "titan-observability:rootDiskCriticalPercent": "85" },
      { stack: STACK, prior: base.resources },
    );
    // The marker replaced (create first, the engine's default): its old copy is deleted after
    // every create and update of the run, other hosts' included.
    assert.deepEqual(ran(withPush(base, "web-1-log-marker", { delete: "true" }), threshold), [
      "web-1 web-1-log-marker replace create",
      "grafana grafana-push-files replace copy",
      "grafana grafana-push-install replace create",
      "web-1 web-1-log-marker replace delete",
    ]);
    // Grafana's instance replaced (delete-before-replace): its dependents are deleted before
    // anything else runs, dependents before what they depend on.
    const prior = beforeGrafanaUserDataChange();
    const next = await planStack(base.config, { stack: STACK, prior: prior.resources });
    const withDeletes = withPush(withPush(prior, "grafana-push-ready", { delete: "true" }), "grafana-push-install", {
      delete: "true",
    });
    const steps = updateSteps(withDeletes, next);
    assert.deepEqual(
      steps.map((s) => `${s.host} ${s.push.resource} ${s.action} ${s.runs} ${s.phase}`),
      [
        "grafana grafana-push-install replace delete delete-first",
        "grafana grafana-push-ready replace delete delete-first",
        "web-1 web-1-log-marker replace create apply",
        "grafana grafana-push-ready replace create apply",
        "grafana grafana-push-files replace copy apply",
        "grafana grafana-push-install replace create apply",
      ],
    );
    // A removed push goes at the end; one the replacement takes with it goes first.
    const withoutReady: StackPlan = {
      ...next,
      hosts: next.hosts.map((h) => ({ ...h, pushes: h.pushes.filter((p) => p.resource !== "grafana-push-ready") })),
    };
    assert.deepEqual(
      updateSteps(withDeletes, withoutReady)
        .filter((s) => s.runs === "delete")
        .map((s) => `${s.push.resource} ${s.action} ${s.phase}`),
      ["grafana-push-install replace delete-first", "grafana-push-ready delete delete-first"],
    );
    const removed = updateSteps(withPush(base, "grafana-push-ready", { delete: "true" }), {
      ...base,
      hosts: withoutReady.hosts.map((h) =>
        h.name === "grafana" ? h : (base.hosts.find((b) => b.name === h.name) ?? h),
      ),
    });
    assert.deepEqual(
      removed.filter((s) => s.runs === "delete").map((s) => `${s.push.resource} ${s.action} ${s.phase}`),
      ["grafana-push-ready delete delete-last"],
    );
  });

  test("a failed step is not recorded as applied: the next update runs it again", async () => {
    const config = { ...base.config, "titan-observability:rootDiskCriticalPercent": "85" };
    const next = await planStack(config, { stack: STACK, prior: base.resources });
    const install = `${REMOTE_COMMAND}::grafana-push-install`;
    const recorded = recordedState(base, next, new Set([install]));
    const record = (plan: StackPlan, name: string) => plan.resources.find((r) => r.name === name);
    assert.deepEqual(record(recorded, "grafana-push-install"), record(base, "grafana-push-install"));
    // The copy ran: recorded as the update declared it. The verification needs the install: not run.
    assert.deepEqual(record(recorded, "grafana-push-files"), record(next, "grafana-push-files"));
    assert.deepEqual(record(recorded, "verify-pipeline"), record(base, "verify-pipeline"));
    assert.ok(ran(recorded, next).includes("grafana grafana-push-install replace create"));
    // The next `up` with the same configuration, rendered against the recorded state: only it.
    const again = await planStack(config, { stack: STACK, prior: recorded.resources });
    assert.deepEqual(ran(recorded, again), ["grafana grafana-push-install replace create"]);
    assert.equal(
      recorded.resources.length,
      next.resources.length,
      `every resource recorded once: ${resourceKey(next.resources[0])} ...`,
    );
  });
});

describe("the provider's copy, as push.ts plays it over SFTP", () => {
  const tree = () => {
    const dir = fs.mkdtempSync(path.join(tmp, "src-"));
    const src = path.join(dir, "titan-staging");
    fs.mkdirSync(path.join(src, "abc", "etc", "x"), { recursive: true });
    fs.writeFileSync(path.join(src, "abc", "etc", "x", "a.yml"), "a\n");
    fs.writeFileSync(path.join(src, "abc", "top"), "t\n");
    return src;
  };

  /** Applies the ops to a local "host" directory, as sftp would. */
  const apply = (ops: ReturnType<typeof copyOperations>, host: string) => {
    for (const o of ops) {
      if (o.op === "mkdir") fs.mkdirSync(path.join(host, o.remote));
      else fs.copyFileSync(o.local, path.join(host, o.remote));
    }
  };
  const kindsOf = (host: string, paths: string[]) =>
    new Map(
      paths.map((p): [string, RemoteKind] => {
        const abs = path.join(host, p);
        return [p, fs.existsSync(abs) ? (fs.statSync(abs).isDirectory() ? "dir" : "file") : "none"];
      }),
    );
  const listing = (dir: string): string[] => {
    const out: string[] = [];
    const walk = (abs: string, rel: string) => {
      for (const e of fs.readdirSync(abs).sort()) {
        const p = path.join(abs, e);
        const r = rel ? `${rel}/${e}` : e;
        if (fs.statSync(p).isDirectory()) {
          out.push(`d ${r}`);
          walk(p, r);
        } else out.push(`f ${r} ${fs.readFileSync(p, "utf8")}`);
      }
    };
    walk(dir, "");
    return out;
  };
  const candidates = (remote: string) => {
    const out: string[] = [];
    for (let p = remote; p !== "/"; p = path.posix.dirname(p)) out.push(p);
    for (const rel of [
      "",
      "titan-staging",
      "titan-staging/abc",
      "titan-staging/abc/etc",
      "titan-staging/abc/etc/x",
      "titan-staging/abc/etc/x/a.yml",
      "titan-staging/abc/top",
      "abc",
      "abc/etc",
      "abc/etc/x",
      "abc/etc/x/a.yml",
      "abc/top",
    ]) {
      out.push(path.posix.join(remote, rel));
    }
    return out;
  };

  for (const [label, given, prepare] of [
    ["a directory into a missing remote path", "", () => undefined],
    [
      "a directory into an existing one, keeping what is there",
      "",
      (h: string) => {
        fs.mkdirSync(path.join(h, "home/admin/titan-staging/old"), { recursive: true });
      },
    ],
    ["a directory's entries (trailing slash)", "/", () => undefined],
  ] as const) {
    test(`${label}: the same tree as providerCopy`, () => {
      const src = tree();
      const remote = "/home/admin";
      const viaOps = fs.mkdtempSync(path.join(tmp, "host-"));
      const viaProvider = fs.mkdtempSync(path.join(tmp, "host-"));
      prepare(viaOps);
      prepare(viaProvider);
      const ops = copyOperations(src, `${src}${given}`, remote, kindsOf(viaOps, candidates(remote)));
      apply(ops, viaOps);
      providerCopy(`${src}${given}`, path.join(viaProvider, remote), "/");
      assert.deepEqual(listing(viaOps), listing(viaProvider));
    });
  }

  test("a file where the copy needs a directory fails as the provider fails", () => {
    const src = tree();
    const host = fs.mkdtempSync(path.join(tmp, "host-"));
    fs.mkdirSync(path.join(host, "home/admin"), { recursive: true });
    fs.writeFileSync(path.join(host, "home/admin/titan-staging"), "not a dir");
    assert.throws(
      () => copyOperations(src, src, "/home/admin", kindsOf(host, candidates("/home/admin"))),
      /remote path \/home\/admin\/titan-staging exists but is not a directory/,
    );
  });

  test("the mirror sent has the protocol's default modes, whatever the local tree's", () => {
    const src = tree();
    fs.chmodSync(path.join(src, "abc", "top"), 0o755);
    const mirror = protocolDefaultMirror(src, path.join(tmp, "mirror", "titan-staging"));
    assert.equal(fs.statSync(path.join(mirror, "abc", "top")).mode & 0o777, 0o666);
    assert.equal(fs.statSync(path.join(mirror, "abc", "etc")).mode & 0o777, 0o777);
  });
});

test("sshd's AcceptEnv patterns: Debian's LANG LC_* takes no PULUMI_COMMAND_STDOUT", () => {
  const debian = ["LANG", "LC_*"];
  assert.ok(acceptedBy(debian, "LANG"));
  assert.ok(acceptedBy(debian, "LC_ALL"));
  assert.ok(!acceptedBy(debian, "PULUMI_COMMAND_STDOUT"));
  assert.ok(!acceptedBy(debian, "LANGUAGE"));
  assert.ok(acceptedBy(["L?NG"], "LANG"));
});
