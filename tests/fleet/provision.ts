/**
 * The fleet provisioned by exactly what the program declares: the stand-in vendor repository
 * served on the bridge, the stack rendered under the mocks with the fleet's configuration
 * (stackPlan.ts), each host booted with the stack's user data, key and data volume, and each
 * host's push run over SSH as pulumi-command runs it (push.ts). Then `applyUpdate` plays a
 * `pulumi up` of a configuration change: the mocks decide, as the engine would, which command
 * resources are created, updated or replaced, and exactly those run on the hosts.
 *
 * The one override (issue 10): Prometheus' EC2 discovery endpoint. The program has no
 * configuration for it (templates/prometheus/config.ts takes `ec2Endpoint` as a renderer
 * option only, and tests/e2e/stack.ts renders with it directly), and adding a config key only
 * the fleet uses would put a fleet-only path into production code. So the harness changes the
 * copy it sends, not the program: it renders prometheus.yml with the same renderer and the
 * stack's own context, checks that without the option the result equals the staged file byte
 * for byte, and puts the endpoint version in its place in the copy. Everything else the host
 * receives is the stack's.
 *
 * The second, with metricsStore=amp only (matrix transition "metricsStore amp, then local"): the
 * AMP signing relay's env file (templates/host/ampRelay.ts) names the workspace's remote-write URL,
 * which under the mocks is an aps-workspaces host the fleet cannot reach; the fleet's fake AMP
 * (fakeAmp.ts) takes its place, the same careful way (overrideAmpRelayUrl).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { addressPlan } from "../../facts/addressing";
import { loadConfig } from "../../infra/config";
import { PROMETHEUS_CONFIG_PATH, renderPrometheusFiles } from "../../templates/prometheus/config";
import { AMP_RELAY_ENV_PATH, renderAmpRelayFiles } from "../../templates/host/ampRelay";
import type { TemplateContext } from "../../templates/types";
import { PROJECT } from "../support/mockProgram";
import { key } from "../support/snapshots";
import type { Cleanup } from "./cleanup";
import { inContainer } from "./readiness";
import { startFleet, startHost, type Fleet, type FleetHost, type HostInput } from "./fleet";
import { BRIDGE_ADDRESS, BRIDGE_NAME, LOGIN_USER } from "./layout";
import { copyToRemote, runCommand, sshExec, PushError, type SshResult, type SshTarget } from "./push";
import type { Container } from "./container";
import { startRepoServer, type RepoServer } from "./repoServer";
import {
  COPY_TO_REMOTE,
  createSteps,
  FLEET_SECRET_KEYS,
  fleetConfig,
  planStack,
  recordedState,
  resourceKey,
  updateSteps,
  INSTANCE,
  type PlannedHost,
  type PlannedStep,
  type StackPlan,
} from "./stackPlan";
import { buildStandinRepository, type StandinRepository } from "./standins/repository";
import type { AwsEndpoints, AwsEndpointsArgs } from "./awsEndpoints";
import { learnHostKey } from "./hostKeys";
import { fail, pass, type CheckResult } from "./checks/result";

/** The fake EC2 API and IMDS on the bridge (awsEndpoints.ts), as provisioning starts them. */
export type StartAwsEndpoints = (cleanup: Cleanup, args: AwsEndpointsArgs) => Promise<AwsEndpoints>;

export interface ProvisionedHost extends FleetHost {
  /** The host as the mocked stack declares it. */
  planned: PlannedHost;
  /** Seconds the whole push took (every step, as the engine runs them in order). */
  pushSeconds: number;
  /**
   * Seconds cloud-final (the stage that runs the bootstrap) took, from systemd's timestamps;
   * undefined when it never became active (the cloud-init check reports why).
   */
  bootstrapSeconds: number | undefined;
  /** How to reach it over SSH as the stack's login user. */
  readonly target: SshTarget;
  /** Why its first push failed (the provider would have failed that resource); undefined when it ran. */
  pushError?: string;
  /** The steps of its last whole push (first `up` or replacement). */
  lastPush?: RanStep[];
}

export interface RanStep {
  readonly host: string;
  readonly resource: string;
  /** The engine's action on the resource: create, update, replace or delete. */
  readonly action: string;
  /** What ran: the create/update/delete script, or the copy. */
  readonly runs: string;
  readonly seconds: number;
  readonly stdout?: string;
}

