/**
 * The hosts as the Pulumi program declares them (run under mocks): private IPs, tags, types and
 * zones come from the recorded aws:ec2/instance:Instance inputs, never retyped here. Plus a few
 * decoys (another stack's hosts, a stopped host, an unscraped host) so a filter that is too loose
 * shows up as an extra target.
 */
import type { RecordedResource, Snapshot } from "../support/mockProgram";
import type { Ec2Instance } from "./fakeEc2";

export const INSTANCE_TYPE = "aws:ec2/instance:Instance";
/** Values the mocks do not compute (no VPC id on the instance inputs, no account). */
const FAKE_VPC = "vpc-0e2e0e2e0e2e0e2e0";
const FAKE_OWNER = "123456789012";

function str(r: RecordedResource, key: string): string {
  const v = r.inputs[key];
  if (typeof v !== "string" || v === "") throw new Error(`instance ${r.name} has no ${key} input`);
  return v;
}

function tagsOf(r: RecordedResource): Record<string, string> {
  const tags = r.inputs.tags;
  if (typeof tags !== "object" || tags === null) throw new Error(`instance ${r.name} has no tags`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) {
    if (typeof v !== "string") throw new Error(`instance ${r.name}: tag ${k} is not a string`);
    out[k] = v;
  }
  return out;
}

export function instancesFromSnapshot(snap: Snapshot): Ec2Instance[] {
  if (snap.error) throw new Error(`the program failed under mocks: ${snap.error}`);
  const resources = snap.resources.filter((r) => r.type === INSTANCE_TYPE);
  if (resources.length === 0) throw new Error("the program declared no EC2 instances");
  return resources.map((r, index) => ({
    instanceId: `i-0e2e${index.toString(16).padStart(13, "0")}`,
    imageId: str(r, "ami"),
    instanceType: str(r, "instanceType"),
    privateIp: str(r, "privateIp"),
    state: "running",
    availabilityZone: str(r, "availabilityZone"),
    subnetId: str(r, "subnetId"),
    vpcId: FAKE_VPC,
    architecture: "x86_64",
    ownerId: FAKE_OWNER,
    tags: tagsOf(r),
  }));
}

/**
 * Look-alikes that must never be scraped. Their addresses are in TEST-NET-1 (192.0.2.0/24),
 * which nothing routes, so even a wrongly discovered decoy reaches no real address.
 */
export function decoys(real: readonly Ec2Instance[]): Ec2Instance[] {
  const template = real[0];
  const variant = (
    n: number,
    why: string,
    change: Partial<Ec2Instance>,
    tags: Record<string, string>,
  ): Ec2Instance => ({
    ...template,
    ...change,
    instanceId: `i-0dec0y${n.toString(16).padStart(10, "0")}`,
    privateIp: `192.0.2.${10 + n}`,
    tags: { ...template.tags, Name: `decoy-${n}-${why}`, ...tags },
  });
  return [
    variant(1, "other-environment", {}, { Environment: `${template.tags.Environment}-other` }),
    variant(2, "other-project", {}, { Project: `${template.tags.Project}-other` }),
    variant(3, "stopped", { state: "stopped" }, {}),
    variant(4, "not-scraped", {}, { Scrape: "false" }),
    variant(5, "other-role", {}, { Role: "bastion" }),
  ];
}

export const tag = (i: Ec2Instance, key: string): string => {
  const v = i.tags[key];
  if (v === undefined) throw new Error(`instance ${i.instanceId} has no ${key} tag`);
  return v;
};
