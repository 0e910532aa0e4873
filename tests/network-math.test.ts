import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addressPlan } from "../facts/addressing";
import { canonicalCidr, contains, formatIpv4, isPrivate, parseCidr, parseIpv4 } from "../facts/cidr";
import { lifecycleExpiryDays, bucketNameFor } from "../infra/lokiBucket";
import { pickZone } from "../infra/placement";

describe("cidr", () => {
  it("parses canonical CIDRs only", () => {
    assert.deepEqual(parseCidr("10.42.0.0/16"), { base: 10 * 2 ** 24 + 42 * 2 ** 16, prefix: 16 });
    assert.equal(parseCidr("10.42.0.1/16"), undefined);
    assert.equal(parseCidr("10.42.0.0/33"), undefined);
    assert.equal(parseCidr("256.0.0.0/8"), undefined);
    assert.equal(parseCidr("10.0.0/8"), undefined);
    assert.equal(parseCidr("010.0.0.0/8"), undefined);
    assert.deepEqual(parseCidr("0.0.0.0/0"), { base: 0, prefix: 0 });
  });
  it("suggests the canonical form", () => {
    assert.equal(canonicalCidr("203.0.113.77/24"), "203.0.113.0/24");
    assert.equal(canonicalCidr("nonsense"), undefined);
  });
  it("round-trips addresses", () => {
    assert.equal(formatIpv4(parseIpv4("192.168.1.254") as number), "192.168.1.254");
  });
  it("knows the private ranges", () => {
    assert.ok(isPrivate(parseCidr("172.31.0.0/16")!));
    assert.ok(!isPrivate(parseCidr("172.32.0.0/16")!));
    assert.ok(contains(parseCidr("10.0.0.0/8")!, parseCidr("10.1.2.0/24")!));
    assert.ok(!contains(parseCidr("10.1.2.0/24")!, parseCidr("10.0.0.0/8")!));
  });
});

describe("address plan", () => {
  it("fixes one private IP per host inside the first /24", () => {
    const plan = addressPlan("10.42.0.0/16", 3);
    assert.equal(plan.subnetCidr, "10.42.0.0/24");
    assert.deepEqual(
      plan.hosts.map((h) => [h.name, h.role, h.privateIp]),
      [
        ["web-1", "web", "10.42.0.20"],
        ["web-2", "web", "10.42.0.21"],
        ["web-3", "web", "10.42.0.22"],
        ["prometheus", "prometheus", "10.42.0.10"],
        ["loki", "loki", "10.42.0.11"],
        ["grafana", "grafana", "10.42.0.12"],
      ],
    );
  });
  it("does not move existing hosts when webCount grows", () => {
    const small = addressPlan("10.42.0.0/16", 1);
    const large = addressPlan("10.42.0.0/16", 10);
    for (const host of small.hosts)
      assert.equal(large.hosts.find((h) => h.name === host.name)?.privateIp, host.privateIp);
    assert.equal(new Set(large.hosts.map((h) => h.privateIp)).size, large.hosts.length);
  });
  it("rejects counts outside 1-10", () => {
    assert.throws(() => addressPlan("10.42.0.0/16", 0), /webCount 0/);
    assert.throws(() => addressPlan("10.42.0.0/16", 11), /webCount 11/);
  });
});

describe("placement", () => {
  it("picks the first zone offering every type", () => {
    const offers = [
      { instanceType: "t3.small", location: "us-east-1c" },
      { instanceType: "t3.small", location: "us-east-1a" },
      { instanceType: "t3.medium", location: "us-east-1c" },
    ];
    assert.equal(pickZone(offers, ["t3.small"]), "us-east-1a");
    assert.equal(pickZone(offers, ["t3.small", "t3.medium"]), "us-east-1c");
    assert.throws(() => pickZone(offers, ["m5.large"]), /No availability zone in this region offers all of m5\.large/);
  });
});

describe("Loki bucket naming and expiry", () => {
  it("keeps names valid for S3 and keeps the random suffix", () => {
    assert.equal(bucketNameFor("titan-observability-dev-loki", "1a2b3c4d"), "titan-observability-dev-loki-1a2b3c4d");
    const long = bucketNameFor(`Titan_${"x".repeat(80)}-loki`, "1a2b3c4d");
    assert.ok(long.length <= 63 && /^[a-z0-9][a-z0-9-]*-1a2b3c4d$/.test(long), long);
  });
  it("expires objects a day after Loki's retention", () => {
    assert.equal(lifecycleExpiryDays(7), 8);
  });
});
