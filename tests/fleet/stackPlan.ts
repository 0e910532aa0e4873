/**
 * What the program declares for each fleet host, taken from the real program (index.ts) run
 * under the mocks in a child process (stackPlanCli.ts) with the fleet's configuration: the
 * user data bytes, the tags and private IP of each aws:ec2/instance:Instance, its data volume
 * (found through the aws:ec2/volumeAttachment:VolumeAttachment that names both), the key pair
 * it is launched with, and its push: every command:remote:Command and CopyToRemote whose
 * connection goes to that instance, in dependency order. Resources are matched to hosts by
 * their inputs (the connection's host is the instance's public IP; the attachment's instance
 * id is the instance's id), never by their names.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import type { Role } from "../../facts/topology";
import { projectRoot } from "../../templates/projectFiles";
import type { Action, ProgramInput, RecordedResource, Snapshot } from "../support/mockProgram";
import { forcedReplacements } from "../support/replacementRules";
import { BASE_CONFIG, isSecretValue, key } from "../support/snapshots";
import { FLEET_PLAN, FLEET_VPC_CIDR, FLEET_WEB_COUNT } from "./layout";
import type { StackPlanOutput } from "./stackPlanCli";

const execFileAsync = promisify(execFile);

/** The fleet's stack name: its push trees live in .titan-push/fleet/, apart from dev's. */
export const FLEET_STACK = "fleet";

export const INSTANCE = "aws:ec2/instance:Instance";
export const VOLUME = "aws:ebs/volume:Volume";
export const ATTACHMENT = "aws:ec2/volumeAttachment:VolumeAttachment";
export const KEY_PAIR = "aws:ec2/keyPair:KeyPair";
export const EIP = "aws:ec2/eip:Eip";
export const EIP_ASSOCIATION = "aws:ec2/eipAssociation:EipAssociation";
export const REMOTE_COMMAND = "command:remote:Command";
export const COPY_TO_REMOTE = "command:remote:CopyToRemote";
export const LOCAL_COMMAND = "command:local:Command";
export const INSTANCE_PROFILE = "aws:iam/instanceProfile:InstanceProfile";

/** The stand-in vendor repository as the stack's vendorAptRepository config takes it. */
export interface VendorRepositoryConfig {
  readonly uri: string;
  readonly keyUrl: string;
  readonly keyFingerprint: string;
  readonly suite?: string;
  readonly components?: readonly string[];
}

export interface FleetConfigInput {
  readonly publicKey: string;
  readonly privateKey: string;
  readonly vendorAptRepository?: VendorRepositoryConfig;
}

/** Keys given as secrets (the engine would hold them encrypted); the webhook must be one (facts/config.ts). */
export const FLEET_SECRET_KEYS = ["sshPrivateKey", "slackWebhookUrl"];

/**
 * The fleet's stack configuration: the smallest valid one (snapshots.ts BASE_CONFIG), the
 * fleet's address plan, the run's key pair (so the stack declares the key the fleet logs in
 * with), and the stand-in vendor repository. Keys are namespaced as Pulumi stores them.
 */
export function fleetConfig(input: FleetConfigInput): Record<string, string> {
  const values: Record<string, string> = {
    vpcCidr: FLEET_VPC_CIDR,
    webCount: String(FLEET_WEB_COUNT),
    sshPublicKey: input.publicKey.trim(),
    sshPrivateKey: input.privateKey,
  };
  if (input.vendorAptRepository) values.vendorAptRepository = JSON.stringify(input.vendorAptRepository);
  const config: Record<string, string> = { ...BASE_CONFIG };
  for (const [k, v] of Object.entries(values)) config[key(k)] = v;
  return config;
}

export interface PlannedConnection {
  readonly host: string;
  readonly user: string;
  readonly port: number;
  readonly privateKey?: string;
  readonly hostKey?: string;
  readonly dialErrorLimit?: number;
  readonly perDialTimeout?: number;
}

