/**
 * Host guardrails: the metadata service answers session-token (IMDSv2) requests only, every
 * volume is encrypted, hosts carry the tags ownership and Prometheus' discovery rely on, and
 * no root volume is unbounded.
 */
import { Volume } from "@pulumi/aws/ebs/volume";
import { Instance } from "@pulumi/aws/ec2/instance";
import { LaunchTemplate } from "@pulumi/aws/ec2/launchTemplate";
import { validateResourceOfType, type ReportViolation, type ResourceValidationPolicy } from "@pulumi/policy";
import { ROOT_VOLUME_GB } from "../facts/config";
import { HOST_TAG_KEYS } from "../facts/naming";
import { ROLES } from "../facts/topology";
import { subject, withFix } from "./subject";

/** Instances and launch templates take the same metadataOptions block. */
function requireTokens(what: string, tokens: string | undefined, report: ReportViolation) {
  if (tokens !== "required") {
    report(
      withFix(
        `${what} lets IMDSv1 answer (httpTokens is ${tokens ?? "unset"})`,
        'metadataOptions: { httpTokens: "required" } (infra/host.ts sets it for every host)',
      ),
    );
  }
}

export const imdsv2Required: ResourceValidationPolicy = {
  name: "imdsv2-required",
  description: "Every instance and launch template requires IMDSv2 session tokens (httpTokens: required).",
  enforcementLevel: "mandatory",
  validateResource: [
    validateResourceOfType(Instance, (instance, args, report) => {
      // Without options of its own an instance takes its launch template's, judged there.
      if (instance.metadataOptions === undefined && instance.launchTemplate !== undefined) return;
      requireTokens(subject(args), instance.metadataOptions?.httpTokens, report);
    }),
    validateResourceOfType(LaunchTemplate, (template, args, report) =>
      requireTokens(subject(args), template.metadataOptions?.httpTokens, report),
    ),
  ],
};

/** Launch templates spell booleans as strings ("true"); instances and volumes as booleans. */
const isTrue = (value: boolean | string | undefined) => value === true || value === "true";

export const encryptedVolumes: ResourceValidationPolicy = {
  name: "encrypted-volumes",
  description: "Every root, block-device and EBS volume is encrypted.",
  enforcementLevel: "mandatory",
  validateResource: [
    validateResourceOfType(Instance, (instance, args, report) => {
      // Without a rootBlockDevice the root volume inherits the image snapshot's encryption, or
      // the launch template's mapping (judged there).
      const fromTemplate = instance.rootBlockDevice === undefined && instance.launchTemplate !== undefined;
      if (!fromTemplate && !isTrue(instance.rootBlockDevice?.encrypted)) {
        report(
          withFix(
            `${subject(args)} has an unencrypted root volume`,
            "rootBlockDevice: { encrypted: true } (infra/host.ts)",
          ),
        );
      }
      for (const device of instance.ebsBlockDevices ?? []) {
        if (!isTrue(device.encrypted)) {
          report(
            withFix(`${subject(args)} attaches ${device.deviceName} unencrypted`, "encrypted: true on the device"),
          );
        }
      }
    }),
    validateResourceOfType(LaunchTemplate, (template, args, report) => {
      for (const mapping of template.blockDeviceMappings ?? []) {
        if (mapping.ebs && !isTrue(mapping.ebs.encrypted)) {
          report(
            withFix(
              `${subject(args)} maps ${mapping.deviceName} unencrypted`,
              'ebs: { encrypted: "true" } on the mapping',
            ),
          );
        }
      }
    }),
    validateResourceOfType(Volume, (volume, args, report) => {
      if (!isTrue(volume.encrypted)) {
        report(withFix(`${subject(args)} is not encrypted`, "encrypted: true (infra/host.ts data volumes)"));
      }
    }),
  ],
};

export const hostsTagged: ResourceValidationPolicy = {
  name: "hosts-tagged",
  description: `Every instance carries the tags ${HOST_TAG_KEYS.join(", ")}, with Role one of ${ROLES.join(", ")} and Scrape "true".`,
  enforcementLevel: "advisory",
  validateResource: validateResourceOfType(Instance, (instance, args, report) => {
    const tags: Record<string, string> = { ...(instance.tags ?? {}) };
    const missing = HOST_TAG_KEYS.filter((key) => !tags[key]);
    const fix = "tag it with hostTags() (infra/host.ts), which Prometheus' EC2 discovery filters on";
    if (missing.length > 0) report(withFix(`${subject(args)} lacks the tags ${missing.join(", ")}`, fix));
    if (tags.Role && !(ROLES as readonly string[]).includes(tags.Role)) {
      report(withFix(`${subject(args)} has Role "${tags.Role}", not one of ${ROLES.join(", ")}`, fix));
    }
    if (tags.Scrape && tags.Scrape !== "true") {
      report(withFix(`${subject(args)} has Scrape "${tags.Scrape}", so Prometheus never discovers it`, fix));
    }
  }),
};

export const rootVolumeSizeLimit: ResourceValidationPolicy = {
  name: "root-volume-size-limit",
  description: `Every instance sizes its root volume explicitly, ${ROOT_VOLUME_GB.min}-${ROOT_VOLUME_GB.max} GiB.`,
  enforcementLevel: "advisory",
  validateResource: validateResourceOfType(Instance, (instance, args, report) => {
    const size = instance.rootBlockDevice?.volumeSize;
    const fix = `rootBlockDevice.volumeSize from the rootVolumeSizeGb config (${ROOT_VOLUME_GB.min}-${ROOT_VOLUME_GB.max})`;
    if (size === undefined) {
      report(withFix(`${subject(args)} leaves its root volume size to the image`, fix));
    } else if (size < ROOT_VOLUME_GB.min || size > ROOT_VOLUME_GB.max) {
      report(withFix(`${subject(args)} asks for a ${size} GiB root volume`, fix));
    }
  }),
};
