/**
 * Where the hosts go: the OS image, and the availability zone. The zone is chosen once, when
 * the subnet is created, and kept from then on (the subnet ignores later changes to it), so an
 * instance type that would pick another zone never replaces the subnet or the data volumes.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../facts/config";
import { ROLES } from "../facts/topology";

/**
 * The image id the hosts boot. No host ignores a change to it (infra/host.ts): whatever this
 * resolves to is what a replaced host boots, and a new value is a planned replacement the
 * preview shows. The default is therefore one exact Debian release (facts/versions.ts
 * DEBIAN_IMAGE), found by publisher and exact name: the same id on every run until the pin moves.
 */
export function imageId(config: StackConfig): pulumi.Output<string> {
  if ("amiId" in config.image) return pulumi.output(config.image.amiId);
  if ("pinned" in config.image) {
    const image = config.image.pinned;
    // An exact name has one image per owner and region; more than one would fail the lookup
    // (terraform-provider-aws internal/service/ec2/ec2_ami_data_source.go: "Your query returned
    // more than one result" unless most_recent), so no newer build can slip in.
    return aws.ec2
      .getAmiOutput({
        // A public AMI is deprecated two years after its creation by default, and DescribeImages
        // then hides it unless asked (EC2 user guide, "Deprecate an AMI"; getAmi's
        // includeDeprecated defaults to false): without this the pinned name would stop
        // resolving and every preview, up and destroy of the stack would fail.
        includeDeprecated: true,
        owners: [image.owner],
        filters: [
          { name: "name", values: [image.name] },
          { name: "architecture", values: [image.architecture] },
        ],
      })
      .apply((ami) => ami.id);
  }
  // The parameter is public and not a secret, but `value` would show the AMI as [secret] in
  // every diff: terraform-provider-aws internal/service/ssm/parameter_data_source.go marks
  // `value` Sensitive and offers `insecure_value` for this case. The output form of an invoke
  // marks its whole result secret when any field is (@pulumi/pulumi runtime/invoke.ts,
  // invokeOutput), so insecureValue alone would still be [secret]: unsecret it.
  return pulumi.unsecret(aws.ssm.getParameterOutput({ name: config.image.ssmParameter }).insecureValue);
}

export interface Offering {
  readonly instanceType: string;
  readonly location: string;
}

const wantedTypes = (config: StackConfig) => [...new Set(ROLES.map((role) => config.instanceTypes[role]))].sort();

/** Chooses the first zone (by name) that offers all configured instance types. */
export function pickZone(offerings: readonly Offering[], wanted: readonly string[]): string {
  const zones = [...new Set(offerings.map((o) => o.location))].sort();
  const zone = zones.find((z) => wanted.every((t) => offerings.some((o) => o.location === z && o.instanceType === t)));
  if (!zone) {
    throw new pulumi.RunError(
      `No availability zone in this region offers all of ${wanted.join(", ")}: choose other *InstanceType values.`,
    );
  }
  return zone;
}

/**
 * The zone the stack lives in, checked against the configured instance types: a type its zone
 * does not offer is refused with the keys to change, instead of moving the stack elsewhere.
 */
export function keepZone(zone: string, offerings: readonly Offering[], config: StackConfig): string {
  const missing = ROLES.filter(
    (role) => !offerings.some((o) => o.location === zone && o.instanceType === config.instanceTypes[role]),
  );
  if (missing.length > 0) {
    const keys = missing.map((role) => `${role}InstanceType=${config.instanceTypes[role]}`).join(", ");
    throw new pulumi.RunError(
      `${keys}: expected an instance type offered in ${zone}, the zone this stack's subnet and data ` +
        `volumes live in. The zone is kept so that no update moves them (that would replace the ` +
        `volumes and lose their data). Choose a type listed by 'aws ec2 describe-instance-type-offerings ` +
        `--location-type availability-zone --filters Name=location,Values=${zone}', or destroy the ` +
        `stack and deploy it again to start in another zone.`,
    );
  }
  return zone;
}

/** Every zone of the region that offers one of the configured instance types. */
export function instanceTypeOfferings(config: StackConfig): pulumi.Output<Offering[]> {
  return aws.ec2
    .getInstanceTypeOfferingsOutput({
      locationType: "availability-zone",
      filters: [{ name: "instance-type", values: wantedTypes(config) }],
    })
    .apply((result) =>
      result.instanceTypes.map((instanceType, i) => ({ instanceType, location: result.locations[i] })),
    );
}

/** The zone a new stack starts in. */
export function initialZone(config: StackConfig, offerings: pulumi.Output<Offering[]>): pulumi.Output<string> {
  return offerings.apply((o) => pickZone(o, wantedTypes(config)));
}
