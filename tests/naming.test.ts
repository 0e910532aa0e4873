/**
 * Two deployments of one project under the same stack name in one AWS account (two operators'
 * local `dev` stacks, or two checkouts) must not share a single AWS-side name: EC2 key pair names,
 * S3 bucket names, IAM role and instance profile names and a VPC's security group names are each
 * unique in their scope, so the second create would fail, or a destroy would delete the other's.
 * The mocks draw each deployment's random results apart (mockProgram.ts `deployment`).
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { MOCK_PRIVATE_KEY, type RecordedResource } from "./support/mockProgram";
import { snapshot, type TimedSnapshot } from "./support/snapshots";

/**
 * The inputs that set a resource's own AWS-side name, by type. Every other AWS type the program
 * declares is known by its id alone (VPC, subnet, instance, volume, address, rule...).
 */
const NAME_INPUTS: Readonly<Record<string, readonly string[]>> = {
  "aws:ec2/keyPair:KeyPair": ["keyName", "keyNamePrefix"],
  "aws:s3/bucket:Bucket": ["bucket", "bucketPrefix"],
  "aws:iam/role:Role": ["name", "namePrefix"],
  "aws:iam/instanceProfile:InstanceProfile": ["name", "namePrefix"],
  "aws:ec2/securityGroup:SecurityGroup": ["name", "namePrefix"],
};

/**
 * Types whose name the provider picks when the program gives none ("If omitted, the provider
 * will assign a random, unique name": @pulumi/aws iam/role.d.ts, iam/instanceProfile.d.ts,
 * ec2/securityGroup.d.ts): the program must leave it to the provider.
 */
const PROVIDER_NAMED = [
  "aws:iam/role:Role",
  "aws:iam/instanceProfile:InstanceProfile",
  "aws:ec2/securityGroup:SecurityGroup",
];

/** Every AWS type the program declares must be classified above, so a new named type is not missed. */
const ID_ONLY = new Set([
  "aws:ec2/vpc:Vpc",
  "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
  "aws:ec2/internetGateway:InternetGateway",
  "aws:ec2/subnet:Subnet",
  "aws:ec2/routeTable:RouteTable",
  "aws:ec2/route:Route",
  "aws:ec2/routeTableAssociation:RouteTableAssociation",
  "aws:ec2/vpcEndpoint:VpcEndpoint",
  "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
  "aws:iam/rolePolicy:RolePolicy",
  "aws:ec2/instance:Instance",
  "aws:ebs/volume:Volume",
  "aws:ec2/volumeAttachment:VolumeAttachment",
  "aws:ec2/eip:Eip",
  "aws:ec2/eipAssociation:EipAssociation",
  "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
  "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
  "aws:s3/bucketPolicy:BucketPolicy",
]);

/** `type::logical name::input` to the AWS-side name the program set. */
function physicalNames(snap: TimedSnapshot): Map<string, string> {
  const names = new Map<string, string>();
  for (const r of snap.resources.filter((r: RecordedResource) => r.custom && r.type.startsWith("aws:"))) {
    for (const input of NAME_INPUTS[r.type] ?? []) {
      const value = r.inputs[input];
      if (value !== undefined)
        names.set(`${r.type}::${r.name}::${input}`, typeof value === "string" ? value : JSON.stringify(value));
    }
  }
  return names;
}

const OPERATOR_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorOperatorOperatorOperatorOperator team@shared";

const CASES: [string, Record<string, string>, { secretKeys?: string[] }][] = [
  ["a generated key", {}, {}],
  [
    "the same operator key",
    { sshPublicKey: OPERATOR_KEY, sshPrivateKey: MOCK_PRIVATE_KEY },
    { secretKeys: ["sshPrivateKey"] },
  ],
];

for (const [keyKind, config, options] of CASES) {
  describe(`two dev stacks in one account, with ${keyKind}`, () => {
    let alice: TimedSnapshot;
    let bob: TimedSnapshot;
    before(async () => {
      [alice, bob] = await Promise.all([
        snapshot(config, { ...options, stack: "dev", deployment: "alice" }),
        snapshot(config, { ...options, stack: "dev", deployment: "bob" }),
      ]);
      assert.equal(alice.error, undefined, alice.error);
      assert.equal(bob.error, undefined, bob.error);
    });

    it("share no AWS-side name", () => {
      const a = physicalNames(alice);
      const b = physicalNames(bob);
      assert.ok(a.size > 0, "the program names some resources itself");
      const shared = [...a.values()].filter((name) => [...b.values()].includes(name));
      assert.deepEqual(shared, [], `names both deployments would create: ${shared.join(", ")}`);
    });

    it("name each resource with a stack-name prefix and leave the rest to the provider's unique names", () => {
      for (const r of alice.resources.filter((r) => r.custom && r.type.startsWith("aws:"))) {
        assert.ok(r.type in NAME_INPUTS || ID_ONLY.has(r.type), `${r.type} (${r.name}): classify its AWS-side name`);
        if (PROVIDER_NAMED.includes(r.type)) {
          for (const input of NAME_INPUTS[r.type])
            assert.equal(r.inputs[input], undefined, `${r.type} ${r.name}: ${input} set, not left to the provider`);
        }
      }
      for (const name of physicalNames(alice).values()) assert.match(name, /^titan-observability-dev-/);
    });

    it("keep their ssh key files apart", () => {
      const file = (snap: TimedSnapshot) => snap.outputs.sshKeyFile?.value;
      if (keyKind === "a generated key") assert.notEqual(file(alice), file(bob));
      else assert.equal(file(alice), undefined, "the operator's key is the operator's file");
    });
  });
}
