/** Where the hosts go: the OS image and an availability zone that offers every instance type. */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "./config";
import { ROLES } from "./topology";

export function imageId(config: StackConfig): pulumi.Output<string> {
  if ("amiId" in config.image) return pulumi.output(config.image.amiId);
  return aws.ssm.getParameterOutput({ name: config.image.ssmParameter }).value;
}

/** Chooses the first zone (by name) that offers all configured instance types. */
export function pickZone(
  offerings: readonly { instanceType: string; location: string }[],
  wanted: readonly string[],
): string {
  const zones = [...new Set(offerings.map((o) => o.location))].sort();
  const zone = zones.find((z) => wanted.every((t) => offerings.some((o) => o.location === z && o.instanceType === t)));
  if (!zone) {
    throw new pulumi.RunError(
      `No availability zone in this region offers all of ${wanted.join(", ")}: choose other *InstanceType values.`,
    );
  }
  return zone;
}

export function availabilityZone(config: StackConfig): pulumi.Output<string> {
  const wanted = [...new Set(ROLES.map((role) => config.instanceTypes[role]))].sort();
  return aws.ec2
    .getInstanceTypeOfferingsOutput({
      locationType: "availability-zone",
      filters: [{ name: "instance-type", values: wanted }],
    })
    .apply((result) =>
      pickZone(
        result.instanceTypes.map((instanceType, i) => ({ instanceType, location: result.locations[i] })),
        wanted,
      ),
    );
}
