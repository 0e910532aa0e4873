/**
 * A host's whole push records its failure on the host instead of throwing (provision.ts
 * pushRecorded), and the "push over SSH" check reports it (pushCheck): the first `up` and a
 * replaced instance both reach their push check with what failed. Before, replaceHost threw, so
 * "replaced: push over SSH" could only pass and a failed push surfaced as the replacement's
 * machinery failing. No host boots here: the push fails on its first step, before any SSH (it
 * connects as a user that is not the image's login user, which runSteps refuses).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { pushCheck, pushRecorded, type ProvisionedFleet, type ProvisionedHost } from "./provision";
import { REMOTE_COMMAND, type PlannedCommand } from "./stackPlan";

function fleetWithOneHost(user: string): { pf: ProvisionedFleet; host: ProvisionedHost; log: string[] } {
  const push: PlannedCommand = {
    type: REMOTE_COMMAND,
    resource: "prometheus-install",
    connection: { host: "192.0.2.10", user, privateKey: "k", hostKey: "ssh-ed25519 AAAA" },
    triggers: [],
    action: "create",
    changed: [],
    dependsOn: [],
    create: "true",
  } as unknown as PlannedCommand;
  const host = {
    slot: { name: "prometheus", role: "prometheus", privateIp: "10.99.0.10" },
    planned: { name: "prometheus", pushes: [push] },
    pushSeconds: 0,
    target: { address: "10.99.0.10", user: "admin" },
  } as unknown as ProvisionedHost;
  const log: string[] = [];
  const pf = { hosts: [host], log: (l: string) => log.push(l), outputs: new Map() } as unknown as ProvisionedFleet;
  return { pf, host, log };
}

test("a failed push is recorded on the host and its check fails with the reason", async () => {
  const { pf, host, log } = fleetWithOneHost("root");
  const ran = await pushRecorded(pf, "prometheus");
  assert.deepEqual(ran, []);
  assert.match(host.pushError ?? "", /prometheus-install: connects as root, the image's login user is admin/);
  assert.ok(
    log.some((l) => l.startsWith("prometheus: push FAILED: ")),
    log.join("\n"),
  );
  const check = pushCheck(host, "replaced (i-0abc)");
  assert.equal(check.ok, false);
  assert.equal(check.name, "replaced (i-0abc): push over SSH");
  assert.equal(check.host, "prometheus");
  assert.equal(check.detail, host.pushError);
});

test("a push with no failure recorded passes with the steps it ran; any recorded failure fails", () => {
  const { host } = fleetWithOneHost("admin");
  const ok = pushCheck({ ...host, pushError: undefined, pushSeconds: 2.25 });
  assert.deepEqual(ok, { name: "push over SSH", host: "prometheus", ok: true, detail: "1 steps in 2.3 s" });
  assert.equal(pushCheck({ ...host, pushError: "exit 1" }).ok, false);
});
