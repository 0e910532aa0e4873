/**
 * A STAND-IN for EC2 security groups, for a few ports only: the fleet's hosts share one bridge
 * with nothing between them, so a port the program opens to one role alone would answer every
 * host here. For the services below, each host's network namespace gets an nftables input
 * filter built from the program's own rules (infra/securityGroups.ts ruleSpecs, with every
 * role resolved to its hosts' addresses in the plan): a listed source is accepted, anything
 * else dropped, as a security group drops (the sender sees a timeout, not a refusal).
 *
 * What it cannot prove: AWS's own enforcement, rules for any other port (those stay open on
 * the bridge, where the harness itself queries Loki, node_exporter and the rest), or the
 * groups' egress rules. Traffic a host sends itself is never filtered, as on an instance.
 */
import type { AddressPlan, HostSlot } from "../../facts/addressing";
import { SERVICES, type ServiceName } from "../../facts/topology";
import { ruleSpecs } from "../../infra/securityGroups";
import { run } from "./exec";

/** The services whose security-group rules the fleet enforces. */
export const ENFORCED_SERVICES: readonly ServiceName[] = ["remediation", "remediationMetrics"];

const TABLE = "titan_security_groups";

/** The nftables ruleset for one host, or undefined when none of its ports is enforced here. */
export function securityGroupRuleset(slot: HostSlot, plan: AddressPlan): string | undefined {
  const ports = new Set<number>(ENFORCED_SERVICES.map((s) => SERVICES[s].port));
  const specs = ruleSpecs([]).filter((r) => r.direction === "ingress" && r.role === slot.role && ports.has(r.port));
  if (specs.length === 0) return undefined;
  const lines: string[] = [];
  for (const port of [...new Set(specs.map((s) => s.port))].sort((a, b) => a - b)) {
    const sources = specs
      .filter((s) => s.port === port)
      .flatMap((s) =>
        "role" in s.peer
          ? plan.hosts.filter((h) => "role" in s.peer && h.role === s.peer.role).map((h) => h.privateIp)
          : [s.peer.cidr],
      );
    if (sources.length > 0) lines.push(`    tcp dport ${port} ip saddr { ${[...new Set(sources)].join(", ")} } accept`);
    lines.push(`    tcp dport ${port} drop`);
  }
  return [
    `table inet ${TABLE} {`,
    "  chain input {",
    "    type filter hook input priority filter; policy accept;",
    '    iifname "lo" accept',
    ...lines,
    "  }",
    "}",
    "",
  ].join("\n");
}

/** Loads the host's ruleset into the network namespace of the container whose init is `leaderPid`. */
export function enforceSecurityGroups(slot: HostSlot, plan: AddressPlan, leaderPid: number | undefined): void {
  const ruleset = securityGroupRuleset(slot, plan);
  if (ruleset === undefined) return;
  if (leaderPid === undefined)
    throw new Error(`${slot.name}: no running init to load its security-group stand-in into`);
  run("nsenter", ["--target", String(leaderPid), "--net", "nft", "-f", "-"], { input: ruleset });
}
