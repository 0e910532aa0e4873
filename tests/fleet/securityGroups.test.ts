/**
 * The fleet's security-group stand-in: its rules are the program's (infra/securityGroups.ts) for
 * the enforced ports, resolved to the plan's addresses, and nft itself accepts the ruleset.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { SERVICES } from "../../facts/topology";
import { FLEET_PLAN } from "./layout";
import { ENFORCED_SERVICES, securityGroupRuleset } from "./securityGroups";

const ipOf = (role: string) => FLEET_PLAN.hosts.filter((h) => h.role === role).map((h) => h.privateIp);

test("the web host's agent ports: the webhook from grafana only, its metrics from prometheus only", () => {
  const web = FLEET_PLAN.hosts.find((h) => h.role === "web");
  assert.ok(web);
  const ruleset = securityGroupRuleset(web, FLEET_PLAN) ?? "";
  const webhook = SERVICES.remediation.port;
  const metrics = SERVICES.remediationMetrics.port;
  assert.match(ruleset, new RegExp(`tcp dport ${webhook} ip saddr \\{ ${ipOf("grafana").join(", ")} \\} accept`));
  assert.match(ruleset, new RegExp(`tcp dport ${metrics} ip saddr \\{ ${ipOf("prometheus").join(", ")} \\} accept`));
  assert.match(ruleset, new RegExp(`tcp dport ${webhook} drop`));
  assert.match(ruleset, new RegExp(`tcp dport ${metrics} drop`));
  // Nothing else on the web host is filtered: the harness reaches its other ports.
  const filtered = [...ruleset.matchAll(/tcp dport (\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual([...new Set(filtered)].sort(), ENFORCED_SERVICES.map((s) => SERVICES[s].port).sort());
  // A host's traffic to itself is never filtered, as on an instance.
  assert.match(ruleset, /iifname "lo" accept/);
});

test("roles that run none of the enforced services get no ruleset", () => {
  for (const h of FLEET_PLAN.hosts.filter((x) => x.role !== "web")) {
    assert.equal(securityGroupRuleset(h, FLEET_PLAN), undefined, h.name);
  }
});

test("nft accepts the ruleset (checked, not loaded; scripts/debian-packages.txt installs nft)", () => {
  const web = FLEET_PLAN.hosts.find((h) => h.role === "web");
  assert.ok(web);
  const r = spawnSync("nft", ["-c", "-f", "-"], { input: securityGroupRuleset(web, FLEET_PLAN), encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});
