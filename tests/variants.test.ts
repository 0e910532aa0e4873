/** The program under other configurations: scaling, operator CIDRs, supplied keys and images, bad input. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MOCK_AMI, MOCK_PRIVATE_KEY } from "./support/mockProgram";
import { ofType, one, plainInputs, snapshot } from "./support/snapshots";

const INSTANCE = "aws:ec2/instance:Instance";
const INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";

describe("program variants", () => {
  it("declares webCount web hosts with consecutive fixed IPs and one app URL each", async () => {
    const snap = await snapshot({ webCount: "3" });
    const web = ofType(snap, INSTANCE).filter((h) => (h.inputs.tags as Record<string, string>).Role === "web");
    assert.deepEqual(web.map((h) => [h.name, h.inputs.privateIp]).sort(), [
      ["web-1", "10.42.0.20"],
      ["web-2", "10.42.0.21"],
      ["web-3", "10.42.0.22"],
    ]);
    assert.equal((snap.outputs.appUrls.value as string[]).length, 3);
    assert.equal(ofType(snap, INSTANCE).length, 6);
    // More web hosts need no new rule: rules reference the role's group, not hosts.
    const base = await snapshot();
    assert.equal(ofType(snap, INGRESS).length, ofType(base, INGRESS).length);
  });

  it("opens the operator ports to every configured CIDR and nothing else", async () => {
    const snap = await snapshot({ allowedCidrs: '["198.51.100.0/24","203.0.113.9/32"]' });
    const cidrRules = ofType(snap, INGRESS).filter((r) => r.inputs.cidrIpv4);
    const seen = cidrRules.map((r) => `${String(r.inputs.cidrIpv4)}:${String(r.inputs.fromPort)}`);
    const perCidr = ["22", "22", "22", "22", "3000", "5000", "9090"];
    for (const cidr of ["198.51.100.0/24", "203.0.113.9/32"]) {
      assert.deepEqual(
        seen
          .filter((s) => s.startsWith(`${cidr}:`))
          .map((s) => s.split(":")[1])
          .sort(),
        perCidr,
        cidr,
      );
    }
    assert.equal(cidrRules.length, 14);
  });

  it("stops before creating anything when the configuration is invalid", async () => {
    const snap = await snapshot({ webCount: "0", rootDiskCriticalPercent: "150" });
    assert.match(snap.error ?? "", /Invalid stack configuration \(nothing was created\)/);
    assert.match(snap.error ?? "", /webCount = "0": expected a whole number from 1 to 10/);
    assert.match(snap.error ?? "", /rootDiskCriticalPercent = "150"/);
    assert.equal(snap.resources.length, 0);
    assert.equal(snap.invokes.length, 0);
  });

  it("stops when allowedCidrs is missing", async () => {
    const snap = await snapshot({ "aws:region": "us-east-1" }, { replaceBase: true });
    assert.match(snap.error ?? "", /allowedCidrs is not set/);
    assert.equal(snap.resources.length, 0);
  });

  it("uses a supplied key pair instead of generating one, and keeps its private half secret", async () => {
    const publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorOperatorOperatorOperatorOperator me@laptop";
    const snap = await snapshot(
      { sshPublicKey: publicKey, sshPrivateKey: MOCK_PRIVATE_KEY },
      { secretKeys: ["sshPrivateKey"] },
    );
    assert.equal(snap.error, undefined, snap.error);
    assert.equal(ofType(snap, "tls:index/privateKey:PrivateKey").length, 0);
    assert.equal(one(snap, "aws:ec2/keyPair:KeyPair", "deploy-key").inputs.publicKey, publicKey);
    assert.equal(snap.outputs.sshPrivateKey, undefined, "the operator already has it");
    // No file is written for it, so none is named, and the ssh commands leave the key to ssh.
    assert.equal(snap.outputs.sshKeyFile, undefined, "no key file to point at");
    const hosts = snap.outputs.hosts.value as Record<string, { ssh: string; publicIp: string }>;
    assert.equal(hosts.loki.ssh, `ssh admin@${hosts.loki.publicIp}`);
  });

  it("uses an explicit AMI without looking any image up", async () => {
    const snap = await snapshot({ amiId: "ami-0fedcba9876543210" });
    assert.deepEqual(
      snap.invokes.filter((i) => ["aws:ssm/getParameter:getParameter", "aws:ec2/getAmi:getAmi"].includes(i.token)),
      [],
    );
    for (const host of ofType(snap, INSTANCE)) assert.equal(host.inputs.ami, "ami-0fedcba9876543210");
  });

  it("uses an SSM parameter when one is set, as a plain (not secret) AMI id", async () => {
    const snap = await snapshot({ amiSsmParameter: "/aws/service/debian/release/12/latest/amd64" });
    assert.equal(snap.error, undefined, snap.error);
    const ssm = snap.invokes.filter((i) => i.token === "aws:ssm/getParameter:getParameter");
    assert.deepEqual(
      ssm.map((i) => i.inputs.name),
      ["/aws/service/debian/release/12/latest/amd64"],
    );
    // A plain string: the SSM parameter's `value` is a secret and would show as [secret] in diffs.
    for (const host of ofType(snap, INSTANCE)) assert.equal(host.inputs.ami, MOCK_AMI);
  });

  it("deploys with a Slack webhook without exposing it", async () => {
    const webhook = "https://hooks.slack.com/services/T0000/B0000/SENTINELwebhook";
    const snap = await snapshot({ slackWebhookUrl: webhook }, { secretKeys: ["slackWebhookUrl"] });
    assert.equal(snap.error, undefined, snap.error);
    const plain = JSON.stringify(Object.values(snap.outputs).filter((o) => !o.secret));
    assert.ok(!plain.includes("SENTINELwebhook"));
    for (const r of snap.resources) assert.ok(!plainInputs(r).includes("SENTINELwebhook"), r.name);
  });

  it("refuses a webhook stored in plain text, before creating anything", async () => {
    const snap = await snapshot({ slackWebhookUrl: "https://hooks.slack.com/services/T0000/B0000/SENTINELwebhook" });
    assert.match(snap.error ?? "", /slackWebhookUrl is stored in plain text/);
    assert.ok(!(snap.error ?? "").includes("SENTINELwebhook"));
    assert.equal(snap.resources.length, 0);
  });

  it("keeps every host's user data when only thresholds, retention or the webhook change", async () => {
    const base = await snapshot();
    const changed = await snapshot(
      {
        rootDiskCriticalPercent: "80",
        cpuWarningPercent: "70",
        prometheusRetentionDays: "30",
        slackWebhookUrl: "https://hooks.slack.com/services/T/B/X",
      },
      { secretKeys: ["slackWebhookUrl"] },
    );
    const userData = (snap: typeof base) =>
      Object.fromEntries(ofType(snap, INSTANCE).map((h) => [h.name, h.inputs.userData]));
    assert.deepEqual(userData(changed), userData(base));
    for (const data of Object.values(userData(base))) assert.match(String(data), /^#cloud-config\n/);
  });

  it("names and tags resources after the stack and environment", async () => {
    const snap = await snapshot({ environment: "demo" }, { stack: "staging" });
    const tags = one(snap, INSTANCE, "grafana").inputs.tags as Record<string, string>;
    assert.equal(tags.Name, "titan-observability-staging-grafana");
    assert.equal(tags.Environment, "demo");
    assert.equal(
      one(snap, "aws:s3/bucket:Bucket", "loki-chunks").inputs.bucket,
      "titan-observability-staging-loki-1a2b3c4d",
    );
  });

  it("sizes volumes and retention from config", async () => {
    const snap = await snapshot({ rootVolumeSizeGb: "30", prometheusDataVolumeSizeGb: "50", lokiRetentionDays: "30" });
    for (const host of ofType(snap, INSTANCE)) {
      assert.equal((host.inputs.rootBlockDevice as Record<string, unknown>).volumeSize, 30);
    }
    assert.equal(one(snap, "aws:ebs/volume:Volume", "prometheus-data").inputs.size, 50);
    const lifecycle = one(
      snap,
      "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
      "loki-chunks-lifecycle",
    );
    assert.equal((lifecycle.inputs.rules as { expiration: { days: number } }[])[0].expiration.days, 31);
  });
});
