/**
 * Bucket guardrails, checked over the whole stack: since the AWS provider v4 a bucket's access
 * block, ownership, encryption, lifecycle and policy are resources of their own, so a bucket is
 * judged together with the resources that name it (infra/lokiBucket.ts declares all five).
 */
import { Bucket } from "@pulumi/aws/s3/bucket";
import { BucketAcl } from "@pulumi/aws/s3/bucketAcl";
import { BucketAclV2 } from "@pulumi/aws/s3/bucketAclV2";
import { BucketLifecycleConfiguration } from "@pulumi/aws/s3/bucketLifecycleConfiguration";
import { BucketLifecycleConfigurationV2 } from "@pulumi/aws/s3/bucketLifecycleConfigurationV2";
import { BucketOwnershipControls } from "@pulumi/aws/s3/bucketOwnershipControls";
import { BucketPolicy } from "@pulumi/aws/s3/bucketPolicy";
import { BucketPublicAccessBlock } from "@pulumi/aws/s3/bucketPublicAccessBlock";
import { BucketServerSideEncryptionConfiguration } from "@pulumi/aws/s3/bucketServerSideEncryptionConfiguration";
import { BucketServerSideEncryptionConfigurationV2 } from "@pulumi/aws/s3/bucketServerSideEncryptionConfigurationV2";
import { BucketV2 } from "@pulumi/aws/s3/bucketV2";
import type { PolicyResource, ReportViolation, StackValidationPolicy } from "@pulumi/policy";
import { many, statementsOf } from "./documents";
import { subject, unlessComputed, withFix } from "./subject";

/** A resource class, as PolicyResource.isType takes it (it compares the class's type token). */
type Kind = Parameters<PolicyResource["isType"]>[0];

const BUCKET_KINDS: readonly Kind[] = [Bucket, BucketV2];

type Props = Record<string, unknown>;

/**
 * The resources of `types` that configure `bucket`: the engine records which resources each
 * input came from (propertyDependencies), so this needs no value that a preview may not know yet.
 * An engine that sends none falls back to comparing the name the companion was given.
 */
function companions(bucket: PolicyResource, all: readonly PolicyResource[], kinds: readonly Kind[]) {
  return all.filter((r) => {
    if (!kinds.some((kind) => r.isType(kind))) return false;
    // The SDK sends a (possibly empty) list for every input, a literal one included
    // (@pulumi/pulumi runtime/resource.ts): an empty list means the name was written out.
    const from = r.propertyDependencies.bucket;
    return from !== undefined && from.length > 0 ? from.includes(bucket) : r.props.bucket === bucket.props.bucket;
  });
}

function eachBucket(check: (bucket: PolicyResource, all: readonly PolicyResource[], report: ReportViolation) => void) {
  return (args: { resources: PolicyResource[] }, report: ReportViolation) => {
    for (const bucket of args.resources.filter((r) => BUCKET_KINDS.some((kind) => r.isType(kind))))
      check(bucket, args.resources, report);
  };
}

const PUBLIC_ACLS = ["public-read", "public-read-write", "authenticated-read"];
const ACCESS_BLOCK_SETTINGS = ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"];
const SSE_ALGORITHMS = ["AES256", "aws:kms", "aws:kms:dsse"];

