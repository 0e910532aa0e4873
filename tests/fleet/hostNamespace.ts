/**
 * A network namespace that stands in for one planned host, for the fleet boot tests that run a
 * real program (Prometheus, the AMP relay) against the fleet's fakes without booting a container
 * (awsEndpoints.test.ts, ampRemoteWrite.test.ts): on the fleet's bridge through a veth, with the
 * host's private IP and the route to the IMDS every fleet host gets from seed.ts. The bridge and
 * 169.254.169.254 are the fleet's, so the fixture takes the fleet's lock first.
 *
 * It proves the endpoints and a client's path to them, not cloud-init's handling of the route (a
 * fleet run boots real hosts for that).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { projectRoot } from "../../templates/projectFiles";
import type { TemplateContext } from "../../templates/types";
import { IMDS_ADDRESS, startAwsEndpoints, type AwsEndpoints } from "./awsEndpoints";
import { createBridge, linkExists } from "./bridge";
import type { Cleanup } from "./cleanup";
import { run } from "./exec";
import { BRIDGE_ADDRESS, BRIDGE_NAME, SUBNET_PREFIX } from "./layout";
import { acquireFleetLock } from "./lock";
import { newInstanceId } from "./fleet";
import { stackContext } from "./provision";
import { imdsRouteFile } from "./seed";
import { fleetConfig, planStack, type PlannedHost, type StackPlan } from "./stackPlan";

const IP = "/usr/sbin/ip";

export interface HostNamespaceOptions {
  /** The namespace's name (unique to the run: the test's pid in it). */
  readonly ns: string;
  /** The bridge side of the veth; the namespace side is host0, as in a container. */
  readonly veth: string;
  /**
   * The host's private IP, given the subnet's prefix: the kernel picks it as the source toward
   * the bridge, and the IMDS tells instances apart by source address.
   */
  readonly address: string;
  /** More addresses, each a /32 beside it (other planned hosts' services answering in this namespace). */
  readonly extraAddresses?: readonly string[];
}

/** The IMDS route of seed.ts's networkd drop-in, read back from its content. */
export function imdsRoute(): { destination: string; gateway: string } {
  const route = imdsRouteFile();
  const destination = /^Destination=(\S+)$/m.exec(route)?.[1];
  const gateway = /^Gateway=(\S+)$/m.exec(route)?.[1];
  if (destination !== `${IMDS_ADDRESS}/32` || gateway !== BRIDGE_ADDRESS) {
    throw new Error(
      `seed.ts's IMDS route: Destination=${destination} Gateway=${gateway}, expected ${IMDS_ADDRESS}/32 via ${BRIDGE_ADDRESS}`,
    );
  }
  return { destination, gateway };
}

/**
 * Takes the fleet's lock, creates its bridge and the namespace; everything is removed by `cleanup`
 * (the lock released last, as it was taken first).
 */
export async function hostNamespace(
  cleanup: Cleanup,
  log: (line: string) => void,
  { ns, veth, address, extraAddresses = [] }: HostNamespaceOptions,
): Promise<void> {
  await acquireFleetLock(cleanup, log);
  createBridge(BRIDGE_NAME, BRIDGE_ADDRESS, SUBNET_PREFIX, cleanup);
  run(IP, ["netns", "add", ns]);
  cleanup.add(`network namespace ${ns}`, () => void run(IP, ["netns", "del", ns]));
  // Holding the lock, any veth of this name is a killed run's (its cleanup never ran): without
  // this, every later run fails on "File exists" until someone deletes it by hand.
  if (linkExists(veth)) run(IP, ["link", "del", veth]);
  run(IP, ["link", "add", veth, "type", "veth", "peer", "name", "host0", "netns", ns]);
  // Deleted by name, not left to the namespace's deletion: the kernel frees a namespace (and so
  // this veth) only once nothing refers to it, and connections a test made from inside it can
  // keep it for a while after `ip netns del`, leaving the veth for the next run to trip over.
  cleanup.add(`veth ${veth}`, () => {
    if (linkExists(veth)) run(IP, ["link", "del", veth]);
  });
  run(IP, ["link", "set", veth, "master", BRIDGE_NAME, "up"]);
  run(IP, ["-n", ns, "link", "set", "lo", "up"]);
  run(IP, ["-n", ns, "addr", "add", `${address}/${SUBNET_PREFIX}`, "dev", "host0"]);
  for (const extra of extraAddresses) run(IP, ["-n", ns, "addr", "add", `${extra}/32`, "dev", "host0"]);
  run(IP, ["-n", ns, "link", "set", "host0", "up"]);
  const { destination, gateway } = imdsRoute();
  run(IP, ["-n", ns, "route", "add", destination, "via", gateway, "dev", "host0", "onlink"]);
}