export interface NotRun {
  readonly resource: string;
  readonly action: string;
  readonly why: string;
}

export interface ProvisionedFleet {
  readonly fleet: Fleet;
  /** The stack as last applied (applyUpdate replaces it). */
  plan: StackPlan;
  readonly hosts: ProvisionedHost[];
  /** The stack's configuration as last applied (namespaced keys). */
  config: Record<string, string>;
  readonly repository: StandinRepository;
  readonly repoServer: RepoServer;
  /** The fake EC2 API Prometheus discovers through, when one was started. */
  readonly ec2Endpoint?: string;
  /** The fake EC2 API and IMDS themselves: a replaced host's instances change there too. */
  readonly aws?: AwsEndpoints;
  readonly cleanup: Cleanup;
  readonly log: (line: string) => void;
  /** Each command resource's last output (the provider keeps it in state). */
  readonly outputs: Map<string, { stdout: string; stderr: string }>;
  /** Steps of the first push, per host. */
  readonly firstPush: RanStep[];
  /**
   * The fake AMP's remote-write URL while a transition runs one (fakeAmp.ts): what the relay's
   * env file is pointed at in the copy (overrideAmpRelayUrl). Unset, a metricsStore=amp push fails.
   */
  ampRemoteWriteUrl?: string;
}

export interface ProvisionOptions {
  readonly hosts?: readonly string[];
  readonly log?: (line: string) => void;
  /** Fake EC2 API and IMDS (G's startAwsEndpoints); without it Prometheus keeps the stack's endpoint. */
  readonly awsEndpoints?: StartAwsEndpoints;
  readonly cloudInitTimeoutSeconds?: number;
}

/** Apt reaches the stand-in repository directly: the image's proxy setting covers every http source. */
const standinProxyBypass = (host: string) => ({
  "/etc/apt/apt.conf.d/01titan-fleet-standins": `// Fleet only: the stand-in vendor repository is on the bridge, not behind apt-cacher-ng.\nAcquire::http::Proxy::${host} "DIRECT";\n`,
});

export function targetOf(host: FleetHost, fleet: { key: { privateKeyPath: string } }, user = LOGIN_USER): SshTarget {
  return {
    address: host.slot.privateIp,
    user,
    privateKeyPath: fleet.key.privateKeyPath,
    knownHosts: host.knownHosts,
    connectTimeoutSeconds: 15,
    dialAttempts: 10,
  };
}

/**
 * Seconds cloud-final took: systemd's timestamps of leaving inactive and entering active.
 * A failed cloud-final is not a measurement but a finding, which the cloud-init check reports:
 * undefined then, so provisioning goes on and the run ends with its summary.
 */
async function cloudFinalSeconds(h: FleetHost, log: (line: string) => void): Promise<number | undefined> {
  const r = await inContainer(h.container, [
    "systemctl",
    "show",
    "-p",
    "InactiveExitTimestampMonotonic",
    "-p",
    "ActiveEnterTimestampMonotonic",
    "cloud-final.service",
  ]);
  const v = Object.fromEntries(
    r.out
      .trim()
      .split("\n")
      .map((l) => l.split("=", 2) as [string, string]),
  );
  const start = Number(v.InactiveExitTimestampMonotonic);
  const end = Number(v.ActiveEnterTimestampMonotonic);
  if (!(start > 0 && end >= start)) {
    log(`${h.slot.name}: cloud-final never became active (${r.out.trim().replace(/\n/g, ", ")}): no bootstrap time`);
    return undefined;
  }
  return (end - start) / 1e6;
}

/** The program's template context under `config`: what its push rendered from. */
export function stackContext(plan: StackPlan): TemplateContext {
  const config = loadConfig(
    { get: (k) => plan.config[key(k)], isSecret: (k) => FLEET_SECRET_KEYS.includes(k) },
    { project: PROJECT, stack: plan.stack },
  );
  const bucket = plan.outputs.lokiBucket?.value;
  if (typeof bucket !== "string") throw new Error("the stack exports no lokiBucket name");
  const ctx: TemplateContext = { config, plan: addressPlan(config.vpcCidr, config.webCount), lokiBucket: bucket };
  if (config.metricsStore !== "amp") return ctx;
  // With amp the renderers also get the workspace's endpoints (infra/stack.ts passes the same
  // values to the pushes and exports them as metricsWorkspace).
  const ws = plan.outputs.metricsWorkspace?.value as Record<string, unknown> | undefined;
  const { remoteWriteUrl, queryUrl, region } = ws ?? {};
  if (typeof remoteWriteUrl !== "string" || typeof queryUrl !== "string" || typeof region !== "string") {
    throw new Error(
      `metricsStore is amp but the stack's metricsWorkspace output ${JSON.stringify(ws)} has no remoteWriteUrl, queryUrl and region`,
    );
  }
  return { ...ctx, amp: { remoteWriteUrl, queryUrl, region } };
}