export const privateEncryptedBuckets: StackValidationPolicy = {
  name: "private-encrypted-buckets",
  description:
    "Every S3 bucket has a public access block with all four settings on, BucketOwnerEnforced ownership (no ACLs) and default encryption.",
  enforcementLevel: "mandatory",
  validateStack: eachBucket((bucket, all, report) => {
    const what = subject(bucket);
    const blocks = companions(bucket, all, [BucketPublicAccessBlock]);
    const off = ACCESS_BLOCK_SETTINGS.filter((key) => !blocks.some((b) => b.props[key] === true));
    if (off.length > 0) {
      report(
        withFix(
          blocks.length === 0
            ? `${what} has no public access block`
            : `${what}'s public access block leaves ${off.join(", ")} off`,
          `an aws.s3.BucketPublicAccessBlock with ${ACCESS_BLOCK_SETTINGS.join(", ")} all true (infra/lokiBucket.ts)`,
        ),
        bucket.urn,
      );
    }
    const owned = companions(bucket, all, [BucketOwnershipControls]).some(
      (o) => (o.props.rule as Props | undefined)?.objectOwnership === "BucketOwnerEnforced",
    );
    if (!owned) {
      report(
        withFix(
          `${what} still honours object ACLs`,
          'aws.s3.BucketOwnershipControls with objectOwnership "BucketOwnerEnforced"',
        ),
        bucket.urn,
      );
    }
    // acl is Optional+Computed (terraform-provider-aws internal/service/s3/bucket.go): unknown in
    // the preview of a new bucket unless the program sets it.
    const acls: unknown[] = [
      unlessComputed((): unknown => bucket.props.acl),
      ...companions(bucket, all, [BucketAcl, BucketAclV2]).map((a): unknown => a.props.acl),
    ];
    for (const acl of acls.filter((a): a is string => typeof a === "string" && PUBLIC_ACLS.includes(a))) {
      report(
        withFix(`${what} is given the canned ACL ${acl}`, "drop the ACL; access goes through IAM only"),
        bucket.urn,
      );
    }
    const sse = companions(bucket, all, [
      BucketServerSideEncryptionConfiguration,
      BucketServerSideEncryptionConfigurationV2,
    ]).flatMap((c) => (c.props.rules ?? []) as Props[]);
    const encrypted = sse.some((rule) =>
      SSE_ALGORITHMS.includes(String((rule.applyServerSideEncryptionByDefault as Props | undefined)?.sseAlgorithm)),
    );
    if (!encrypted) {
      report(
        withFix(
          `${what} has no default encryption`,
          'an aws.s3.BucketServerSideEncryptionConfiguration with sseAlgorithm "AES256" or "aws:kms"',
        ),
        bucket.urn,
      );
    }
  }),
};

/** A Deny of every S3 action on the bucket and its objects whenever the request is not over TLS. */
export function deniesPlainHttp(document: unknown, bucketName: string): boolean {
  const statements = statementsOf(document) ?? [];
  return statements.some((s) => {
    const insecure = String(s.Condition?.Bool?.["aws:SecureTransport"]) === "false";
    const everyAction = many(s.Action).some((a) => a === "s3:*" || a === "*");
    // Any partition: aws, aws-cn, aws-us-gov (the program builds the ARN from bucket.arn).
    const targets = many(s.Resource).map((arn) => arn.replace(/^arn:aws[a-z-]*:s3:::/, ""));
    return (
      s.Effect === "Deny" &&
      insecure &&
      everyAction &&
      targets.includes(bucketName) &&
      targets.includes(`${bucketName}/*`)
    );
  });
}

export const bucketTlsOnly: StackValidationPolicy = {
  name: "bucket-tls-only",
  description: "Every S3 bucket's policy denies requests not made over TLS, on the bucket and its objects.",
  enforcementLevel: "mandatory",
  validateStack: eachBucket((bucket, all, report) => {
    const name = String(bucket.props.bucket);
    const policies = companions(bucket, all, [BucketPolicy]).map((p): unknown => p.props.policy);
    if (!policies.some((doc) => deniesPlainHttp(doc, name))) {
      report(
        withFix(
          `${subject(bucket)} accepts plain-HTTP requests`,
          'an aws.s3.BucketPolicy that denies "s3:*" on the bucket and bucket/* when aws:SecureTransport is "false" (tlsOnlyPolicy in infra/lokiBucket.ts)',
        ),
        bucket.urn,
      );
    }
  }),
};

const LIFECYCLE_TYPES = [BucketLifecycleConfiguration, BucketLifecycleConfigurationV2];

export const lokiBucketExpires: StackValidationPolicy = {
  name: "loki-bucket-expires",
  description:
    "The Loki bucket (tag Role=loki) has an enabled expiration rule, the backstop behind Loki's own retention.",
  enforcementLevel: "advisory",
  validateStack: eachBucket((bucket, all, report) => {
    if ((bucket.props.tags as Record<string, string> | undefined)?.Role !== "loki") return;
    const rules = companions(bucket, all, LIFECYCLE_TYPES).flatMap((c) => (c.props.rules ?? []) as Props[]);
    const expires = rules.some((r) => r.status === "Enabled" && Number((r.expiration as Props | undefined)?.days) > 0);
    if (!expires) {
      report(
        withFix(
          `${subject(bucket)} keeps Loki's chunks forever if the compactor stops deleting them`,
          "an aws.s3.BucketLifecycleConfiguration rule with status Enabled and expiration.days (lifecycleExpiryDays in infra/lokiBucket.ts)",
        ),
        bucket.urn,
      );
    }
  }),
};
