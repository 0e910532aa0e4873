/**
 * With metricsStore=amp: the stack's Amazon Managed Service for Prometheus workspace, created and
 * destroyed with the stack, and the endpoints Prometheus writes to and Grafana reads from.
 *
 * pulumi-aws 7.x (node_modules/@pulumi/aws/amp/workspace.d.ts, aws:amp/workspace:Workspace) takes
 * `alias` and `tags` and outputs `arn` and `prometheusEndpoint`. AWS deletes a workspace with the
 * data in it (DeleteWorkspace), so `pulumi destroy` needs nothing else and leaves nothing behind.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../facts/config";
import { ampEndpoints, type AmpEndpoints } from "../facts/metricsStore";
import { baseTags, stackName } from "../facts/naming";

/** The workspace's alias: the stack it belongs to (AWS allows 1-100 characters; aliases need not be unique). */
export const ampAlias = (config: StackConfig): string => stackName(config).slice(0, 100);

export class AmpWorkspace extends pulumi.ComponentResource {
  readonly workspace: aws.amp.Workspace;
  /** The URLs and region the Prometheus and Grafana renderers receive (TemplateContext.amp). */
  readonly endpoints: pulumi.Output<AmpEndpoints>;

  constructor(name: string, args: { config: StackConfig }, opts?: pulumi.ComponentResourceOptions) {
    super("titan:infra:AmpWorkspace", name, {}, opts);
    const { config } = args;
    this.workspace = new aws.amp.Workspace(
      name,
      { alias: ampAlias(config), tags: { ...baseTags(config, "metrics"), Role: "prometheus" } },
      { parent: this },
    );
    this.endpoints = this.workspace.prometheusEndpoint.apply((endpoint) => ampEndpoints(endpoint, config.region));
    this.registerOutputs({ arn: this.workspace.arn, prometheusEndpoint: this.workspace.prometheusEndpoint });
  }
}