/** The one staged tree of a copy's mirror (the titan-staging directory's only entry). */
function stagedRoot(mirror: string): string {
  const names = fs.readdirSync(mirror);
  if (names.length !== 1) throw new Error(`${mirror}: expected one staged tree, found ${names.join(", ") || "none"}`);
  return path.join(mirror, names[0]);
}

/**
 * Replaces prometheus.yml in a staged tree (`mirror`, the titan-staging directory) with the
 * renderer's output for `ec2Endpoint`, after checking the staged one is the renderer's output
 * without it (so the only difference is the endpoint).
 */
export function overrideEc2Endpoint(mirror: string, ctx: TemplateContext, ec2Endpoint: string): string {
  const render = (o: { ec2Endpoint?: string }) =>
    renderPrometheusFiles(ctx, o).find((f) => f.path === PROMETHEUS_CONFIG_PATH)?.content;
  return replaceRendered(mirror, PROMETHEUS_CONFIG_PATH, render({}), render({ ec2Endpoint }), {
    renderer: "renderPrometheusFiles",
    what: "the endpoint",
  });
}

/**
 * Writes `overridden` over the staged `target` once the staged file is byte for byte `asRendered`
 * (the renderer's output for the stack's own context), so an override changes only what it names.
 */
function replaceRendered(
  mirror: string,
  target: string,
  asRendered: string | undefined,
  overridden: string | undefined,
  names: { readonly renderer: string; readonly what: string },
): string {
  const file = path.join(stagedRoot(mirror), target);
  if (
    asRendered === undefined ||
    overridden === undefined ||
    !fs.existsSync(file) ||
    fs.readFileSync(file, "utf8") !== asRendered
  ) {
    throw new Error(
      `${file}: missing or not ${names.renderer}' output for the stack's context; the override would change more than ${names.what}`,
    );
  }
  fs.writeFileSync(file, overridden);
  return file;
}

/**
 * Replaces the AMP relay's env file in a staged tree with the renderer's output for a workspace
 * whose remote-write URL is `remoteWriteUrl` (the fake AMP's), after checking the staged one is
 * the renderer's output for the stack's own context (so the only difference is that URL).
 */
export function overrideAmpRelayUrl(mirror: string, ctx: TemplateContext, remoteWriteUrl: string): string {
  if (!ctx.amp)
    throw new Error(`${AMP_RELAY_ENV_PATH}: the stack's context has no AMP workspace (metricsStore is not amp)`);
  const render = (c: TemplateContext) => renderAmpRelayFiles(c).find((f) => f.path === AMP_RELAY_ENV_PATH)?.content;
  return replaceRendered(
    mirror,
    AMP_RELAY_ENV_PATH,
    render(ctx),
    render({ ...ctx, amp: { ...ctx.amp, remoteWriteUrl } }),
    {
      renderer: "renderAmpRelayFiles",
      what: "the URL",
    },
  );
}

/**
 * What the fleet changes in the Prometheus host's staged copy (both overrides above), or
 * undefined for a host whose copy it sends as rendered.
 */
export function stagedOverride(
  pf: Pick<ProvisionedFleet, "plan" | "ec2Endpoint" | "ampRemoteWriteUrl">,
  role: string,
): ((mirror: string) => void) | undefined {
  if (role !== "prometheus") return undefined;
  const ctx = stackContext(pf.plan);
  const amp = ctx.config.metricsStore === "amp";
  if (!pf.ec2Endpoint && !amp) return undefined;
  return (mirror) => {
    if (pf.ec2Endpoint) overrideEc2Endpoint(mirror, ctx, pf.ec2Endpoint);
    if (!amp) return;
    if (!pf.ampRemoteWriteUrl) {
      throw new Error("metricsStore is amp but no fake AMP runs: its workspace URL is not reachable from the fleet");
    }
    overrideAmpRelayUrl(mirror, ctx, pf.ampRemoteWriteUrl);
  };
}

let copySeq = 0;

