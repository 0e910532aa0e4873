/**
 * Runs the real program (index.ts) under Pulumi's mocks and records everything it declares:
 * each resource with its inputs and options, each invoke, and each stack output with its
 * secret flag. One program run per process: Pulumi's runtime state is global.
 *
 * Given the resources of an earlier run (`prior`), it plays the engine's part in an update:
 * ignoreChanges keeps the old inputs, the provider's replacement rules
 * (tests/support/replacementRules.ts) decide between same, update and replace, an updated
 * resource keeps its id and computed outputs, and a replaced one gets new ones, so the change
 * reaches every resource that depends on it exactly as it would in `pulumi up`.
 */
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { checkCommandResource } from "./commandProvider";
import { forcedReplacements } from "./replacementRules";

// The runtime's own "every RPC answered" condition; internal, but the one the engine waits on.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { waitForRPCs } = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs: () => Promise<void> };

export const PROJECT = "titan-observability";
export const MOCK_AMI = "ami-0123456789abcdef0";
export const MOCK_PASSWORD = "SENTINEL-grafana-password-0123456789";
export const MOCK_SECRET_KEY = "SENTINEL-grafana-secret-key-0123456789";
export const MOCK_PRIVATE_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nSENTINEL-private-key\n-----END OPENSSH PRIVATE KEY-----\n";
export const MOCK_PUBLIC_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockMockMockMockMockMockMockMockMockMockMock generated";
/**
 * Zone a offers no t3.small in this fake region, so the program has to pick zone b; an update
 * to t3.micro would pick a, and c7i.large exists only in c.
 */
export const MOCK_OFFERINGS: Record<string, readonly string[]> = {
  "us-east-1a": ["t3.micro"],
  "us-east-1b": ["t3.micro", "t3.small", "t3.medium", "m6i.large", "t4g.small"],
  "us-east-1c": ["t3.small", "t3.medium", "c7i.large"],
};

/** What an update does to a resource that an earlier run declared (or "create" when none did). */
export type Action = "create" | "same" | "update" | "replace";

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly custom: boolean;
  readonly parent: string;
  /** Inputs as the provider sees them (ignored properties already carry their old values). */
  readonly inputs: Record<string, unknown>;
  readonly deleteBeforeReplace: boolean;
  readonly ignoreChanges: string[];
  readonly dependencies: string[];
  /** The customTimeouts option as sent (@pulumi/pulumi runtime/resource.js: "" when unset). */
  readonly customTimeouts: { create: string; update: string; delete: string };
  /** The URN the monitor assigned, and for each input the URNs of the resources it came from. */
  readonly urn: string;
  readonly propertyDependencies: Record<string, string[]>;
  /** The id and every output the mock provider returned. */
  readonly id?: string;
  readonly state?: Record<string, unknown>;
  readonly action?: Action;
  /** Input paths that differ from the earlier run, and those of them that force a replacement. */
  readonly changed?: string[];
  readonly replacedBecause?: string[];
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
  /** The resources of the run this one updates. */
  readonly prior?: readonly RecordedResource[];
  /**
   * Outputs ("type::name" to values) the provider reports anew for a resource it keeps (an
   * in-place update or a refresh that moves an address, say): the engine hands its dependents
   * the new values, so their inputs differ from the run before.
   */
  readonly outputChanges?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /**
   * Names one deployment of the stack: random results (a RandomId's hex, a generated key) derive
   * from it, as two real deployments draw different ones. Unset: the fixed values above.
   */
  readonly deployment?: string;
}

let publicIpCounter = 0;
let eipCounter = 0;

/** A well-formed ed25519 public key per resource name (32 bytes after the type, as OpenSSH encodes it). */
export function mockHostKey(name: string): string {
  const type = Buffer.from("ssh-ed25519");
  const key = Buffer.alloc(32);
  Buffer.from(name).copy(key);
  const len = (b: Buffer) => Buffer.from([0, 0, 0, b.length]);
  return `ssh-ed25519 ${Buffer.concat([len(type), type, len(key), key]).toString("base64")}`;
}
/** Replaced resources get ids no earlier run used. */
let replacements = 0;

