/**
 * Runs the real program (index.ts) under Pulumi's mocks and records everything it declares:
 * each resource with its inputs and options, each invoke, and each stack output with its
 * secret flag. One program run per process: Pulumi's runtime state is global.
 */
import * as pulumi from "@pulumi/pulumi";

export const PROJECT = "titan-observability";
export const MOCK_AMI = "ami-0123456789abcdef0";
export const MOCK_PASSWORD = "SENTINEL-grafana-password-0123456789";
export const MOCK_PRIVATE_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nSENTINEL-private-key\n-----END OPENSSH PRIVATE KEY-----\n";
export const MOCK_PUBLIC_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockMockMockMockMockMockMockMockMockMockMock generated";
/** Zone a offers no t3 types in this fake region, so the program has to pick zone b. */
export const MOCK_OFFERINGS: Record<string, readonly string[]> = {
  "us-east-1a": ["t3.micro"],
  "us-east-1b": ["t3.micro", "t3.small", "t3.medium", "m6i.large", "t4g.small"],
  "us-east-1c": ["t3.small", "t3.medium"],
};

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly custom: boolean;
  readonly parent: string;
  readonly inputs: Record<string, unknown>;
  readonly deleteBeforeReplace: boolean;
  readonly ignoreChanges: string[];
  readonly dependencies: string[];
}

export interface RecordedOutput {
  readonly value: unknown;
  readonly secret: boolean;
}

export interface Snapshot {
  readonly resources: RecordedResource[];
  readonly invokes: { token: string; inputs: Record<string, unknown> }[];
  readonly outputs: Record<string, RecordedOutput>;
  readonly error?: string;
}

export interface ProgramInput {
  readonly config: Record<string, string>;
  readonly secretKeys?: readonly string[];
  readonly stack?: string;
}

let publicIpCounter = 0;

/** EBS volume ids are validated where they are used (the bootstrap), so the mock makes real-looking ones. */
export function mockVolumeId(name: string): string {
  let hash = 0;
  for (const c of name) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `vol-0${hash.toString(16).padStart(8, "0")}${"0".repeat(8)}`;
}

const idFor = (type: string, name: string) => (type === "aws:ebs/volume:Volume" ? mockVolumeId(name) : `${name}-id`);

function computedState(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  switch (type) {
    case "aws:ec2/instance:Instance":
      publicIpCounter += 1;
      return { ...inputs, publicIp: `198.51.100.${publicIpCounter}`, arn: `arn:aws:ec2:::instance/${name}` };
    case "aws:s3/bucket:Bucket":
      return { ...inputs, arn: `arn:aws:s3:::${String(inputs.bucket)}` };
    case "aws:iam/role:Role":
    case "aws:iam/instanceProfile:InstanceProfile":
      return { ...inputs, name: `${name}-1234567`, arn: `arn:aws:iam::123456789012:role/${name}` };
    case "random:index/randomId:RandomId":
      return { ...inputs, hex: "1a2b3c4d" };
    case "random:index/randomPassword:RandomPassword":
      return { ...inputs, result: MOCK_PASSWORD };
    case "tls:index/privateKey:PrivateKey":
      return { ...inputs, privateKeyOpenssh: MOCK_PRIVATE_KEY, publicKeyOpenssh: MOCK_PUBLIC_KEY };
    default:
      return { ...inputs };
  }
}

function invoke(token: string, inputs: Record<string, unknown>): Record<string, unknown> {
  switch (token) {
    case "aws:ssm/getParameter:getParameter":
      return { name: inputs.name, type: "String", value: MOCK_AMI, insecureValue: MOCK_AMI };
    case "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": {
      const filters = (inputs.filters ?? []) as { name: string; values: string[] }[];
      const wanted = filters.find((f) => f.name === "instance-type")?.values ?? [];
      const pairs = Object.entries(MOCK_OFFERINGS).flatMap(([zone, types]) =>
        types.filter((t) => wanted.includes(t)).map((t) => [t, zone] as const),
      );
      return {
        instanceTypes: pairs.map(([t]) => t),
        locations: pairs.map(([, z]) => z),
        locationTypes: pairs.map(() => "availability-zone"),
      };
    }
    default:
      throw new Error(`unmocked invoke ${token}: add it to tests/support/mockProgram.ts`);
  }
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getCustom(): boolean;
  getParent(): string;
  getDeletebeforereplace(): boolean;
  getIgnorechangesList(): string[];
  getDependenciesList(): string[];
}

export async function runProgram(input: ProgramInput): Promise<Snapshot> {
  const resources: RecordedResource[] = [];
  const invokes: Snapshot["invokes"] = [];
  const options = new Map<string, Omit<RecordedResource, "inputs">>();

  pulumi.runtime.setAllConfig(input.config, [...(input.secretKeys ?? [])]);
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const { type, name, custom } = args;
        const inputs = args.inputs as Record<string, unknown>;
        const key = `${type}::${name}`;
        resources.push({ ...(options.get(key) ?? defaultsFor(type, name, custom ?? false)), inputs });
        return { id: idFor(type, name), state: computedState(type, name, inputs) };
      },
      call: (args) => {
        const { token } = args;
        const inputs = args.inputs as Record<string, unknown>;
        invokes.push({ token, inputs });
        return invoke(token, inputs);
      },
    },
    PROJECT,
    input.stack ?? "dev",
    false,
  );

  // The mocks see inputs only; resource options travel in the register request itself.
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, cb: unknown): Promise<void>;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    options.set(`${req.getType()}::${req.getName()}`, {
      type: req.getType(),
      name: req.getName(),
      custom: req.getCustom(),
      parent: req.getParent(),
      deleteBeforeReplace: req.getDeletebeforereplace(),
      ignoreChanges: req.getIgnorechangesList(),
      dependencies: req.getDependenciesList(),
    });
    return register(req, cb);
  };

  let stackExports: Record<string, unknown>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    stackExports = require("../../index") as Record<string, unknown>;
  } catch (err) {
    return { resources, invokes, outputs: {}, error: (err as Error).message };
  }

  const outputs: Record<string, RecordedOutput> = {};
  for (const [name, value] of Object.entries(stackExports)) {
    if (value === undefined) continue;
    const output = pulumi.output(value);
    outputs[name] = {
      value: await new Promise((resolve) => output.apply(resolve)),
      secret: await pulumi.isSecret(output),
    };
  }
  await settle(() => resources.length);
  return { resources, invokes, outputs };
}

function defaultsFor(type: string, name: string, custom: boolean): Omit<RecordedResource, "inputs"> {
  return { type, name, custom, parent: "", deleteBeforeReplace: false, ignoreChanges: [], dependencies: [] };
}

/** Resolves once registrations stop arriving: rules depend on group ids and land last. */
async function settle(count: () => number): Promise<void> {
  let last = -1;
  let stable = 0;
  while (stable < 5) {
    await new Promise((r) => setTimeout(r, 20));
    const now = count();
    stable = now === last ? stable + 1 : 0;
    last = now;
  }
}