async function runSteps(
  pf: ProvisionedFleet,
  host: ProvisionedHost,
  steps: readonly PlannedStep[],
): Promise<RanStep[]> {
  const ran: RanStep[] = [];
  for (const step of steps) {
    const push = step.push;
    // pulumi-command accepts any host key without one (remote/connection.go): every push pins it.
    if (pf.aws && !push.connection.hostKey) {
      throw new PushError(`${push.resource}: its connection has no hostKey, so any host would be trusted`);
    }
    // The fleet reaches a host at its private address; the engine dials the connection's host, which
    // must be where EC2 says the instance is now (after a stop and start too), or the push would
    // go nowhere until someone ran a refresh.
    const dialProblem = pf.aws ? dialsInstance(push.connection.host, pf.aws.publicIpOf(host.instanceId)) : undefined;
    if (dialProblem) throw new PushError(`${push.resource}: ${dialProblem}`);
    if (push.connection.user !== host.target.user) {
      throw new PushError(
        `${push.resource}: connects as ${push.connection.user}, the image's login user is ${host.target.user}`,
      );
    }
    if (push.type === COPY_TO_REMOTE) {
      const mirrorDir = path.join(pf.fleet.runDir, "push", host.slot.name, String(++copySeq));
      const override = stagedOverride(pf, host.slot.role);
      const r = await copyToRemote(
        host.target,
        push.source.absolute,
        push.source.path,
        push.remotePath,
        mirrorDir,
        override,
      );
      ran.push({
        host: host.slot.name,
        resource: push.resource,
        action: step.action,
        runs: "copy",
        seconds: r.seconds,
      });
    } else {
      const which = step.runs as "create" | "update" | "delete";
      const previous = step.action === "update" ? pf.outputs.get(push.resource) : undefined;
      const r = await runCommand(host.target, push, which, previous);
      for (const w of r.warnings) pf.log(`${host.slot.name}: ${push.resource}: warning: ${w}`);
      if (which !== "delete") pf.outputs.set(push.resource, { stdout: r.stdout, stderr: r.stderr });
      ran.push({
        host: host.slot.name,
        resource: push.resource,
        action: step.action,
        runs: which,
        seconds: r.seconds,
        stdout: r.stdout,
      });
    }
    pf.log(`${host.slot.name}: ${push.resource}: ${step.action} (${step.runs}) done`);
  }
  return ran;
}

