/**
 * Which input changes make a provider replace a resource rather than update it in place, for
 * every resource type the program declares. Each entry is read from the provider's own source,
 * not from what we expect; a change to a property of a type with no entry here fails the test
 * (add the rule from the source first) rather than being guessed.
 *
 * Paths are the Pulumi input names, dotted for nested blocks (`rootBlockDevice.encrypted`).
 */

export type ReplaceRule = (changed: readonly string[], inputs: Readonly<Record<string, unknown>>) => string[];

/** The changed paths that equal, or sit under, one of `forceNew`. */
const forceNew =
  (...paths: string[]): ReplaceRule =>
  (changed) =>
    changed.filter((c) => paths.some((p) => c === p || c.startsWith(`${p}.`)));

export const REPLACE_RULES: Readonly<Record<string, ReplaceRule>> = {
  // hashicorp/terraform-provider-aws internal/service/ec2/ec2_instance.go: ForceNew on ami,
  // associate_public_ip_address, availability_zone, key_name, private_ip, subnet_id,
  // security_groups, tenancy, root_block_device.{encrypted,kms_key_id}; instance_type,
  // vpc_security_group_ids, iam_instance_profile, metadata_options, root volume size and type,
  // tags are updated in place. CustomizeDiff: ForceNewIf("user_data", user_data_replace_on_change).
  "aws:ec2/instance:Instance": (changed, inputs) => [
    ...forceNew(
      "ami",
      "associatePublicIpAddress",
      "availabilityZone",
      "keyName",
      "privateIp",
      "subnetId",
      "securityGroups",
      "tenancy",
      "rootBlockDevice.encrypted",
      "rootBlockDevice.kmsKeyId",
    )(changed, inputs),
    ...(inputs.userDataReplaceOnChange === true ? forceNew("userData", "userDataBase64")(changed, inputs) : []),
  ],
  // internal/service/ec2/ebs_volume.go: ForceNew on availability_zone, encrypted, kms_key_id,
  // multi_attach_enabled, outpost_arn, snapshot_id; size, type, iops, throughput are modified in place.
  "aws:ebs/volume:Volume": forceNew(
    "availabilityZone",
    "encrypted",
    "kmsKeyId",
    "multiAttachEnabled",
    "outpostArn",
    "snapshotId",
  ),
  // internal/service/ec2/ec2_eip.go: address, domain, network_border_group, public_ipv4_pool and
  // ipam_pool_id are ForceNew; instance, network_interface, associate_with_private_ip,
  // customer_owned_ipv4_pool and tags are updated in place.
  "aws:ec2/eip:Eip": forceNew("address", "domain", "networkBorderGroup", "publicIpv4Pool", "ipamPoolId"),
  // internal/service/ec2/ec2_eip_association.go: every argument is ForceNew (the resource has no Update).
  "aws:ec2/eipAssociation:EipAssociation": forceNew(
    "allocationId",
    "allowReassociation",
    "instanceId",
    "networkInterfaceId",
    "privateIpAddress",
    "publicIp",
  ),
  // internal/service/ec2/ec2_key_pair.go: key_name, key_name_prefix and public_key are ForceNew.
  "aws:ec2/keyPair:KeyPair": forceNew("keyName", "keyNamePrefix", "publicKey"),
  // hashicorp/terraform-provider-random internal/provider/resource_password.go: keepers,
  // length and every character-set option require replacement (a new result).
  "random:index/randomPassword:RandomPassword": forceNew(
    "keepers",
    "length",
    "special",
    "upper",
    "lower",
    "number",
    "numeric",
    "minNumeric",
    "minUpper",
    "minLower",
    "minSpecial",
    "overrideSpecial",
  ),
  // internal/service/ec2/ebs_volume_attachment.go: device_name, instance_id and volume_id are ForceNew.
  "aws:ec2/volumeAttachment:VolumeAttachment": forceNew("deviceName", "instanceId", "volumeId"),
  // internal/service/ec2/vpc_subnet.go: availability_zone(_id), cidr_block, vpc_id, outpost_arn
  // and the IPAM/IPv6 allocation settings are ForceNew.
  "aws:ec2/subnet:Subnet": forceNew(
    "availabilityZone",
    "availabilityZoneId",
    "cidrBlock",
    "vpcId",
    "outpostArn",
    "ipv4IpamPoolId",
    "ipv4NetmaskLength",
    "ipv6IpamPoolId",
    "ipv6Native",
    "ipv6NetmaskLength",
  ),
  // pulumi/pulumi-command v1.2.1 provider/pkg/provider/common/inputs.go and remote/copy.go:
  // only `triggers` carries provider:"replaceOnChanges"; any other change is an Update, which
  // runs `update` (or `create` again when no update command is given).
  "command:remote:Command": forceNew("triggers"),
  "command:remote:CopyToRemote": forceNew("triggers"),
  "command:local:Command": forceNew("triggers"),
};

/** The changed paths that force `type` to be replaced; throws when the type has no rule here. */
export function forcedReplacements(
  type: string,
  changed: readonly string[],
  inputs: Readonly<Record<string, unknown>>,
): string[] {
  if (changed.length === 0) return [];
  const rule = REPLACE_RULES[type];
  if (!rule) {
    throw new Error(
      `no replacement rule for ${type} (changed: ${changed.join(", ")}): add it to tests/support/replacementRules.ts from the provider's source`,
    );
  }
  return rule(changed, inputs);
}
