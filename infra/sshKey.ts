/** The EC2 key pair the configuration push logs in with: the operator's, or a generated one. */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { StackConfig } from "../facts/config";
import { baseTags, physicalName } from "../facts/naming";

export class SshKey extends pulumi.ComponentResource {
  readonly keyPair: aws.ec2.KeyPair;
  /** Always a secret output. */
  readonly privateKey: pulumi.Output<string>;
  readonly generated: boolean;

  constructor(name: string, args: { config: StackConfig }, opts?: pulumi.ComponentResourceOptions) {
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
        keyName: physicalName(config, "deploy"),
        publicKey,
        tags: baseTags(config, "deploy-key"),
      },
      parent,
    );

    this.registerOutputs({ keyName: this.keyPair.keyName });
  }
}