/** Boots the hosts as the stack declares them and runs each host's push over SSH. */
export async function provisionFleet(cleanup: Cleanup, options: ProvisionOptions = {}): Promise<ProvisionedFleet> {
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  let plan: StackPlan | undefined;
  let config: Record<string, string> = {};
  let repository: StandinRepository | undefined;
  let repoServer: RepoServer | undefined;

  const fleet = await startFleet(cleanup, {
    hosts: options.hosts,
    log,
    cloudInitTimeoutSeconds: options.cloudInitTimeoutSeconds,
    inputs: async (base) => {
      const repoDir = path.join(base.runDir, "standin-repo");
      fs.mkdirSync(repoDir, { recursive: true });
      repoServer = await startRepoServer(repoDir, BRIDGE_ADDRESS, cleanup);
      const started = Date.now();
      repository = buildStandinRepository(repoDir, { uri: repoServer.url });
      log(
        `stand-in repository ${repository.uri} (${repository.keyFingerprint}) built in ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      config = fleetConfig({
        publicKey: base.key.publicKey,
        privateKey: fs.readFileSync(base.key.privateKeyPath, "utf8"),
        vendorAptRepository: {
          uri: repository.uri,
          keyUrl: repository.keyUrl,
          keyFingerprint: repository.keyFingerprint,
          suite: repository.suite,
          components: [...repository.components],
        },
      });
      const planStarted = Date.now();
      plan = await planStack(config);
      log(`stack rendered under the mocks in ${((Date.now() - planStarted) / 1000).toFixed(1)} s`);
      const runKey = fs.readFileSync(base.key.privateKeyPath, "utf8");
      const byName = new Map(plan.hosts.map((h) => [h.name, h]));
      return (slot): HostInput => {
        const planned = byName.get(slot.name);
        if (!planned) throw new Error(`the stack declares no instance for ${slot.name}`);
        if (planned.publicKey.trim() !== base.key.publicKey.trim()) {
          throw new Error(`${slot.name}: the stack's key pair is not the run's key`);
        }
        for (const p of planned.pushes) {
          if (p.connection.privateKey !== runKey)
            throw new Error(`${p.resource}: connects with a key that is not the run's`);
        }
        return {
          userData: planned.userData,
          publicKey: planned.publicKey,
          dataVolume: planned.dataVolume,
          fleetFiles: standinProxyBypass(BRIDGE_ADDRESS),
        };
      };
    },
  });
  if (!plan || !repository || !repoServer) throw new Error("the fleet booted without a stack plan");
  const thePlan: StackPlan = plan;

  const hosts: ProvisionedHost[] = await Promise.all(
    fleet.hosts.map(async (h) => ({
      ...h,
      planned: thePlan.hosts.find((p) => p.name === h.slot.name) as PlannedHost,
      pushSeconds: 0,
      bootstrapSeconds: await cloudFinalSeconds(h, log),
      target: targetOf(h, fleet),
    })),
  );

  let aws: AwsEndpoints | undefined;
  if (options.awsEndpoints) {
    const ctx = stackContext(thePlan);
    aws = await options.awsEndpoints(cleanup, {
      bridge: BRIDGE_NAME,
      bridgeAddress: BRIDGE_ADDRESS,
      instances: hosts.map((h) => ({
        instanceId: h.instanceId,
        privateIp: h.slot.privateIp,
        tags: { ...h.planned.tags },
        // Credentials only where the stack gives the instance a profile, as on EC2.
        roleName: h.planned.instanceRole ?? null,
        imageId: imageOf(thePlan, h.slot.privateIp),
        // The stack associates an Elastic IP with every host (infra/host.ts): what pushes dial.
        elasticIp: h.planned.publicIp,
      })),
      region: ctx.config.region,
    });
    log(`fake EC2 API at ${aws.ec2Endpoint}`);
    // Every push pins the host key the program's host-key command reads from the console.
    const api = aws;
    const pinned = await Promise.all(hosts.map((h) => learnHostKey(thePlan, h, h.target, api, fleet.runDir, log)));
    hosts.forEach((h, i) => hosts.splice(i, 1, { ...h, target: pinned[i] }));
  }

  const pf: ProvisionedFleet = {
    fleet,
    plan: thePlan,
    hosts,
    config,
    repository,
    repoServer,
    ec2Endpoint: aws?.ec2Endpoint,
    aws,
    cleanup,
    log,
    outputs: new Map(),
    firstPush: [],
  };
  // One host's failed push fails its resources, not the run: the others still get theirs
  // (the engine also carries on with what does not depend on a failed resource), and the
  // checks report what is missing.
  const pushed = await Promise.all(hosts.map((h) => pushRecorded(pf, h.slot.name)));
  pf.firstPush.push(...pushed.flat());
  return pf;
}

const hostNamed = (pf: ProvisionedFleet, name: string): ProvisionedHost => {
  const h = pf.hosts.find((x) => x.slot.name === name);
  if (!h) throw new Error(`host ${name}: not in this fleet (${pf.hosts.map((x) => x.slot.name).join(", ")})`);
  return h;
};

/** Runs a host's whole push as a first `pulumi up` (or a replaced instance) does; sets its pushSeconds. */
export async function pushHost(pf: ProvisionedFleet, name: string): Promise<RanStep[]> {
  const host = hostNamed(pf, name);
  const started = Date.now();
  const ran = await runSteps(pf, host, createSteps(host.planned));
  host.lastPush = ran;
  host.pushSeconds = (Date.now() - started) / 1000;
  host.pushError = undefined;
  pf.log(`${name}: push done in ${host.pushSeconds.toFixed(1)} s`);
  return ran;
}

/**
 * A host's whole push with its failure recorded on the host (`pushError`), not thrown: as the
 * engine records a failed resource and goes on. The first `up` and a replaced instance both push
 * this way, so a failed push reaches the host's "push over SSH" check (pushCheck) instead of
 * ending the step that asked for it with an error no check names.
 */
export async function pushRecorded(pf: ProvisionedFleet, name: string): Promise<RanStep[]> {
  try {
    return await pushHost(pf, name);
  } catch (err) {
    const h = hostNamed(pf, name);
    h.pushError = (err as Error).message;
    pf.log(`${name}: push FAILED: ${h.pushError}`);
    return [];
  }
}

