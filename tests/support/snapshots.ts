/** Runs the program under mocks in a fresh process per configuration and returns what it declared. */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { PROJECT, type Action, type ProgramInput, type RecordedResource, type Snapshot } from "./mockProgram";

const run = promisify(execFile);

export interface TimedSnapshot extends Snapshot {
  readonly elapsedMs: number;
  readonly peakRssKb: number;
}

/** The smallest valid configuration: what deploy.sh sets on first use. */
export const BASE_CONFIG: Readonly<Record<string, string>> = {
  [`${PROJECT}:allowedCidrs`]: '["203.0.113.7/32"]',
  "aws:region": "us-east-1",
};

export const key = (name: string) => (name.includes(":") ? name : `${PROJECT}:${name}`);

/** `overrides` uses bare project keys (webCount) or namespaced ones (aws:region). */
export interface SnapshotOptions {
  readonly secretKeys?: string[];
  readonly stack?: string;
  readonly replaceBase?: boolean;
  /** The resources of the run this one updates (see runProgram). */
  readonly prior?: readonly RecordedResource[];
  /** Pins to change before the program loads, as a code change to facts/versions.ts would (debianImage: DEBIAN_IMAGE). */
  readonly versions?: Readonly<Record<string, { version: string; aptPin: string } | { name: string }>>;
  /** Which deployment's random results the mocks draw (see ProgramInput.deployment). */
  readonly deployment?: string;
}

export async function snapshot(
  overrides: Record<string, string> = {},
  options: SnapshotOptions = {},
): Promise<TimedSnapshot> {
  const config: Record<string, string> = options.replaceBase ? {} : { ...BASE_CONFIG };
  for (const [k, v] of Object.entries(overrides)) config[key(k)] = v;
  const input: ProgramInput & { versions?: SnapshotOptions["versions"] } = {
    config,
    secretKeys: (options.secretKeys ?? []).map(key),
    stack: options.stack,
    prior: options.prior,
    versions: options.versions,
    deployment: options.deployment,
  };
  // A prior run is too large for the environment (128 KiB per variable): hand it over in a file.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "titan-snapshot-"));
  try {
    const inputFile = path.join(dir, "input.json");
    fs.writeFileSync(inputFile, JSON.stringify(input));
    const { stdout } = await run(process.execPath, [path.join(__dirname, "snapshotCli.js")], {
      env: { ...process.env, SNAPSHOT_INPUT_FILE: inputFile, AWS_REGION: "", AWS_DEFAULT_REGION: "" },
      maxBuffer: 256 * 1024 * 1024,
    });
    return JSON.parse(stdout) as TimedSnapshot;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** An update as `pulumi up` would run it: the base configuration deployed, then the change applied. */
export async function update(
  base: Record<string, string>,
  changed: Record<string, string>,
  options: Omit<SnapshotOptions, "prior"> & { readonly changedVersions?: SnapshotOptions["versions"] } = {},
): Promise<TimedSnapshot> {
  const { changedVersions, ...common } = options;
  const before = await snapshot(base, common);
  if (before.error) throw new Error(`the base configuration fails: ${before.error}`);
  return snapshot(changed, { ...common, prior: before.resources, versions: changedVersions ?? common.versions });
}

/** The action an update took on one resource. */
export function actionOf(snap: Snapshot, type: string, name: string): Action | undefined {
  return one(snap, type, name).action;
}

export const ofType = (snap: Snapshot, type: string): RecordedResource[] =>
  snap.resources.filter((r) => r.type === type);

export function one(snap: Snapshot, type: string, name: string): RecordedResource {
  const found = snap.resources.filter((r) => r.type === type && r.name === name);
  if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}`);
  return found[0];
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Whether a recorded input value is wrapped as a Pulumi secret. */
export const isSecretValue = (value: unknown): boolean =>
  typeof value === "object" && value !== null && SECRET_SIG in value;

/** A resource's inputs as JSON with every secret-wrapped value replaced: what state keeps in plain text. */
export function plainInputs(resource: RecordedResource): string {
  return JSON.stringify(resource.inputs, (_key, value: unknown) => (isSecretValue(value) ? "<secret>" : value));
}