/** The id the mock EC2 gives the image of that exact name: another name, another id. */
export function mockAmiId(name: string): string {
  let hash = 0;
  for (const c of name) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `ami-0${hash.toString(16).padStart(8, "0")}${"1".repeat(8)}`;
}

/** EBS volume ids are validated where they are used (the bootstrap), so the mock makes real-looking ones. */
export function mockVolumeId(name: string): string {
  let hash = 0;
  for (const c of name) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `vol-0${hash.toString(16).padStart(8, "0")}${"0".repeat(8)}`;
}

const idFor = (type: string, name: string, generation = 0) => {
  const suffix = generation === 0 ? "" : `#${generation}`;
  return type === "aws:ebs/volume:Volume" ? mockVolumeId(name + suffix) : `${name}-id${suffix}`;
};

/** Leaf paths (dotted; arrays compared whole) at which two input trees differ. */
export function changedPaths(before: unknown, after: unknown, prefix = ""): string[] {
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (isMap(before) && isMap(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => changedPaths(before[k], after[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [prefix];
}

interface Decision {
  readonly inputs: Record<string, unknown>;
  readonly action: Action;
  readonly changed: string[];
  readonly replacedBecause: string[];
  readonly prior?: RecordedResource;
}

/** The engine's part of an update: apply ignoreChanges, diff, ask the provider's rules. */
function decide(
  type: string,
  inputs: Record<string, unknown>,
  ignoreChanges: readonly string[],
  prior: RecordedResource | undefined,
): Decision {
  if (!prior) return { inputs, action: "create", changed: [], replacedBecause: [] };
  const effective = { ...inputs };
  for (const key of ignoreChanges) {
    if (key.includes(".") || key.includes("[")) throw new Error(`mock: nested ignoreChanges path ${key} not modelled`);
    if (key in prior.inputs) effective[key] = prior.inputs[key];
    else delete effective[key];
  }
  const changed = changedPaths(prior.inputs, effective);
  const replacedBecause = forcedReplacements(type, changed, effective);
  const action: Action = replacedBecause.length > 0 ? "replace" : changed.length > 0 ? "update" : "same";
  return { inputs: effective, action, changed, replacedBecause, prior };
}

/** A deployment's own stand-in for a random value: hex digits from its name and the resource's. */
const drawn = (deployment: string, name: string, hexDigits: number) =>
  createHash("sha256").update(`${deployment}/${name}`).digest("hex").slice(0, hexDigits);

function computedState(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
  generation = 0,
  deployment?: string,
): Record<string, unknown> {
  switch (type) {
    case "aws:ec2/instance:Instance":
      publicIpCounter += 1;
      return { ...inputs, publicIp: `198.51.100.${publicIpCounter}`, arn: `arn:aws:ec2:::instance/${name}` };
    case "aws:ec2/eip:Eip":
      eipCounter += 1;
      return { ...inputs, publicIp: `203.0.113.${eipCounter}`, allocationId: `eipalloc-${name}` };
    case "command:local:Command":
      // The host-key fetch prints the key it read from the console (infra/hostKey/cli.ts).
      return name.endsWith("-host-key") ? { ...inputs, stdout: mockHostKey(name) } : { ...inputs };
    case "aws:s3/bucket:Bucket":
      return { ...inputs, arn: `arn:aws:s3:::${String(inputs.bucket)}` };
    case "aws:amp/workspace:Workspace":
      // As AWS reports it: the workspace root with a trailing slash (infra/amp.ts, facts/metricsStore.ts).
      return {
        ...inputs,
        arn: `arn:aws:aps:us-east-1:123456789012:workspace/ws-${name}`,
        prometheusEndpoint: `https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-${name}/`,
      };
    case "aws:iam/role:Role":
    case "aws:iam/instanceProfile:InstanceProfile":
      return { ...inputs, name: `${name}-1234567`, arn: `arn:aws:iam::123456789012:role/${name}` };
    case "random:index/randomId:RandomId":
      if (deployment === undefined) return { ...inputs, hex: "1a2b3c4d" };
      return { ...inputs, hex: drawn(deployment, name, 2 * Number(inputs.byteLength)) };
    case "random:index/randomPassword:RandomPassword":
      // A replaced password is a new random string.
      return { ...inputs, result: generation === 0 ? MOCK_PASSWORD : `${MOCK_PASSWORD}-${generation}` };
    case "random:index/randomBytes:RandomBytes":
      return { ...inputs, hex: MOCK_SECRET_KEY, base64: MOCK_SECRET_KEY };
    case "tls:index/privateKey:PrivateKey":
      if (deployment === undefined)
        return { ...inputs, privateKeyOpenssh: MOCK_PRIVATE_KEY, publicKeyOpenssh: MOCK_PUBLIC_KEY };
      return {
        ...inputs,
        privateKeyOpenssh: MOCK_PRIVATE_KEY,
        publicKeyOpenssh: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${drawn(deployment, name, 43)} generated`,
      };
    default:
      return { ...inputs };
  }
}

/** A value as the engine marks a secret on the wire (@pulumi/pulumi runtime/rpc.ts specialSigKey). */
const secretValue = (value: unknown) => ({
  "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
  value,
});

function invoke(token: string, inputs: Record<string, unknown>): Record<string, unknown> {
  switch (token) {
    case "aws:ssm/getParameter:getParameter":
      // terraform-provider-aws internal/service/ssm/parameter_data_source.go: `value` is
      // Sensitive (the bridge returns it as a secret), `insecure_value` is not.
      return { name: inputs.name, type: "String", value: secretValue(MOCK_AMI), insecureValue: MOCK_AMI };
    case "aws:ec2/getAmi:getAmi": {
      // One image per exact name (what facts/versions.ts DEBIAN_IMAGE pins); its id follows the name.
      const filters = (inputs.filters ?? []) as { name: string; values: string[] }[];
      const names = filters.find((f) => f.name === "name")?.values ?? [];
      if (names.length !== 1 || /[*?]/.test(names[0]))
        throw new Error(`mock getAmi: expected one exact name, got ${names.join(", ")}`);
      return { id: mockAmiId(names[0]), name: names[0], owners: inputs.owners, architecture: "x86_64" };
    }
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
  getCustomtimeouts(): { getCreate(): string; getUpdate(): string; getDelete(): string } | undefined;
  getPropertydependenciesMap(): { forEach(cb: (deps: { getUrnsList(): string[] }, key: string) => void): void };
}

interface RegisterResponse {
  getUrn(): string;
}

export async function runProgram(input: ProgramInput): Promise<Snapshot> {
  const resources: RecordedResource[] = [];
  const invokes: Snapshot["invokes"] = [];
  const options = new Map<string, Omit<RecordedResource, "inputs">>();
  const urns = new Map<string, string>();
  const withUrns = () => resources.map((r) => ({ ...r, urn: urns.get(`${r.type}::${r.name}`) ?? "" }));
  const prior = new Map((input.prior ?? []).map((r) => [`${r.type}::${r.name}`, r]));

  pulumi.runtime.setAllConfig(input.config, [...(input.secretKeys ?? [])]);
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const { type, name, custom } = args;
        const inputs = args.inputs as Record<string, unknown>;
        checkCommandResource(type, name, inputs); // the provider's Check(), as a preview runs it
        const key = `${type}::${name}`;
        const recorded = options.get(key) ?? defaultsFor(type, name, custom ?? false);
        const d = decide(type, inputs, recorded.ignoreChanges, prior.get(key));
        const kept = d.action === "same" || d.action === "update";
        const generation = d.action === "replace" ? ++replacements : 0;
        const id = kept && d.prior?.id ? d.prior.id : idFor(type, name, generation);
        // An updated resource keeps what the provider computed (its public IP, say); inputs win.
        const state =
          kept && d.prior?.state
            ? { ...d.prior.state, ...d.inputs, ...input.outputChanges?.[key] }
            : computedState(type, name, d.inputs, generation, input.deployment);
        resources.push({
          ...recorded,
          inputs: d.inputs,
          id,
          state,
          action: d.action,
          changed: d.changed,
          replacedBecause: d.replacedBecause,
        });
        return { id, state };
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
    registerResource(req: RegisterRequest, cb: (err: unknown, resp?: RegisterResponse) => void): Promise<void>;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    const key = `${req.getType()}::${req.getName()}`;
    const propertyDependencies: Record<string, string[]> = {};
    req.getPropertydependenciesMap().forEach((deps, input) => (propertyDependencies[input] = deps.getUrnsList()));
    options.set(key, {
      type: req.getType(),
      name: req.getName(),
      custom: req.getCustom(),
      parent: req.getParent(),
      deleteBeforeReplace: req.getDeletebeforereplace(),
      ignoreChanges: req.getIgnorechangesList(),
      dependencies: req.getDependenciesList(),
      customTimeouts: timeoutsOf(req),
      urn: "", // the monitor names it after the mock provider answers: see withUrns
      propertyDependencies,
    });
    return register(req, (err, resp) => {
      if (resp) urns.set(key, resp.getUrn());
      cb(err, resp);
    });
  };

  // An error inside an apply (a refused input, say) fails the program as it would fail
  // `pulumi preview`; in this process it surfaces as an unhandled rejection.
  let failure: string | undefined;
  const failed = new Promise<void>((resolve) => {
    const onFailure = (err: unknown) => {
      failure ??= err instanceof Error ? err.message : String(err);
      resolve();
    };
    process.on("unhandledRejection", onFailure);
    process.on("uncaughtException", onFailure);
  });

  let stackExports: Record<string, unknown>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    stackExports = require("../../index") as Record<string, unknown>;
  } catch (err) {
    return { resources: withUrns(), invokes, outputs: {}, error: (err as Error).message };
  }

  const outputs: Record<string, RecordedOutput> = {};
  const resolveAll = async () => {
    for (const [name, value] of Object.entries(stackExports)) {
      if (value === undefined) continue;
      const output = pulumi.output(value);
      outputs[name] = {
        value: await new Promise((resolve) => output.apply(resolve)),
        secret: await pulumi.isSecret(output),
      };
    }
    // Every registration is an RPC the runtime keeps alive until it is answered.
    await waitForRPCs();
  };
  await Promise.race([resolveAll(), failed]);
  if (failure !== undefined) return { resources: withUrns(), invokes, outputs, error: innermost(failure) };
  return { resources: withUrns(), invokes, outputs };
}

/** The runtime wraps an input's error once per enclosing property; the cause is what a user reads. */
const innermost = (message: string) => message.replace(/^(error serializing property "[^"]+": )+/, "");

function timeoutsOf(req: RegisterRequest): RecordedResource["customTimeouts"] {
  const t = req.getCustomtimeouts();
  return { create: t?.getCreate() ?? "", update: t?.getUpdate() ?? "", delete: t?.getDelete() ?? "" };
}

function defaultsFor(type: string, name: string, custom: boolean): Omit<RecordedResource, "inputs"> {
  return {
    type,
    name,
    custom,
    parent: "",
    deleteBeforeReplace: false,
    ignoreChanges: [],
    dependencies: [],
    customTimeouts: { create: "", update: "", delete: "" },
    urn: "",
    propertyDependencies: {},
  };
}