interface PlannedBase {
  /** The resource's name in the program. */
  readonly resource: string;
  readonly connection: PlannedConnection;
  readonly triggers: readonly unknown[];
  /** What the engine does to it in this run (create on a first run). */
  readonly action: Action;
  /** Input paths that differ from the run before. */
  readonly changed: readonly string[];
  /** Other resources of the same host this one depends on (names). */
  readonly dependsOn: readonly string[];
}

export interface PlannedCommand extends PlannedBase {
  readonly type: typeof REMOTE_COMMAND;
  readonly create?: string;
  readonly update?: string;
  readonly delete?: string;
  readonly environment?: Readonly<Record<string, string>>;
  readonly stdin?: string;
  readonly logging?: string;
  readonly addPreviousOutputInEnv?: boolean;
}

export interface PlannedSource {
  readonly kind: string;
  /** As the program gave it. */
  readonly path: string;
  /** Resolved against the project root. */
  readonly absolute: string;
  /** sha256 over the tree's relative paths and contents: what the engine's archive hash tells apart. */
  readonly hash: string;
}

export interface PlannedCopy extends PlannedBase {
  readonly type: typeof COPY_TO_REMOTE;
  readonly source: PlannedSource;
  readonly remotePath: string;
}

export type PlannedPush = PlannedCommand | PlannedCopy;

export interface PlannedHost {
  readonly name: string;
  readonly role: Role;
  readonly privateIp: string;
  /** The Elastic IP the mocks gave the host: what its push connects to. */
  readonly publicIp: string;
  /** The instance's id in the mocked state (its push triggers on it). */
  readonly instanceResourceId: string;
  readonly userData: string;
  readonly tags: Readonly<Record<string, string>>;
  /** The key pair's public key the instance is launched with. */
  readonly publicKey: string;
  readonly dataVolume?: { readonly volumeId: string; readonly sizeGb: number };
  /**
   * The IAM role of the instance's profile (its `iamInstanceProfile`, infra/stack.ts), whose
   * credentials the instance metadata hands out; undefined when it has none (web, Grafana).
   */
  readonly instanceRole?: string;
  readonly pushes: readonly PlannedPush[];
}

export interface PlannedLocalCommand {
  readonly resource: string;
  readonly create?: string;
  readonly action: Action;
}

export interface StackPlan {
  readonly stack: string;
  readonly config: Readonly<Record<string, string>>;
  readonly hosts: readonly PlannedHost[];
  /** Commands the engine runs on the deploying machine (the verification): not a host's. */
  readonly localCommands: readonly PlannedLocalCommand[];
  /** Every resource as recorded: the prior state of the next update. */
  readonly resources: readonly RecordedResource[];
  readonly outputs: Snapshot["outputs"];
}

/** A value with every Pulumi secret wrapper removed (the provider sees the plain value). */
export function unwrapSecrets(value: unknown): unknown {
  if (isSecretValue(value)) return unwrapSecrets((value as { value: unknown }).value);
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
  }
  return value;
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);

/** "type::name" of a resource URN's last segment: urn:pulumi:stack::project::parent$type::name. */
export function urnKey(urn: string): string {
  const parts = urn.split("::");
  const name = parts[parts.length - 1];
  const types = parts[parts.length - 2] ?? "";
  return `${types.split("$").pop()}::${name}`;
}

/** sha256 of a file or a directory tree (relative paths, kinds and contents, sorted). */
export function treeHash(p: string): string {
  const hash = createHash("sha256");
  const walk = (abs: string, rel: string) => {
    const st = fs.lstatSync(abs);
    if (st.isDirectory()) {
      hash.update(`d ${rel}\0`);
      for (const e of fs.readdirSync(abs).sort()) walk(path.join(abs, e), rel ? `${rel}/${e}` : e);
    } else {
      hash.update(`f ${rel}\0`).update(fs.readFileSync(abs)).update("\0");
    }
  };
  walk(p, "");
  return hash.digest("hex");
}