export interface PrometheusStandInOptions {
  /** The stack the plan is made for (its push trees under .titan-push/<stack> are removed after). */
  readonly stack: string;
  /** The test's scratch directory (removed after), where its SSH key is made. */
  readonly tmp: string;
  /** The SSH key's comment. */
  readonly keyComment: string;
  readonly ns: string;
  readonly veth: string;
  /** Give the namespace every other planned host's address too, for targets standing in for them. */
  readonly otherHostsToo?: boolean;
}

export interface PrometheusStandIn {
  readonly plan: StackPlan;
  readonly prom: PlannedHost;
  readonly ctx: TemplateContext;
  /** Each planned host's fake instance id, by host name. */
  readonly instanceIds: ReadonlyMap<string, string>;
  readonly aws: AwsEndpoints;
}

/**
 * What both fleet boot tests that run the real Prometheus in a namespace set up first: root
 * checked, the fleet's stack planned (a fresh SSH key), the Prometheus host's namespace
 * (hostNamespace above), and the fake EC2 API and IMDS listing every planned host as provision.ts
 * lists them (a fresh instance id, the stack's tags, the role of its instance profile where the
 * stack gives it one).
 */
export async function prometheusStandIn(
  cleanup: Cleanup,
  log: (line: string) => void,
  options: PrometheusStandInOptions,
): Promise<PrometheusStandIn> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      `this test needs root (a bridge, a network namespace, 169.254.169.254 on the bridge); uid ${process.getuid?.()}`,
    );
  }
  const { stack, tmp } = options;
  cleanup.add(`directory ${tmp}`, () => fs.rmSync(tmp, { recursive: true, force: true }));
  cleanup.add(`push trees of ${stack}`, () =>
    fs.rmSync(path.join(projectRoot(), ".titan-push", stack), { recursive: true, force: true }),
  );
  const keyFile = path.join(tmp, "id");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", options.keyComment, "-f", keyFile]);
  const plan = await planStack(
    fleetConfig({ publicKey: fs.readFileSync(`${keyFile}.pub`, "utf8"), privateKey: fs.readFileSync(keyFile, "utf8") }),
    { stack },
  );
  const prom = plan.hosts.find((h) => h.role === "prometheus");
  if (!prom) throw new Error("the stack plan has no prometheus host");
  // The Prometheus host's address first, with the subnet's prefix (the source toward the bridge,
  // and so the IMDS knows the caller); the other hosts' addresses are /32s beside it.
  await hostNamespace(cleanup, log, {
    ns: options.ns,
    veth: options.veth,
    address: prom.privateIp,
    extraAddresses: options.otherHostsToo
      ? plan.hosts.filter((h) => h.privateIp !== prom.privateIp).map((h) => h.privateIp)
      : [],
  });
  const ctx = stackContext(plan);
  const instances = plan.hosts.map((h) => ({
    instanceId: newInstanceId(),
    privateIp: h.privateIp,
    tags: { ...h.tags },
    roleName: h.instanceRole ?? null,
  }));
  const aws = await startAwsEndpoints(cleanup, {
    bridge: BRIDGE_NAME,
    bridgeAddress: BRIDGE_ADDRESS,
    instances,
    region: ctx.config.region,
  });
  return { plan, prom, ctx, instanceIds: new Map(plan.hosts.map((h, i) => [h.name, instances[i].instanceId])), aws };
}
