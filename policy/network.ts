/**
 * Ingress guardrails: nothing open to the whole internet, and the stack's internal ports open
 * to security groups only. The three ways the AWS provider expresses an ingress rule are all
 * read: the standalone vpc.SecurityGroupIngressRule (what infra/securityGroups.ts declares),
 * the older ec2.SecurityGroupRule of type "ingress", and a group's inline `ingress` blocks.
 */
import { SecurityGroup } from "@pulumi/aws/ec2/securityGroup";
import { SecurityGroupRule } from "@pulumi/aws/ec2/securityGroupRule";
import { SecurityGroupIngressRule } from "@pulumi/aws/vpc/securityGroupIngressRule";
import { validateResourceOfType, type ResourceValidationPolicy, type ReportViolation } from "@pulumi/policy";
import { FLOWS, SERVICES, isOperator } from "../facts/topology";
import { subject, withFix } from "./subject";

/** One ingress permission, whatever resource declared it. */
interface Ingress {
  readonly protocol: string;
  readonly fromPort: number;
  readonly toPort: number;
  /** Address-based sources: CIDRs and prefix lists. */
  readonly addresses: readonly string[];
}

/** Ports only other roles reach (no operator flow names them): node_exporter, Alloy, Loki. */
export const INTERNAL_PORTS: readonly number[] = FLOWS.filter((flow) => !flow.from.some(isOperator))
  .map((flow) => SERVICES[flow.service].port)
  .sort((a, b) => a - b);

const isWorld = (cidr: string) => /\/0$/.test(cidr.trim());

/** "-1" is every protocol and port (EC2 API: IpPermission.IpProtocol). */
const coversPort = (rule: Ingress, port: number) =>
  rule.protocol === "-1" || rule.protocol === "all" || (rule.fromPort <= port && port <= rule.toPort);

const portLabel = (port: number) => {
  const service = Object.values(SERVICES).find((s) => s.port === port);
  return service ? `${port} (${service.description})` : String(port);
};

const rangeLabel = (rule: Ingress) =>
  rule.protocol === "-1" || rule.protocol === "all"
    ? "every port"
    : rule.fromPort === rule.toPort
      ? `port ${portLabel(rule.fromPort)}`
      : `ports ${rule.fromPort}-${rule.toPort}`;

const addressesOf = (...groups: (string | readonly string[] | undefined)[]): string[] =>
  groups.flatMap((g) => (g === undefined ? [] : typeof g === "string" ? [g] : [...g]));

type IngressCheck = (rule: Ingress, what: string, report: ReportViolation) => void;

/** The same check for each of the three resource kinds that carry ingress rules. */
function forEachIngress(check: IngressCheck) {
  return [
    validateResourceOfType(SecurityGroupIngressRule, (r, args, report) =>
      check(
        {
          protocol: r.ipProtocol,
          fromPort: r.fromPort ?? -1,
          toPort: r.toPort ?? -1,
          addresses: addressesOf(r.cidrIpv4, r.cidrIpv6, r.prefixListId),
        },
        subject(args),
        report,
      ),
    ),
    validateResourceOfType(SecurityGroupRule, (r, args, report) => {
      if (r.type !== "ingress") return;
      const addresses = addressesOf(r.cidrBlocks, r.ipv6CidrBlocks, r.prefixListIds);
      check({ protocol: r.protocol, fromPort: r.fromPort, toPort: r.toPort, addresses }, subject(args), report);
    }),
    validateResourceOfType(SecurityGroup, (group, args, report) => {
      for (const b of group.ingress ?? []) {
        const addresses = addressesOf(b.cidrBlocks, b.ipv6CidrBlocks, b.prefixListIds);
        check({ protocol: b.protocol, fromPort: b.fromPort, toPort: b.toPort, addresses }, subject(args), report);
      }
    }),
  ];
}

export const noWorldIngress: ResourceValidationPolicy = {
  name: "no-world-ingress",
  description: "No security-group ingress from 0.0.0.0/0 or ::/0, on any port.",
  enforcementLevel: "mandatory",
  validateResource: forEachIngress((rule, what, report) => {
    for (const cidr of rule.addresses.filter(isWorld)) {
      report(
        withFix(
          `${what} opens ${rangeLabel(rule)} to ${cidr}, the whole internet`,
          "admit the operator's addresses only (the allowedCidrs config) or a source security group",
        ),
      );
    }
  }),
};

export const internalPortsByGroup: ResourceValidationPolicy = {
  name: "internal-ports-by-group",
  description: `Internal ports (${INTERNAL_PORTS.join(", ")}) admit source security groups, never address ranges.`,
  enforcementLevel: "mandatory",
  validateResource: forEachIngress((rule, what, report) => {
    if (rule.addresses.length === 0) return;
    for (const port of INTERNAL_PORTS.filter((p) => coversPort(rule, p))) {
      report(
        withFix(
          `${what} admits ${rule.addresses.join(", ")} to internal port ${portLabel(port)}`,
          "reference the source role's security group (referencedSecurityGroupId), as infra/securityGroups.ts does for every flow between hosts",
        ),
      );
    }
  }),
};
