/**
 * Instance profiles, least privilege: Prometheus may only describe instances and zones (EC2
 * service discovery); Loki may only list its bucket and read, write and delete its objects.
 * With metricsStore=amp, Prometheus may also write to the stack's AMP workspace and the Grafana
 * host gets a profile that may only query it. Otherwise the web and Grafana hosts get no profile.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../facts/config";
import { AMP_QUERY_ACTIONS, AMP_WRITE_ACTIONS } from "../facts/metricsStore";
import { baseTags } from "../facts/naming";

export interface PolicyStatement {
  readonly Sid: string;
  readonly Effect: "Allow";
  readonly Action: readonly string[];
  readonly Resource: string | readonly string[];
}

/**
 * EC2 Describe* calls cannot be scoped to resources; "*" is the only valid resource. With an AMP
 * workspace, remote write to that workspace only.
 */
export const prometheusStatements = (ampWorkspaceArn?: string): PolicyStatement[] => [
  {
    Sid: "Ec2ServiceDiscovery",
    Effect: "Allow",
    Action: ["ec2:DescribeAvailabilityZones", "ec2:DescribeInstances"],
    Resource: "*",
  },
  ...(ampWorkspaceArn === undefined
    ? []
    : [{ Sid: "AmpRemoteWrite", Effect: "Allow" as const, Action: [...AMP_WRITE_ACTIONS], Resource: ampWorkspaceArn }]),
];

/** Grafana's SigV4 data source (templates/grafana/datasources.ts): the query actions on the workspace only. */
export const grafanaStatements = (ampWorkspaceArn: string): PolicyStatement[] => [
  { Sid: "AmpQuery", Effect: "Allow", Action: [...AMP_QUERY_ACTIONS], Resource: ampWorkspaceArn },
];

export const lokiStatements = (bucketArn: string): PolicyStatement[] => [
  { Sid: "ListLokiBucket", Effect: "Allow", Action: ["s3:ListBucket"], Resource: bucketArn },
  {
    Sid: "ReadWriteLokiObjects",
    Effect: "Allow",
    Action: ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
    Resource: `${bucketArn}/*`,
  },
];

const assumeByEc2 = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
});

export interface InstanceProfileArgs {
  readonly config: StackConfig;
  readonly role: string;
  readonly statements: pulumi.Input<PolicyStatement[]>;
}

/** A role that only EC2 can assume, one inline policy, and the profile that carries it. */
export class HostInstanceProfile extends pulumi.ComponentResource {
  readonly profile: aws.iam.InstanceProfile;
  readonly iamRole: aws.iam.Role;

  constructor(name: string, args: InstanceProfileArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titan:infra:HostInstanceProfile", name, {}, opts);
    const parent = { parent: this };
    const tags = { ...baseTags(args.config, `${args.role}-role`), Role: args.role };

    this.iamRole = new aws.iam.Role(
      `${name}-role`,
      {
        assumeRolePolicy: assumeByEc2,
        description: `Instance role of the ${args.role} host`,
        tags,
      },
      parent,
    );
    new aws.iam.RolePolicy(
      `${name}-policy`,
      {
        role: this.iamRole.id,
        policy: pulumi
          .output(args.statements)
          .apply((Statement) => JSON.stringify({ Version: "2012-10-17", Statement })),
      },
      parent,
    );
    this.profile = new aws.iam.InstanceProfile(`${name}-profile`, { role: this.iamRole.name, tags }, parent);

    this.registerOutputs({ profile: this.profile.name });
  }
}