function connectionOf(r: RecordedResource): PlannedConnection {
  const c = unwrapSecrets(r.inputs.connection) as Record<string, unknown> | undefined;
  const host = str(c?.host);
  if (!c || !host) throw new Error(`${r.type} ${r.name}: no connection host in its inputs`);
  return {
    host,
    // pulumi-command v1.2.1 remote/connection.go Annotate: user defaults to root, port to 22.
    user: str(c.user) ?? "root",
    port: num(c.port) ?? 22,
    privateKey: str(c.privateKey),
    hostKey: str(c.hostKey),
    dialErrorLimit: num(c.dialErrorLimit),
    perDialTimeout: num(c.perDialTimeout),
  };
}

const triggersOf = (r: RecordedResource): unknown[] => {
  const t = unwrapSecrets(r.inputs.triggers);
  return Array.isArray(t) ? t : [];
};

function pushOf(
  r: RecordedResource,
  sources: StackPlanOutput["sources"],
  root: string,
  dependsOn: string[],
): PlannedPush {
  const base = {
    resource: r.name,
    connection: connectionOf(r),
    triggers: triggersOf(r),
    action: r.action ?? "create",
    changed: r.changed ?? [],
    dependsOn,
  };
  const inputs = unwrapSecrets(r.inputs) as Record<string, unknown>;
  if (r.type === REMOTE_COMMAND) {
    const env = inputs.environment as Record<string, unknown> | undefined;
    return {
      ...base,
      type: REMOTE_COMMAND,
      create: str(inputs.create),
      update: str(inputs.update),
      delete: str(inputs.delete),
      environment: env ? Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])) : undefined,
      stdin: str(inputs.stdin),
      logging: str(inputs.logging),
      addPreviousOutputInEnv:
        typeof inputs.addPreviousOutputInEnv === "boolean" ? inputs.addPreviousOutputInEnv : undefined,
    };
  }
  const source = sources[r.name];
  const remotePath = str(inputs.remotePath);
  if (!source?.path) throw new Error(`${r.type} ${r.name}: its source has no path (${source?.kind ?? "none"})`);
  if (!remotePath) throw new Error(`${r.type} ${r.name}: no remotePath`);
  const absolute = path.resolve(root, source.path);
  if (!fs.existsSync(absolute)) throw new Error(`${r.type} ${r.name}: source ${absolute} does not exist`);
  return {
    ...base,
    type: COPY_TO_REMOTE,
    source: { kind: source.kind, path: source.path, absolute, hash: treeHash(absolute) },
    remotePath,
  };
}

/** Orders a host's pushes so each comes after what it depends on; declaration order otherwise. */
function dependencyOrder(pushes: PlannedPush[]): PlannedPush[] {
  const byName = new Map(pushes.map((p) => [p.resource, p]));
  const done = new Set<string>();
  const out: PlannedPush[] = [];
  const visit = (p: PlannedPush, stack: string[]) => {
    if (done.has(p.resource)) return;
    if (stack.includes(p.resource)) throw new Error(`dependency cycle: ${[...stack, p.resource].join(" -> ")}`);
    for (const d of p.dependsOn) {
      const dep = byName.get(d);
      if (dep) visit(dep, [...stack, p.resource]);
    }
    done.add(p.resource);
    out.push(p);
  };
  for (const p of pushes) visit(p, []);
  return out;
}

