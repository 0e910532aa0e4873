import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { operatorAccess, parseCidrList, type AccessInput } from "../tools/operatorAccess";

const base: AccessInput = { ip: "203.0.113.9", ipSource: "test", allowedCidrs: "", stack: "dev", mode: "local" };
const verdict = (over: Partial<AccessInput>) => operatorAccess({ ...base, ...over });

describe("operatorAccess", () => {
  it("proceeds for an address inside any listed CIDR, edges included", () => {
    for (const [ip, list] of [
      ["203.0.113.9", '["203.0.113.9/32"]'],
      ["203.0.113.0", '["192.0.2.0/24","203.0.112.0/23"]'],
      ["203.0.113.255", "203.0.112.0/23"],
      ["8.8.8.8", '["0.0.0.0/0"]'],
    ]) {
      assert.deepEqual(verdict({ ip, allowedCidrs: list }), { action: "proceed" }, `${ip} in ${list}`);
    }
  });

  it("refuses an address just outside, in either mode", () => {
    for (const mode of ["local", "shared"] as const) {
      const v = verdict({ ip: "203.0.114.0", allowedCidrs: '["203.0.112.0/23"]', mode });
      assert.equal(v.action, "refuse", mode);
    }
  });

  it("sets the operator's /32 only in local mode when the key is unset", () => {
    assert.deepEqual(verdict({}), { action: "set", cidr: "203.0.113.9/32" });
    const shared = verdict({ mode: "shared" });
    assert.equal(shared.action, "refuse");
    assert.match(shared.action === "refuse" ? shared.message : "", /<team-cidr>/);
  });

  it("names key, value and expectation for a malformed list or address", () => {
    const list = verdict({ allowedCidrs: '["10.0.0.5/24"]' });
    assert.match(
      list.action === "refuse" ? list.message : "",
      /allowedCidrs = .*expected IPv4 CIDRs in canonical form; "10\.0\.0\.5\/24"/,
    );
    const ip = verdict({ ip: "2001:db8::1", ipSource: "TITAN_OPERATOR_IP" });
    assert.match(
      ip.action === "refuse" ? ip.message : "",
      /TITAN_OPERATOR_IP gave "2001:db8::1": expected an IPv4 address/,
    );
  });

  it("reads the JSON list Pulumi prints and the comma form", () => {
    assert.equal(parseCidrList('["192.0.2.0/24", "198.51.100.7/32"]').length, 2);
    assert.equal(parseCidrList("192.0.2.0/24,198.51.100.7/32").length, 2);
    assert.equal(typeof parseCidrList("[not json"), "string");
  });
});
