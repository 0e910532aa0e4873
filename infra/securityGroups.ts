/**
 * One security group per role, with rules generated from the flow table in topology.ts.
 * Rules are separate resources that reference groups, not addresses, so groups can refer to
 * each other without a cycle and replacing a host never touches a rule.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../facts/config";
import { baseTags } from "../facts/naming";
import { INTERNET_EGRESS_PORTS, ROLES, SERVICES, ingressRules, isOperator, type Role } from "../facts/topology";

/** A rule as data: what the tests compare against the matrix. */
export interface RuleSpec {
  readonly name: string;
  readonly direction: "ingress" | "egress";
  readonly role: Role;
  readonly port: number;
  readonly peer: { readonly role: Role } | { readonly cidr: string };
  readonly description: string;
}

const cidrSlug = (cidr: string) => cidr.replace(/[./]/g, "-");

/** Every rule of the stack for the given operator CIDRs, as plain data. */
export function ruleSpecs(allowedCidrs: readonly string[]): RuleSpec[] {
  const specs: RuleSpec[] = [];
  for (const rule of ingressRules()) {
    const service = SERVICES[rule.service];
    const from = rule.from;
    if (isOperator(from)) {
      for (const cidr of allowedCidrs) {
        specs.push({
          name: `${rule.to}-in-${rule.port}-from-${cidrSlug(cidr)}`,
          direction: "ingress",
          role: rule.to,
          port: rule.port,
          peer: { cidr },
          description: `${service.description} from operator ${cidr}`,
        });
      }
      continue;
    }
    const source = from.role;
    specs.push({
      name: `${rule.to}-in-${rule.port}-from-${source}`,
      direction: "ingress",
      role: rule.to,
      port: rule.port,
      peer: { role: source },
      description: `${service.description} from ${source}`,
    });
    // The mirror image: the source may open that connection.
    specs.push({
      name: `${source}-out-${rule.port}-to-${rule.to}`,
      direction: "egress",
      role: source,
      port: rule.port,
      peer: { role: rule.to },
      description: `${service.description} on ${rule.to}`,
    });
  }
  for (const role of ROLES) {
    for (const port of INTERNET_EGRESS_PORTS) {
      specs.push({
        name: `${role}-out-${port}-to-internet`,
        direction: "egress",
        role,
        port,
        peer: { cidr: "0.0.0.0/0" },
        description: port === 443 ? "HTTPS: packages, releases, S3 endpoint, Slack" : "HTTP: Debian package mirrors",
      });
    }
  }
  return specs;
}

export interface SecurityGroupsArgs {
  readonly config: StackConfig;
  readonly vpcId: pulumi.Input<string>;
}

export class SecurityGroups extends pulumi.ComponentResource {
  readonly byRole: Readonly<Record<Role, aws.ec2.SecurityGroup>>;
  /**
   * Every rule of each role's group. A new group has no egress at all (the AWS provider removes
   * the default allow-all rule: terraform-provider-aws internal/service/ec2/vpc_security_group.go
   * revokes it on create), so a host launched before its rules exist bootstraps without a path to
   * the package mirrors; hosts depend on these.
   */
  readonly rulesOf: Readonly<Record<Role, pulumi.Resource[]>>;

  constructor(name: string, args: SecurityGroupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titan:infra:SecurityGroups", name, {}, opts);
    const { config } = args;
    const parent = { parent: this };

    const groups = {} as Record<Role, aws.ec2.SecurityGroup>;
    for (const role of ROLES) {
      groups[role] = new aws.ec2.SecurityGroup(
        `${role}-sg`,
        {
          vpcId: args.vpcId,
          description: `${role} hosts of ${config.project}-${config.stack}`,
          tags: { ...baseTags(config, `${role}-sg`), Role: role },
        },
        parent,
      );
    }
    this.byRole = groups;
    const rules = Object.fromEntries(ROLES.map((role) => [role, [] as pulumi.Resource[]])) as Record<
      Role,
      pulumi.Resource[]
    >;
    this.rulesOf = rules;

    for (const spec of ruleSpecs(config.allowedCidrs)) {
      const common = {
        securityGroupId: groups[spec.role].id,
        ipProtocol: "tcp",
        fromPort: spec.port,
        toPort: spec.port,
        description: spec.description,
        ...("cidr" in spec.peer
          ? { cidrIpv4: spec.peer.cidr }
          : { referencedSecurityGroupId: groups[spec.peer.role].id }),
        tags: baseTags(config, spec.name),
      };
      rules[spec.role].push(
        spec.direction === "ingress"
          ? new aws.vpc.SecurityGroupIngressRule(spec.name, common, parent)
          : new aws.vpc.SecurityGroupEgressRule(spec.name, common, parent),
      );
    }

    this.registerOutputs({});
  }
}