/** Turns the child's output into per-host plans; every remote command must belong to one host. */
export function planFromOutput(
  output: StackPlanOutput,
  info: { stack: string; config: Record<string, string>; root?: string },
): StackPlan {
  const { snapshot, sources } = output;
  if (snapshot.error) throw new Error(`the program fails under the fleet's configuration: ${snapshot.error}`);
  const root = info.root ?? projectRoot();
  const resources = snapshot.resources;
  const keyOf = (r: RecordedResource) => `${r.type}::${r.name}`;
  const byKey = new Map(resources.map((r) => [keyOf(r), r]));

  const instances = resources.filter((r) => r.type === INSTANCE);
  const remote = resources.filter((r) => r.type === REMOTE_COMMAND || r.type === COPY_TO_REMOTE);
  const claimed = new Set<string>();
  const hosts = instances.map((inst): PlannedHost => {
    const privateIp = str(inst.inputs.privateIp);
    const slot = FLEET_PLAN.hosts.find((h) => h.privateIp === privateIp);
    const tags = (inst.inputs.tags ?? {}) as Record<string, string>;
    if (!slot) throw new Error(`instance ${inst.name}: private IP ${privateIp} is not in the fleet's address plan`);
    if (tags.Role !== slot.role)
      throw new Error(`instance at ${privateIp}: tag Role=${tags.Role}, the address plan says ${slot.role}`);
    // The address pushes dial: the Elastic IP associated with the instance (infra/host.ts).
    const association = resources.find((r) => r.type === EIP_ASSOCIATION && r.inputs.instanceId === inst.id);
    const eip = resources.find(
      (r) => r.type === EIP && association && r.state?.allocationId === association.inputs.allocationId,
    );
    const publicIp = str(eip?.state?.publicIp);
    const userData = str(inst.inputs.userData);
    if (!publicIp || !inst.id || userData === undefined)
      throw new Error(`instance ${inst.name}: no Elastic IP, id or user data in the mocked state`);

    const keyPair = resources.find((r) => r.type === KEY_PAIR && r.inputs.keyName === inst.inputs.keyName);
    const publicKey = str(unwrapSecrets(keyPair?.inputs.publicKey));
    if (!publicKey) throw new Error(`instance ${inst.name}: no key pair named ${String(inst.inputs.keyName)}`);

    const attachments = resources.filter((r) => r.type === ATTACHMENT && r.inputs.instanceId === inst.id);
    if (attachments.length > 1) throw new Error(`instance ${inst.name}: ${attachments.length} volume attachments`);
    let dataVolume: PlannedHost["dataVolume"];
    if (attachments.length === 1) {
      const vol = resources.find((r) => r.type === VOLUME && r.id === attachments[0].inputs.volumeId);
      const sizeGb = num(vol?.inputs.size);
      if (!vol?.id || sizeGb === undefined)
        throw new Error(
          `instance ${inst.name}: attachment names volume ${String(attachments[0].inputs.volumeId)}, not declared`,
        );
      dataVolume = { volumeId: vol.id, sizeGb };
    }

    // The profile by the name the instance names; the role by the name the profile names.
    const profileName = str(inst.inputs.iamInstanceProfile);
    let instanceRole: string | undefined;
    if (profileName) {
      const profile = resources.find((r) => r.type === INSTANCE_PROFILE && r.state?.name === profileName);
      instanceRole = str(profile?.inputs.role);
      if (!instanceRole)
        throw new Error(`instance ${inst.name}: instance profile ${profileName} is not declared, or names no role`);
    }

    const mine = remote.filter((r) => connectionOf(r).host === publicIp);
    for (const r of mine) claimed.add(keyOf(r));
    const names = new Set(mine.map(keyOf));
    const pushes = mine.map((r) => {
      const deps = r.dependencies.map(urnKey);
      for (const d of deps) {
        const dep = byKey.get(d);
        if (dep && (dep.type === REMOTE_COMMAND || dep.type === COPY_TO_REMOTE) && !names.has(d)) {
          throw new Error(`${r.name} depends on ${dep.name}, a command of another host: not modelled by the fleet`);
        }
      }
      return pushOf(
        r,
        sources,
        root,
        deps.filter((d) => names.has(d)).map((d) => d.split("::")[1]),
      );
    });
    return {
      name: slot.name,
      role: slot.role,
      privateIp: slot.privateIp,
      publicIp,
      instanceResourceId: inst.id,
      userData,
      tags,
      publicKey,
      dataVolume,
      instanceRole,
      pushes: dependencyOrder(pushes),
    };
  });
  const orphans = remote.filter((r) => !claimed.has(keyOf(r)));
  if (orphans.length > 0) {
    throw new Error(`remote commands connecting to no declared instance: ${orphans.map((r) => r.name).join(", ")}`);
  }
  const localCommands = resources
    .filter((r) => r.type === LOCAL_COMMAND)
    .map((r) => ({ resource: r.name, create: str(unwrapSecrets(r.inputs.create)), action: r.action ?? "create" }));
  return { stack: info.stack, config: info.config, hosts, localCommands, resources, outputs: snapshot.outputs };
}

