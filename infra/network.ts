/** The VPC, its public subnet and routes, and the S3 gateway endpoint Loki's traffic takes. */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../facts/config";
import { baseTags } from "../facts/naming";

export interface NetworkArgs {
  readonly config: StackConfig;
  readonly subnetCidr: string;
  /** The zone a new stack starts in; an existing subnet keeps its own (see placement.ts). */
  readonly availabilityZone: pulumi.Input<string>;
}

export class Network extends pulumi.ComponentResource {
  readonly vpc: aws.ec2.Vpc;
  readonly subnet: aws.ec2.Subnet;
  readonly routeTable: aws.ec2.RouteTable;
  readonly s3Endpoint: aws.ec2.VpcEndpoint;
  /** The subnet's way out (default route and its association): a host's bootstrap needs it. */
  readonly internetRoute: pulumi.Resource[];

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titan:infra:Network", name, {}, opts);
    const { config } = args;
    const parent = { parent: this };

    this.vpc = new aws.ec2.Vpc(
      `${name}-vpc`,
      {
        cidrBlock: config.vpcCidr,
        enableDnsSupport: true,
        enableDnsHostnames: true,
        tags: baseTags(config, "vpc"),
      },
      parent,
    );

    // The VPC's default security group would otherwise allow all traffic between its members.
    new aws.ec2.DefaultSecurityGroup(
      `${name}-default-sg`,
      {
        vpcId: this.vpc.id,
        tags: baseTags(config, "default-sg-locked"),
      },
      parent,
    );

    const gateway = new aws.ec2.InternetGateway(
      `${name}-igw`,
      {
        vpcId: this.vpc.id,
        tags: baseTags(config, "igw"),
      },
      parent,
    );

    this.subnet = new aws.ec2.Subnet(
      `${name}-public`,
      {
        vpcId: this.vpc.id,
        cidrBlock: args.subnetCidr,
        availabilityZone: args.availabilityZone,
        mapPublicIpOnLaunch: true,
        tags: baseTags(config, "public"),
      },
      // availability_zone is ForceNew: a new pick (another instance type, say) would replace the
      // subnet and, through the hosts' zone, the data volumes. The zone is chosen once.
      { ...parent, ignoreChanges: ["availabilityZone"] },
    );

    this.routeTable = new aws.ec2.RouteTable(
      `${name}-public-rt`,
      {
        vpcId: this.vpc.id,
        tags: baseTags(config, "public-rt"),
      },
      parent,
    );
    const defaultRoute = new aws.ec2.Route(
      `${name}-default-route`,
      {
        routeTableId: this.routeTable.id,
        destinationCidrBlock: "0.0.0.0/0",
        gatewayId: gateway.id,
      },
      parent,
    );
    const association = new aws.ec2.RouteTableAssociation(
      `${name}-public-rta`,
      {
        subnetId: this.subnet.id,
        routeTableId: this.routeTable.id,
      },
      parent,
    );
    this.internetRoute = [defaultRoute, association];

    // Gateway endpoints are free and keep Loki's chunk traffic to S3 off the internet.
    this.s3Endpoint = new aws.ec2.VpcEndpoint(
      `${name}-s3`,
      {
        vpcId: this.vpc.id,
        serviceName: `com.amazonaws.${config.region}.s3`,
        vpcEndpointType: "Gateway",
        routeTableIds: [this.routeTable.id],
        tags: baseTags(config, "s3-endpoint"),
      },
      parent,
    );

    this.registerOutputs({ vpcId: this.vpc.id, subnetId: this.subnet.id });
  }
}
