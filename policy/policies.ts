/** Every policy of the pack, in the order docs/policy-pack.md's table lists them. */
import type { Policies } from "@pulumi/policy";
import { bucketTlsOnly, lokiBucketExpires, privateEncryptedBuckets } from "./buckets";
import { encryptedVolumes, hostsTagged, imdsv2Required, rootVolumeSizeLimit } from "./hosts";
import { noWildcardIam } from "./iam";
import { ampWorkspaceTagged } from "./metrics";
import { internalPortsByGroup, noWorldIngress } from "./network";
import { noGeneratedSecretInUserDataOrTags, noSecretInUserDataOrTags } from "./secrets";

export const PACK_NAME = "titan-guardrails";

export const POLICIES: Policies = [
  noWorldIngress,
  internalPortsByGroup,
  imdsv2Required,
  encryptedVolumes,
  noWildcardIam,
  privateEncryptedBuckets,
  bucketTlsOnly,
  noSecretInUserDataOrTags,
  noGeneratedSecretInUserDataOrTags,
  lokiBucketExpires,
  hostsTagged,
  rootVolumeSizeLimit,
  ampWorkspaceTagged,
];
