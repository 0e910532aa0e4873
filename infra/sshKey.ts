/**
 * The EC2 key pair the configuration push logs in with: the operator's, or a generated one.
 *
 * A host learns its authorized key once, from the key pair named at launch; a new key never
 * reaches a running host. The key pair's name therefore carries a digest of the public key: a
 * rotated key is a new key pair name, and `key_name` is ForceNew on an instance
 * (hashicorp/terraform-provider-aws internal/service/ec2/ec2_instance.go; encoded in
 * tests/support/replacementRules.ts), so rotation replaces every host, planned and shown in the
 * preview, instead of leaving hosts that refuse the new key.
 *
 * Key pair names are unique per account and region, and a stack's name is not: two operators (or
 * two checkouts) each with a `dev` stack share `<project>-dev`. A generated key is drawn for each
 * deployment, so its digest already tells the two apart; an operator's key may be the same in
 * both, so its name also carries the deployment id (infra/stack.ts). Without it the second
 * stack's create fails with InvalidKeyPair.Duplicate, or its destroy deletes the first's pair.
 */
import * as aws from "@pulumi/aws";
import * as crypto from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { StackConfig } from "../facts/config";
import { baseTags, physicalName } from "../facts/naming";

export class SshKey extends pulumi.ComponentResource {
  readonly keyPair: aws.ec2.KeyPair;
  /** Always a secret output. */
  readonly privateKey: pulumi.Output<string>;
  readonly generated: boolean;
  /** Where the ssh commands expect a generated key: named after its key pair (see keyFile). */
  readonly keyFile?: pulumi.Output<string>;

  constructor(
    name: string,
    args: { config: StackConfig; deploymentId: pulumi.Input<string> },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("titan:infra:SshKey", name, {}, opts);
    const { config } = args;
    const parent = { parent: this };

    let publicKey: pulumi.Input<string>;
    if (config.sshKey) {
      publicKey = config.sshKey.publicKey;
      this.privateKey = pulumi.secret(config.sshKey.privateKey);
      this.generated = false;
    } else {
      const key = new tls.PrivateKey(`${name}-generated`, { algorithm: "ED25519" }, parent);
      publicKey = key.publicKeyOpenssh;
      this.privateKey = pulumi.secret(key.privateKeyOpenssh);
      this.generated = true;
    }

    this.keyPair = new aws.ec2.KeyPair(
      name,
      {
        keyName: pulumi
          .all([publicKey, args.deploymentId])
          .apply(([key, id]) => keyPairName(config, key, this.generated ? undefined : id)),
        publicKey,
        tags: baseTags(config, "deploy-key"),
      },
      parent,
    );

    if (this.generated) this.keyFile = this.keyPair.keyName.apply(keyFile);

    this.registerOutputs({ keyName: this.keyPair.keyName });
  }
}

/**
 * `<project>-<stack>-deploy-<first 10 hex digits of the SHA-256 of the key's base64 blob>`, then
 * `-<deployment id>` for an operator's key.
 */
export function keyPairName(config: StackConfig, publicKey: string, deploymentId?: string): string {
  const blob = publicKey.trim().split(/\s+/)[1] ?? publicKey.trim();
  const digest = crypto.createHash("sha256").update(blob).digest("hex").slice(0, 10);
  return `${physicalName(config, "deploy")}-${digest}${deploymentId === undefined ? "" : `-${deploymentId}`}`;
}

/**
 * The file the generated key is written to: the key pair's name, so two stacks' keys (two
 * checkouts of one project, say) and a rotated key never overwrite one another.
 */
export const keyFile = (keyPairName: string): string => `~/.ssh/${keyPairName}.pem`;