export interface PlanOptions {
  readonly stack?: string;
  /** The resources of the run this one updates: the engine's prior state. */
  readonly prior?: readonly RecordedResource[];
  readonly secretKeys?: readonly string[];
  /** Outputs the provider reports anew for resources it keeps (mockProgram.ts ProgramInput.outputChanges). */
  readonly outputChanges?: ProgramInput["outputChanges"];
}

/** Runs the program under the mocks in a child process (stackPlanCli.js) and plans each host. */
export async function planStack(config: Record<string, string>, options: PlanOptions = {}): Promise<StackPlan> {
  const stack = options.stack ?? FLEET_STACK;
  const input: ProgramInput = {
    config,
    secretKeys: (options.secretKeys ?? FLEET_SECRET_KEYS).map(key),
    stack,
    prior: options.prior,
    outputChanges: options.outputChanges,
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "titan-stack-plan-"));
  try {
    const inputFile = path.join(dir, "input.json");
    fs.writeFileSync(inputFile, JSON.stringify(input));
    const root = projectRoot();
    const { stdout } = await execFileAsync(process.execPath, [path.join(__dirname, "stackPlanCli.js")], {
      // The engine runs the program in the project directory: relative asset paths start there.
      cwd: root,
      env: { ...process.env, STACK_PLAN_INPUT_FILE: inputFile, AWS_REGION: "", AWS_DEFAULT_REGION: "" },
      maxBuffer: 256 * 1024 * 1024,
    });
    return planFromOutput(JSON.parse(stdout) as StackPlanOutput, { stack, config, root });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One step the engine takes over SSH in an update: which script (or copy) runs where, and why. */
export interface PlannedStep {
  readonly host: string;
  readonly push: PlannedPush;
  /** The engine's action on the resource. */
  readonly action: Action | "delete";
  /** What runs: a Command's create/update/delete script, or a CopyToRemote's copy. */
  readonly runs: "create" | "update" | "delete" | "copy";
  /**
   * When in the run (pulumi/pulumi pkg/resource/deploy/step_generator.go): "delete-first" for the
   * old resources a delete-before-replace replacement deletes before anything is created,
   * "delete-last" for the deletes the engine leaves until every create and update is done
   * (create-first replacements and removed resources: deployment_executor.go performPostSteps),
   * "apply" for the rest. Absent means "apply".
   */
  readonly phase?: StepPhase;
  /** Why a resource the mocks left unchanged is replaced (a dependent of a delete-before-replace). */
  readonly because?: string;
}

export type StepPhase = "delete-first" | "apply" | "delete-last";

/** The order the phases run in. */
export const STEP_PHASES: readonly StepPhase[] = ["delete-first", "apply", "delete-last"];

export const resourceKey = (r: { readonly type: string; readonly name: string }): string => `${r.type}::${r.name}`;

/** `prefix` and every leaf path under it in `value`: what an input that became unknown may change. */
function pathsUnder(value: unknown, prefix: string): string[] {
  const nested =
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? Object.entries(value).flatMap(([k, v]) => pathsUnder(v, `${prefix}.${k}`))
      : [];
  return [prefix, ...nested];
}

/** A resource the engine deletes and re-creates because a delete-before-replace resource it depends on is replaced. */
export interface DependentReplacement {
  /** The delete-before-replace resource ("type::name") whose replacement takes this one with it. */
  readonly root: string;
  /** The inputs that depend on a replaced resource and force this one's replacement. */
  readonly keys: readonly string[];
}

/**
 * The engine's dependents of a delete-before-replace replacement, as pulumi/pulumi
 * pkg/resource/deploy/step_generator.go calculateDependentReplacements decides them: for each
 * resource replaced with deleteBeforeReplace, walk its transitive dependents in the OLD state's
 * order (graph/dependency_graph.go DependingOn: dependencies and property dependencies, not
 * parents), skipping those registered before it in this run; a custom resource among them is
 * replaced when an input whose property dependencies include a resource already in the replace
 * set, made unknown, makes the provider's Diff ask for a replacement. Those are deleted first
 * (in reverse order), then re-created when the program registers them, whatever their own diff
 * says (continueStepsFromDiff, "re-create replaced resource ... deleted due to dependent DBR").
 *
 * The provider's Diff with an unknown input is the same rule table the mocks use
 * (tests/support/replacementRules.ts) asked with that input and every path under it changed:
 * for pulumi-command that is pulumi-go-provider v1.3.0 infer/resource.go `diff`, where an
 * unknown top-level key is one detailed-diff entry at that key, replaced when the schema marks
 * the key replaceOnChanges (only `triggers`: common/inputs.go, remote/copy.go).
 */
export function dependentReplacements(
  prior: readonly RecordedResource[],
  next: readonly RecordedResource[],
): Map<string, DependentReplacement> {
  const out = new Map<string, DependentReplacement>();
  const priorByKey = new Map(prior.map((r) => [resourceKey(r), r]));
  const nextIndex = new Map(next.map((r, i) => [resourceKey(r), i]));
  const roots = next.filter((r) => r.action === "replace" && r.deleteBeforeReplace && priorByKey.has(resourceKey(r)));
  for (const root of roots) {
    const old = priorByKey.get(resourceKey(root)) as RecordedResource;
    const rootIndex = nextIndex.get(resourceKey(root)) ?? 0;
    const dependentSet = new Set([old.urn]);
    const replaceSet = new Set([old.urn]);
    for (const candidate of prior.slice(prior.indexOf(old) + 1)) {
      const key = resourceKey(candidate);
      // Registered before the root in this run: it no longer depends on it (impossibleDependents).
      if ((nextIndex.get(key) ?? Infinity) < rootIndex) continue;
      const edges = [...candidate.dependencies, ...Object.values(candidate.propertyDependencies).flat()];
      if (!edges.some((u) => dependentSet.has(u))) continue;
      dependentSet.add(candidate.urn);
      if (!candidate.custom) continue; // components are never replaced
      const keys = Object.keys(candidate.inputs).filter((k) =>
        (candidate.propertyDependencies[k] ?? []).some((u) => replaceSet.has(u)),
      );
      if (keys.length === 0) continue;
      const changed = keys.flatMap((k) => pathsUnder(candidate.inputs[k], k));
      if (forcedReplacements(candidate.type, changed, candidate.inputs).length === 0) continue;
      replaceSet.add(candidate.urn);
      if (!out.has(key)) out.set(key, { root: resourceKey(root), keys });
    }
  }
  return out;
}

/**
 * The steps over SSH that `pulumi up` takes going from `prior` to `next`, in the order the
 * engine takes them (phases: see PlannedStep), per host in dependency order, as pulumi-command
 * v1.2.1 runs them:
 * - Which changes replace: the provider's Diff (pulumi-go-provider v1.3.0 infer/resource.go
 *   `diff`) forces a replacement only for a changed TOP-LEVEL key whose schema has
 *   replaceOnChanges (`triggers`, common/inputs.go and remote/copy.go), since it looks the
 *   detailed diff's path up among the schema's input properties; a change inside the array
 *   (`triggers[0]`) is made a replacement by the engine (step_generator.go
 *   applyReplaceOnChanges) from the `replaceOnChanges: ["triggers[*]"]` every @pulumi/command
 *   SDK resource adds (remote/command.js, remote/copyToRemote.js, local/command.js). So any
 *   trigger change replaces, any other change updates: the rule the mocks apply
 *   (replacementRules.ts), which this function reads as the resource's action.
 * - remote/commandController.go: Create runs `create` (nothing without one); Update runs
 *   `update`, or `create` when no `update` is given, whatever input changed; Delete runs
 *   `delete` if given. A replacement creates the new resource and deletes the old one at the
 *   end of the run (step_generator.go: "the delete step is generated later on, after all
 *   creates/updates finish"), or first when deleteBeforeReplace (its own, or as a dependent of
 *   one: dependentReplacements), in reverse dependency order.
 * - remote/copyController.go: Create copies; Update copies only when the source's hash or the
 *   remotePath changed (`needCopy`), so a changed connection alone copies nothing; there is no
 *   Delete. The engine diffs an archive by its hash, which the mocks' JSON does not hold, so a
 *   source whose tree changed under unchanged inputs is an update here.
 * Nothing else runs: a resource the engine leaves as it is runs nothing.
 */
export function updateSteps(prior: StackPlan, next: StackPlan): PlannedStep[] {
  const first: PlannedStep[] = [];
  const apply: PlannedStep[] = [];
  const last: PlannedStep[] = [];
  const pushKey = (p: PlannedPush) => `${p.type}::${p.resource}`;
  const priorPush = new Map(prior.hosts.flatMap((h) => h.pushes.map((p) => [pushKey(p), p] as const)));
  const nextResource = new Map(next.resources.map((r) => [resourceKey(r), r]));
  const dependents = dependentReplacements(prior.resources, next.resources);
  for (const host of next.hosts) {
    for (const push of host.pushes) {
      const old = priorPush.get(pushKey(push));
      const dependent = old ? dependents.get(pushKey(push)) : undefined;
      const action = !old ? "create" : dependent ? "replace" : push.action;
      const because = dependent
        ? `replaced with ${dependent.root} (delete-before-replace): its ${dependent.keys.join(", ")} depend on what it replaces`
        : undefined;
      const step = (s: Omit<PlannedStep, "host" | "because">): PlannedStep => ({
        host: host.name,
        ...s,
        ...(because ? { because } : {}),
      });
      if (push.type === REMOTE_COMMAND) {
        if (action === "create" || action === "replace") {
          if (action === "replace" && old?.type === REMOTE_COMMAND && old.delete !== undefined) {
            const deleteFirst =
              dependent !== undefined || nextResource.get(pushKey(push))?.deleteBeforeReplace === true;
            const phase = deleteFirst ? "delete-first" : "delete-last";
            (deleteFirst ? first : last).push(step({ push: old, action, runs: "delete", phase }));
          }
          if (push.create !== undefined) apply.push(step({ push, action, runs: "create", phase: "apply" }));
        } else if (action === "update") {
          if (push.update !== undefined) apply.push(step({ push, action, runs: "update", phase: "apply" }));
          else if (push.create !== undefined) apply.push(step({ push, action, runs: "create", phase: "apply" }));
        }
        continue;
      }
      const oldCopy = old?.type === COPY_TO_REMOTE ? old : undefined;
      const needCopy = !oldCopy || oldCopy.source.hash !== push.source.hash || oldCopy.remotePath !== push.remotePath;
      if (action === "create" || action === "replace") apply.push(step({ push, action, runs: "copy", phase: "apply" }));
      else if (needCopy) apply.push(step({ push, action: "update", runs: "copy", phase: "apply" }));
    }
  }
  const nextKeys = new Set(next.hosts.flatMap((h) => h.pushes.map(pushKey)));
  for (const host of prior.hosts) {
    for (const push of host.pushes) {
      if (nextKeys.has(pushKey(push))) continue;
      if (push.type === REMOTE_COMMAND && push.delete !== undefined) {
        // Gone from the program: deleted at the end, or first when a delete-before-replace takes it.
        const phase = dependents.has(pushKey(push)) ? "delete-first" : "delete-last";
        (phase === "delete-first" ? first : last).push({
          host: host.name,
          push,
          action: "delete",
          runs: "delete",
          phase,
        });
      }
    }
  }
  // Deletes go in reverse dependency order (step_generator.go ScheduleDeletes, and the loop
  // over toReplace "in reverse" for delete-before-replace): dependents before what they need,
  // that is, later in the old state's order first.
  const priorIndex = new Map(prior.resources.map((r, i) => [resourceKey(r), i]));
  const reverseOrder = (steps: PlannedStep[]) =>
    [...steps]
      .reverse()
      .sort((a, b) => (priorIndex.get(pushKey(b.push)) ?? 0) - (priorIndex.get(pushKey(a.push)) ?? 0));
  return [...reverseOrder(first), ...apply, ...reverseOrder(last)];
}

/**
 * The stack the engine records after an update in which the resources of `notApplied`
 * ("type::name") failed or never ran: their PRIOR records stay (none for a resource that was
 * to be created), as do those of every resource that depends on one of them in `next`
 * (dependencies and property dependencies, transitively). A failing pulumi-command script is a
 * plain error (v1.2.1 remote/commandOutputs.go run), for which pulumi-go-provider v1.3.0
 * infer/resource.go Create/Update return no partial state (only a ResourceInitFailedError
 * does), so the engine keeps the old state, or none. It runs no step of a dependent of a
 * failed step (pulumi/pulumi pkg/resource/deploy/step_executor.go executeChain and
 * cancelDueToError: a failed step ends its chain and, without --continue-on-error, cancels
 * every step not yet started; with it, deployment_executor.go handleSingleEvent skips the steps
 * that depend on errored ones). Everything else is recorded as `next` declares it. So the next
 * `pulumi up` (`updateSteps(recorded, render against recorded)`) runs the failed steps again.
 *
 * Not modelled: the old copy of a create-first replacement whose late delete failed stays in
 * the engine's state as pending deletion; here the new record replaces it (no push of this
 * program has a delete script).
 */
export function recordedState(prior: StackPlan, next: StackPlan, notApplied: ReadonlySet<string>): StackPlan {
  const kept = new Set(notApplied);
  const urnKeys = new Map(next.resources.map((r) => [r.urn, resourceKey(r)]));
  for (let grew = true; grew;) {
    grew = false;
    for (const r of next.resources) {
      const key = resourceKey(r);
      if (kept.has(key)) continue;
      const edges = [...r.dependencies, ...Object.values(r.propertyDependencies).flat()];
      if (edges.some((u) => kept.has(urnKeys.get(u) ?? ""))) {
        kept.add(key);
        grew = true;
      }
    }
  }
  const priorResources = new Map(prior.resources.map((r) => [resourceKey(r), r]));
  const nextKeys = new Set(next.resources.map(resourceKey));
  const resources = [
    ...next.resources.flatMap((r) => {
      const key = resourceKey(r);
      if (!kept.has(key)) return [r];
      const old = priorResources.get(key);
      return old ? [old] : [];
    }),
    // A removed resource whose delete failed stays in the state.
    ...prior.resources.filter((r) => !nextKeys.has(resourceKey(r)) && kept.has(resourceKey(r))),
  ];
  const pushKey = (p: PlannedPush) => `${p.type}::${p.resource}`;
  const priorHosts = new Map(prior.hosts.map((h) => [h.name, h]));
  const hosts = next.hosts.map((h): PlannedHost => {
    const before = priorHosts.get(h.name)?.pushes ?? [];
    const oldPush = new Map(before.map((p) => [pushKey(p), p]));
    const names = new Set(h.pushes.map(pushKey));
    const pushes = [
      ...h.pushes.flatMap((p) => {
        if (!kept.has(pushKey(p))) return [p];
        const old = oldPush.get(pushKey(p));
        return old ? [old] : [];
      }),
      ...before.filter((p) => !names.has(pushKey(p)) && kept.has(pushKey(p))),
    ];
    return { ...h, pushes };
  });
  const priorLocal = new Map(prior.localCommands.map((c) => [c.resource, c]));
  const localCommands = next.localCommands.flatMap((c) => {
    if (!kept.has(`${LOCAL_COMMAND}::${c.resource}`)) return [c];
    const old = priorLocal.get(c.resource);
    return old ? [old] : [];
  });
  return { ...next, hosts, localCommands, resources };
}

/** The steps of a first `pulumi up` (or a replaced host): every push of the host, created. */
export function createSteps(host: PlannedHost): PlannedStep[] {
  return host.pushes.flatMap((push): PlannedStep[] => {
    if (push.type === COPY_TO_REMOTE)
      return [{ host: host.name, push, action: "create", runs: "copy", phase: "apply" }];
    return push.create === undefined
      ? []
      : [{ host: host.name, push, action: "create", runs: "create", phase: "apply" }];
  });
}
