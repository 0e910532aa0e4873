/**
 * What `pulumi up` does to a deployed stack when something changes, under mocks that play the
 * engine's part (ignoreChanges, same/update/replace from each provider's replacement rules,
 * ids kept or renewed: tests/support/mockProgram.ts). Data must outlive every host
 * replacement, and nothing may move the stack's zone.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DATA_VOLUME_ROLES, ROLES } from "../facts/topology";
import { VERSIONS } from "../facts/versions";
import { MOCK_PRIVATE_KEY, type RecordedResource } from "./support/mockProgram";
import { actionOf, ofType, one, snapshot, update, type TimedSnapshot } from "./support/snapshots";

const INSTANCE = "aws:ec2/instance:Instance";
const VOLUME = "aws:ebs/volume:Volume";
const ATTACHMENT = "aws:ec2/volumeAttachment:VolumeAttachment";
const SUBNET = "aws:ec2/subnet:Subnet";

const touched = (snap: TimedSnapshot, type?: string): string[] =>
  snap.resources
    .filter((r) => r.custom && (!type || r.type === type) && r.action !== "same")
    .map((r) => `${r.name}:${r.action}`)
    .sort();

const hostName = (role: string) => (role === "web" ? "web-1" : role);

function assertDataKept(snap: TimedSnapshot): void {
  for (const role of DATA_VOLUME_ROLES) {
    const volume = one(snap, VOLUME, `${role}-data`);
    assert.equal(volume.action, "same", `${role}'s data volume must survive: changed ${volume.changed?.join(", ")}`);
  }
}

describe("a pinned version changes", () => {
  it("replaces the Loki host but keeps its data volume, and touches no other host", async () => {
    const snap = await update({}, {}, { changedVersions: { loki: { version: "3.7.9", aptPin: "3.7.9" } } });
    assert.equal(snap.error, undefined, snap.error);
    const loki = one(snap, INSTANCE, "loki");
    assert.equal(loki.action, "replace");
    assert.deepEqual(loki.replacedBecause, ["userData"]);
    assertDataKept(snap);
    // The new host gets the same volume: the attachment follows the instance, the volume id stays.
    const attachment = one(snap, ATTACHMENT, "loki-data-attachment");
    assert.equal(attachment.action, "replace");
    assert.equal(attachment.inputs.volumeId, one(snap, VOLUME, "loki-data").id);
    assert.equal(attachment.inputs.instanceId, loki.id);
    assert.deepEqual(touched(snap, INSTANCE), ["loki:replace"]);
    assert.equal(actionOf(snap, SUBNET, "network-public"), "same");
  });

  it("replaces every host for node_exporter's pin, and every data volume survives", async () => {
    const pin = VERSIONS.nodeExporter;
    const snap = await update({}, {}, { changedVersions: { nodeExporter: { version: "1.5.1", aptPin: "1.5.1-*" } } });
    assert.notEqual(pin.aptPin, "1.5.1-*");
    assert.deepEqual(touched(snap, INSTANCE), ROLES.map((r) => `${hostName(r)}:replace`).sort());
    assertDataKept(snap);
    for (const role of DATA_VOLUME_ROLES) {
      // The user data names the same volume, so the bootstrap mounts it and never formats it.
      assert.match(
        String(one(snap, INSTANCE, role).inputs.userData),
        new RegExp(String(one(snap, VOLUME, `${role}-data`).id)),
      );
    }
  });
});

describe("the availability zone", () => {
  it("stays where the stack started when new instance types would pick another zone", async () => {
    const micro = Object.fromEntries(ROLES.map((r) => [`${r}InstanceType`, "t3.micro"]));
    const snap = await update({}, micro);
    assert.equal(snap.error, undefined, snap.error);
    const subnet = one(snap, SUBNET, "network-public");
    assert.equal(subnet.action, "same");
    assert.equal(subnet.inputs.availabilityZone, "us-east-1b", "a fresh stack would start in us-east-1a");
    assertDataKept(snap);
    for (const host of ofType(snap, INSTANCE)) {
      assert.equal(host.action, "update", host.name);
      assert.deepEqual(host.changed, ["instanceType"], host.name);
      assert.equal(host.inputs.availabilityZone, "us-east-1b");
    }
  });

  it("refuses an instance type its zone lacks, naming the key, and touches no host or volume", async () => {
    const snap = await update({}, { lokiInstanceType: "c7i.large" });
    assert.match(
      snap.error ?? "",
      /lokiInstanceType=c7i\.large: expected an instance type offered in us-east-1b, the zone this stack's subnet and data volumes live in/,
    );
    const reached = (type: string) => snap.resources.filter((r: RecordedResource) => r.type === type);
    assert.deepEqual(touched({ ...snap, resources: [...reached(INSTANCE), ...reached(VOLUME)] }), []);
  });
});

describe("a configuration change", () => {
  it("grows a data volume in place", async () => {
    const snap = await update({}, { lokiDataVolumeSizeGb: "40" });
    const volume = one(snap, VOLUME, "loki-data");
    assert.equal(volume.action, "update");
    assert.deepEqual(volume.changed, ["size"]);
    assert.deepEqual(touched(snap, INSTANCE), []);
  });

  it("re-runs only the Grafana push for a threshold, and the verification that covers it", async () => {
    const snap = await update({}, { cpuWarningPercent: "90" });
    const commands = touched(snap).filter((t) => t.startsWith("grafana-push") || !/push/.test(t));
    assert.ok(
      commands.some((t) => t.startsWith("grafana-push")),
      touched(snap).join(" "),
    );
    const others = touched(snap).filter((t) => !t.startsWith("grafana-push") && !/log-marker|verify-pipeline/.test(t));
    assert.deepEqual(others, [], "only Grafana's push and the verification re-run");
    // A changed push is a new verification (infra/delivery/pipeline.ts).
    assert.ok(touched(snap).includes("verify-pipeline:replace"), touched(snap).join(" "));
  });
});

describe("the image", () => {
  it("replaces every host, as a planned replacement, when amiId is set, and keeps every data volume", async () => {
    const snap = await update({}, { amiId: "ami-0fedcba9876543210" });
    assert.equal(snap.error, undefined, snap.error);
    assert.deepEqual(touched(snap, INSTANCE), ROLES.map((r) => `${hostName(r)}:replace`).sort());
    for (const host of ofType(snap, INSTANCE)) {
      assert.deepEqual(host.replacedBecause, ["ami"], host.name);
      assert.equal(host.inputs.ami, "ami-0fedcba9876543210", host.name);
    }
    assertDataKept(snap);
  });

  it("replaces every host when the pinned Debian release is bumped (a code change), and nothing else", async () => {
    const snap = await update({}, {}, { changedVersions: { debianImage: { name: "debian-12-amd64-20991231-9999" } } });
    assert.equal(snap.error, undefined, snap.error);
    for (const host of ofType(snap, INSTANCE)) {
      assert.equal(host.action, "replace", host.name);
      assert.deepEqual(host.replacedBecause, ["ami"], host.name);
    }
    assertDataKept(snap);
  });

  it("changes nothing when nothing changed: the same configuration is the same image", async () => {
    const snap = await update({}, {});
    assert.equal(snap.error, undefined, snap.error);
    assert.deepEqual(touched(snap, INSTANCE), []);
    // Every resource is the same, the verification and its markers included.
    assert.deepEqual(touched(snap), []);
  });
});

describe("the SSH key", () => {
  it("replaces every host when the operator's key is rotated (a host learns its key only at launch)", async () => {
    const key = (comment: string, fill: string) => `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${fill.repeat(43)} ${comment}`;
    const before = { sshPublicKey: key("old", "A"), sshPrivateKey: MOCK_PRIVATE_KEY };
    const after = { sshPublicKey: key("new", "B"), sshPrivateKey: MOCK_PRIVATE_KEY };
    const snap = await update(before, after, { secretKeys: ["sshPrivateKey"] });
    assert.equal(snap.error, undefined, snap.error);
    for (const host of ofType(snap, INSTANCE)) {
      assert.equal(host.action, "replace", host.name);
      assert.deepEqual(host.replacedBecause, ["keyName"], host.name);
    }
    assertDataKept(snap);
  });
});

describe("the key pair's deployment id (two stacks of one name in one account)", () => {
  const operatorKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorOperatorOperatorOperatorOperator me@laptop";
  const config = { sshPublicKey: operatorKey, sshPrivateKey: MOCK_PRIVATE_KEY };
  const options = { secretKeys: ["sshPrivateKey"] };

  it("keeps a generated key's pair, and so every host, on a stack deployed before it", async () => {
    // A generated key is drawn per deployment: its name is the digest alone, as it always was.
    const snap = await update({}, {});
    const keyPair = one(snap, "aws:ec2/keyPair:KeyPair", "deploy-key");
    assert.match(String(keyPair.inputs.keyName), /^titan-observability-dev-deploy-[0-9a-f]{10}$/);
    assert.deepEqual(touched(snap), []);
  });

  it("replaces every host once on a stack with the operator's key, then keeps them", async () => {
    const now = await snapshot(config, options);
    const keyPair = one(now, "aws:ec2/keyPair:KeyPair", "deploy-key");
    const id = one(now, "random:index/randomId:RandomId", "loki-chunks-suffix").state?.hex as string;
    const newName = String(keyPair.inputs.keyName);
    assert.ok(newName.endsWith(`-${id}`), newName);
    // The same stack as the program before the id left it: every name without it.
    const oldName = newName.slice(0, -`-${id}`.length);
    const deployedBefore = JSON.parse(JSON.stringify(now.resources).split(newName).join(oldName)) as RecordedResource[];
    const first = await snapshot(config, { ...options, prior: deployedBefore });
    assert.equal(first.error, undefined, first.error);
    assert.equal(actionOf(first, "aws:ec2/keyPair:KeyPair", "deploy-key"), "replace");
    for (const host of ofType(first, INSTANCE)) {
      assert.equal(host.action, "replace", host.name);
      assert.deepEqual(host.replacedBecause, ["keyName"], host.name);
    }
    assertDataKept(first);
    assert.equal(actionOf(first, "aws:s3/bucket:Bucket", "loki-chunks"), "same", "the bucket keeps its name and data");
    const second = await snapshot(config, { ...options, prior: first.resources });
    assert.deepEqual(touched(second), []);
  });
});
