/**
 * Loki's chunk and index store: private, encrypted, TLS-only, owner-enforced, expiring after
 * the retention, and destroyable with objects in it so `pulumi destroy` always completes.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { StackConfig } from "../facts/config";
import { baseTags, physicalName } from "../facts/naming";

/**
 * Loki's compactor deletes expired chunks itself; the lifecycle rule is a backstop one day
 * later, so S3 never removes an object Loki still indexes.
 */
export const lifecycleExpiryDays = (lokiRetentionDays: number): number => lokiRetentionDays + 1;

export class LokiBucket extends pulumi.ComponentResource {
  readonly bucket: aws.s3.Bucket;
  /**
   * The bucket name's random part: drawn at the stack's first `up` and kept in its state, so it
   * tells this deployment from any other of the same project and stack name (infra/stack.ts uses
   * it as the deployment id). Every stack deployed so far already has it.
   */
  readonly suffix: pulumi.Output<string>;

  constructor(name: string, args: { config: StackConfig }, opts?: pulumi.ComponentResourceOptions) {
    super("titan:infra:LokiBucket", name, {}, opts);
    const { config } = args;
    const parent = { parent: this };

    const suffix = new random.RandomId(`${name}-suffix`, { byteLength: 4 }, parent);
    this.suffix = suffix.hex;
    const bucketName = suffix.hex.apply((hex) => bucketNameFor(physicalName(config, "loki"), hex));

    this.bucket = new aws.s3.Bucket(
      name,
      {
        bucket: bucketName,
        forceDestroy: true,
        tags: { ...baseTags(config, "loki-chunks"), Role: "loki" },
      },
      parent,
    );
    const bucketParent = { parent: this.bucket };

    new aws.s3.BucketPublicAccessBlock(
      `${name}-public-access`,
      {
        bucket: this.bucket.id,
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      },
      bucketParent,
    );

    new aws.s3.BucketOwnershipControls(
      `${name}-ownership`,
      {
        bucket: this.bucket.id,
        rule: { objectOwnership: "BucketOwnerEnforced" },
      },
      bucketParent,
    );

    new aws.s3.BucketServerSideEncryptionConfiguration(
      `${name}-sse`,
      {
        bucket: this.bucket.id,
        rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }],
      },
      bucketParent,
    );

    new aws.s3.BucketLifecycleConfiguration(
      `${name}-lifecycle`,
      {
        bucket: this.bucket.id,
        rules: [
          {
            id: "expire-after-loki-retention",
            status: "Enabled",
            filter: {},
            expiration: { days: lifecycleExpiryDays(config.retention.lokiDays) },
            abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
          },
        ],
      },
      bucketParent,
    );

    new aws.s3.BucketPolicy(
      `${name}-tls-only`,
      {
        bucket: this.bucket.id,
        policy: this.bucket.arn.apply((arn) => JSON.stringify(tlsOnlyPolicy(arn))),
      },
      bucketParent,
    );

    this.registerOutputs({ bucket: this.bucket.bucket });
  }
}

/** S3 names: 3-63 lower-case letters, digits and '-'; the random suffix always survives. */
export function bucketNameFor(prefix: string, suffix: string): string {
  const cleaned = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+/, "");
  const room = 63 - suffix.length - 1;
  return `${cleaned.slice(0, room).replace(/-+$/, "")}-${suffix}`;
}

export const tlsOnlyPolicy = (bucketArn: string) => ({
  Version: "2012-10-17",
  Statement: [
    {
      Sid: "DenyInsecureTransport",
      Effect: "Deny",
      Principal: "*",
      Action: "s3:*",
      Resource: [bucketArn, `${bucketArn}/*`],
      Condition: { Bool: { "aws:SecureTransport": "false" } },
    },
  ],
});
