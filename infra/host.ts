/**
 * One EC2 host of a role: IMDSv2 only, encrypted gp3 root, a fixed private IP from the
 * address plan, the tags of docs/architecture.md, its bootstrap user data, and optionally an encrypted data
 * volume that outlives it.
 */
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { HOST_KEY_COMMAND, HOST_KEY_ENV, HOST_KEY_TIMEOUTS, HOST_KEY_UPDATE_COMMAND } from "./hostKey/command";
import type { HostSlot } from "../facts/addressing";
import type { StackConfig } from "../facts/config";
import { HOST_TAG_KEYS, baseTags } from "../facts/naming";

/** Where the data volume is attached; on Nitro instances it appears as an NVMe device. */
export const DATA_DEVICE_NAME = "/dev/sdf";

export interface HostArgs {
  readonly config: StackConfig;
  readonly slot: HostSlot;
  readonly ami: pulumi.Input<string>;
  readonly subnetId: pulumi.Input<string>;
  readonly availabilityZone: pulumi.Input<string>;
  readonly securityGroupId: pulumi.Input<string>;
  readonly keyName: pulumi.Input<string>;
  readonly instanceProfile?: pulumi.Input<string>;
  readonly dataVolumeSizeGb?: number;
  /** The host's cloud-init user data, given the id of its data volume (if it has one). */
  readonly userData: (dataVolumeId: string | undefined) => string;
  /**
   * What must exist before the instance boots: its security group's rules and the subnet's
   * route out. Nothing in the instance's inputs refers to them, so without this the engine may
   * launch it first and its bootstrap would start with no way to the package mirrors.
   */
  readonly bootDependsOn?: readonly pulumi.Resource[];
}

/** Every key the policy pack's hosts-tagged policy requires, checked here by the compiler. */
export function hostTags(config: StackConfig, slot: HostSlot): Record<(typeof HOST_TAG_KEYS)[number], string> {
  return { ...baseTags(config, slot.name), Role: slot.role, Scrape: "true" };
}

export class Host extends pulumi.ComponentResource {
  readonly instance: aws.ec2.Instance;
  readonly dataVolume?: aws.ebs.Volume;
  readonly dataAttachment?: aws.ec2.VolumeAttachment;
  readonly slot: HostSlot;
  /**
   * The host's stable public address: an Elastic IP that outlives stop/start and replacement
   * (an instance's own public IP changes on every start), so URLs and every push dial it.
   */
  readonly publicIp: pulumi.Output<string>;
  /** The host's SSH key (`ssh-ed25519 AAAA...`), read from its console through EC2's API. */
  readonly hostKey: pulumi.Output<string>;

  constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titan:infra:Host", name, {}, opts);
    const { config, slot } = args;
    this.slot = slot;
    const parent = { parent: this };
    const tags = hostTags(config, slot);

    // The volume exists before the instance: its id is part of the user data, so the bootstrap
    // mounts exactly this volume and never formats one that already holds data.
    if (args.dataVolumeSizeGb !== undefined) {
      this.dataVolume = new aws.ebs.Volume(
        `${name}-data`,
        {
          availabilityZone: args.availabilityZone,
          size: args.dataVolumeSizeGb,
          type: "gp3",
          encrypted: true,
          tags: { ...baseTags(config, `${slot.name}-data`), Role: slot.role },
        },
        parent,
      );
    }
    const userData = this.dataVolume
      ? this.dataVolume.id.apply((id) => args.userData(id))
      : pulumi.output(args.userData(undefined));

    this.instance = new aws.ec2.Instance(
      name,
      {
        ami: args.ami,
        instanceType: config.instanceTypes[slot.role],
        availabilityZone: args.availabilityZone,
        subnetId: args.subnetId,
        privateIp: slot.privateIp,
        associatePublicIpAddress: true,
        vpcSecurityGroupIds: [args.securityGroupId],
        keyName: args.keyName,
        iamInstanceProfile: args.instanceProfile,
        metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 },
        rootBlockDevice: {
          volumeType: "gp3",
          volumeSize: config.rootVolumeSizeGb,
          encrypted: true,
          deleteOnTermination: true,
          tags: { ...tags, Name: `${tags.Name}-root` },
        },
        userData,
        // User data only bootstraps; a change to it must rebuild the host, not reboot it half-done.
        userDataReplaceOnChange: true,
        tags,
      },
      {
        ...parent,
        dependsOn: [...(args.bootDependsOn ?? [])],
        // The fixed private IP cannot be held by two instances at once.
        deleteBeforeReplace: true,
        // No ignoreChanges on `ami`: it would hide a new amiId until some other change replaced
        // the host, and the engine re-checks a replaced resource with the program's own inputs,
        // ignoreChanges not applied (pulumi/pulumi pkg/resource/deploy/step_generator.go: on
        // diff.Replace(), prov.Check with News: goal.Properties), so that replacement would boot
        // whatever the program resolves then. The image is pinned instead (placement.ts imageId).
      },
    );

    if (this.dataVolume) {
      this.dataAttachment = new aws.ec2.VolumeAttachment(
        `${name}-data-attachment`,
        {
          deviceName: DATA_DEVICE_NAME,
          volumeId: this.dataVolume.id,
          instanceId: this.instance.id,
          stopInstanceBeforeDetaching: true,
        },
        { ...parent, deleteBeforeReplace: true },
      );
    }

    // Allocated apart from the instance, so it survives the instance's replacement; only the
    // association follows the instance. The association lands seconds after the instance runs,
    // which swaps its public address: the bootstrap retries every download (bootstrap.ts retry).
    const eip = new aws.ec2.Eip(
      `${name}-eip`,
      { domain: "vpc", tags: { ...baseTags(config, `${slot.name}-eip`), Role: slot.role } },
      parent,
    );
    const association = new aws.ec2.EipAssociation(
      `${name}-eip-association`,
      { allocationId: eip.allocationId, instanceId: this.instance.id },
      parent,
    );
    this.publicIp = pulumi.all([eip.publicIp, association.id]).apply(([ip]) => ip);

    // Runs once per instance (the trigger is its id; a replaced host is asked again), and never on
    // an unchanged stack. Its inputs hold the instance id and region only, no local path.
    const hostKey = new command.local.Command(
      `${name}-host-key`,
      {
        create: HOST_KEY_COMMAND,
        update: HOST_KEY_UPDATE_COMMAND,
        environment: { [HOST_KEY_ENV.instanceId]: this.instance.id, [HOST_KEY_ENV.region]: config.region },
        triggers: [this.instance.id],
        // The key is stdout (kept in state); the polling progress is only logged.
        logging: "stderr",
      },
      // cli.ts gives up after HOST_KEY_TIMEOUT_MINUTES; the engine's bound comes after it.
      { ...parent, customTimeouts: HOST_KEY_TIMEOUTS },
    );
    this.hostKey = hostKey.stdout;

    this.registerOutputs({ publicIp: this.publicIp, privateIp: this.instance.privateIp });
  }
}