/** The "push over SSH" check of a host's last whole push (`label`: e.g. "replaced (i-…)"). */
export function pushCheck(
  h: Pick<ProvisionedHost, "pushError" | "pushSeconds"> & {
    readonly slot: { readonly name: string };
    readonly planned: { readonly pushes: readonly unknown[] };
  },
  label?: string,
): CheckResult {
  const name = label ? `${label}: push over SSH` : "push over SSH";
  return h.pushError === undefined
    ? pass(name, h.slot.name, `${h.planned.pushes.length} steps in ${h.pushSeconds.toFixed(1)} s`)
    : fail(name, h.slot.name, h.pushError);
}

export interface UpdateResult {
  /** Every step that ran over SSH, per host in order. */
  readonly ran: RanStep[];
  /** What the engine would run that the fleet does not: local commands, hosts not booted. */
  readonly notRun: NotRun[];
  readonly plan: StackPlan;
  /** Booted hosts whose instance the update replaced (booted again, whole push run). */
  readonly replaced?: readonly string[];
}

/**
 * `pulumi up` of `configChanges` (bare project keys or namespaced ones) against the fleet: the
 * program rendered again under the mocks with the applied stack as its prior state (the mocks
 * decide same/update/replace as the engine would), then exactly the remote command resources
 * the engine would run, run on their hosts. The fleet's config becomes the new one, its plan
 * what the engine records: a failed step's resource, and those after it, keep their prior
 * record (stackPlan.ts recordedState), so the next update runs them again.
 */
export async function applyUpdate(
  pf: ProvisionedFleet,
  configChanges: Record<string, string | null>,
): Promise<UpdateResult> {
  const config = { ...pf.config };
  // null: the key removed from the stack (`pulumi config rm`).
  for (const [k, v] of Object.entries(configChanges)) {
    if (v === null) delete config[key(k)];
    else config[key(k)] = v;
  }
  const next = await planStack(config, { prior: pf.plan.resources });
  const steps = updateSteps(pf.plan, next);
  const notRun: NotRun[] = next.localCommands
    .filter((c) => c.action !== "same")
    .map((c) => ({
      resource: c.resource,
      action: c.action,
      why: "a command:local:Command runs on the deploying machine, not on a host",
    }));
  const booted = new Set(pf.hosts.map((h) => h.slot.name));
  for (const s of steps.filter((x) => !booted.has(x.host))) {
    notRun.push({ resource: s.push.resource, action: s.action, why: `host ${s.host} is not in this fleet run` });
  }
  // Instances the engine replaces (their user data, image or key changed: replacementRules.ts).
  const replaced = new Set(
    next.resources
      .filter((r) => r.type === INSTANCE && r.action === "replace")
      .map((r) => next.hosts.find((h) => h.privateIp === r.inputs.privateIp)?.name)
      .filter((n): n is string => n !== undefined),
  );
  for (const name of [...replaced].filter((n) => !booted.has(n))) {
    notRun.push({ resource: name, action: "replace", why: `host ${name} is not in this fleet run` });
  }
  // The stack as it was: what a failed step's resource keeps (recordedState, below).
  const prior = pf.plan;
  pf.plan = next;
  pf.config = config;
  // One step at a time, so the one that fails is known: it and the host's steps after it (the
  // engine runs nothing that depends on a failed step) keep their prior record, and the next
  // update runs them again. Other hosts go on; the first failure is thrown once all are done.
  const notApplied = new Set<string>();
  const failures: unknown[] = [];
  const runRecorded = async (h: ProvisionedHost, mine: readonly PlannedStep[]): Promise<RanStep[]> => {
    const ran: RanStep[] = [];
    for (const [i, step] of mine.entries()) {
      try {
        ran.push(...(await runSteps(pf, h, [step])));
      } catch (err) {
        failures.push(err);
        for (const s of mine.slice(i)) notApplied.add(resourceKey({ type: s.push.type, name: s.push.resource }));
        break;
      }
    }
    return ran;
  };
  for (const h of pf.hosts) h.planned = next.hosts.find((p) => p.name === h.slot.name) as PlannedHost;
  const perHost = await Promise.all(
    pf.hosts.map(async (h) => {
      const name = h.slot.name;
      if (!replaced.has(name))
        return runRecorded(
          h,
          steps.filter((s) => s.host === name),
        );
      // The engine deletes the instance first (infra/host.ts deleteBeforeReplace), creates it
      // with the new inputs, then every push of the host runs on it: each triggers on the
      // instance id, so the update's own steps for this host are exactly that whole push.
      const fresh = await replaceHost(pf, name, ++replacementCount);
      // A failed push is recorded on the host for its check (pushRecorded), not thrown: none of
      // its pushes is recorded as applied, so the next update pushes it again.
      if (fresh.pushError !== undefined) {
        for (const p of fresh.planned.pushes) notApplied.add(resourceKey({ type: p.type, name: p.resource }));
      }
      return (fresh.lastPush ?? []).map((r) => ({ ...r, action: "replace" }));
    }),
  );
  pf.plan = recordedState(prior, next, notApplied);
  if (failures.length > 0) throw failures[0];
  return { ran: perHost.flat(), notRun, plan: next, replaced: [...replaced].filter((n) => booted.has(n)) };
}

/** Replaces the fleet's record of a host's container (after a reboot, nspawn is a new one). */
export function setContainer(pf: ProvisionedFleet, name: string, container: Container): void {
  const i = pf.hosts.findIndex((x) => x.slot.name === name);
  if (i >= 0) pf.hosts[i] = { ...pf.hosts[i], container };
}

/** Why a push dialling `host` would not reach an instance EC2 lists at `address`; undefined when it would. */
export function dialsInstance(host: string, address: string | undefined): string | undefined {
  if (address === undefined) return `dials ${host}, but EC2 gives the instance no public address`;
  return host === address ? undefined : `dials ${host}, but EC2 gives the instance ${address} now`;
}

/** The `ami` the stack gives the instance at `privateIp`: what EC2 launches it from. */
export function imageOf(plan: StackPlan, privateIp: string): string {
  const inst = plan.resources.find((r) => r.type === INSTANCE && r.inputs.privateIp === privateIp);
  const ami = inst?.inputs.ami;
  if (typeof ami !== "string") throw new Error(`no instance at ${privateIp} with an ami in the plan`);
  return ami;
}

/** Tells replaced roots apart (their host directories are named <host>.<n>). */
let replacementCount = 100;

/** What a replaced instance gets: a fresh root and instance id, the same volume, the stack's user data, then its whole push. */
export async function replaceHost(pf: ProvisionedFleet, name: string, generation: number): Promise<ProvisionedHost> {
  const old = hostNamed(pf, name);
  // deleteBeforeReplace (infra/host.ts): the old instance goes first, its private IP is reused.
  await old.container.stop();
  pf.aws?.setState(old.instanceId, "terminated");
  fs.rmSync(old.knownHosts, { force: true });
  const fresh = await startHost(
    pf.fleet,
    old.slot,
    {
      userData: old.planned.userData,
      publicKey: old.planned.publicKey,
      dataVolume: old.planned.dataVolume,
      fleetFiles: standinProxyBypass(BRIDGE_ADDRESS),
    },
    pf.cleanup,
    { log: pf.log, volume: old.volume, hostDirName: `${name}.${generation}` },
  );
  const replaced: ProvisionedHost = {
    ...fresh,
    planned: old.planned,
    pushSeconds: 0,
    bootstrapSeconds: await cloudFinalSeconds(fresh, pf.log),
    target: targetOf(fresh, pf.fleet),
  };
  pf.hosts[pf.hosts.indexOf(old)] = replaced;
  pf.aws?.addInstance({
    instanceId: replaced.instanceId,
    privateIp: replaced.slot.privateIp,
    tags: { ...old.planned.tags },
    roleName: old.planned.instanceRole ?? null,
    // The image the program resolved in the run that replaced it (the instance's `ami`).
    imageId: imageOf(pf.plan, old.slot.privateIp),
    elasticIp: old.planned.publicIp,
  });
  // A replaced instance has a new host key: its host-key command runs again (trigger: instance id).
  if (pf.aws) {
    const target = await learnHostKey(pf.plan, replaced, replaced.target, pf.aws, pf.fleet.runDir, pf.log);
    pf.hosts[pf.hosts.indexOf(replaced)] = { ...replaced, target };
  }
  // Its failure is recorded on the host (pushError) for its check, not thrown.
  await pushRecorded(pf, name);
  return hostNamed(pf, name);
}

/** Runs `command` on a host as the login user over SSH (the push's own client and key). */
export function sshRun(host: ProvisionedHost, command: string, options: { stdin?: string } = {}): Promise<SshResult> {
  return sshExec(host.target, command, { stdin: options.stdin });
}
