/**
 * A fleet run: bridge, package proxy, base image, then one container per host of the address
 * plan with its NoCloud seed and data volume, each waited on until ready. Everything made is
 * registered with the run's Cleanup as soon as it exists.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { hasDataVolume } from "../../facts/topology";
import type { HostSlot } from "../../facts/addressing";
import { renderUserData } from "../../templates/host/userData";
import { startAptProxy, type AptProxy } from "./aptProxy";
import { ensureBaseImage, type BaseImage } from "./baseImage";
import { createBridge } from "./bridge";
import type { Cleanup } from "./cleanup";
import { boot, prepareRoot, type Container } from "./container";
import { which } from "./exec";
import { acquireFleetLock } from "./lock";
import { BRIDGE_ADDRESS, BRIDGE_NAME, FLEET_PLAN, LOGIN_USER, SUBNET_PREFIX } from "./layout";
import { waitForCloudInit, waitForSsh, waitForSystemd, type Readiness } from "./readiness";
import { writeSeed } from "./seed";
import { enforceSecurityGroups } from "./securityGroups";
import { makeKeyPair, type KeyPair } from "./sshKey";
import { createLoopVolume, writeDiskLinks, type LoopVolume } from "./volume";

const TOOLS = [
  "systemd-nspawn",
  "debootstrap",
  "apt-cacher-ng",
  "losetup",
  "nsenter",
  "ssh",
  "ssh-keygen",
  "ip",
  "blkid",
  "nft",
];

/** Fails early, saying why and how, where the fleet cannot run. */
export function checkPrerequisites(uid: number | undefined = process.getuid?.()): void {
  if (uid !== 0) {
    throw new Error(
      `the fleet needs root (systemd-nspawn, loop devices, a bridge); running as uid ${uid ?? "unknown"}`,
    );
  }
  const missing = TOOLS.filter((t) => !which(t));
  if (missing.length > 0) {
    throw new Error(
      `the fleet needs ${missing.join(", ")}: apt-get install systemd-container debootstrap apt-cacher-ng openssh-client nftables`,
    );
  }
}

export interface FleetHost {
  readonly slot: HostSlot;
  readonly container: Container;
  readonly volume?: LoopVolume;
  readonly instanceId: string;
  readonly readiness: Readiness;
  /** The known_hosts file holding the host key read from the host (ssh trusts only that). */
  readonly knownHosts: string;
  /** From nspawn's start to ssh answering, in seconds. */
  readonly bootToSshSeconds: number;
  /** From nspawn's start to cloud-init's end (the bootstrap included), in seconds. */
  readonly bootToCloudInitSeconds: number;
}

/** What one host is booted with: what EC2 would hand the instance. */
export interface HostInput {
  /** The user data, byte for byte. */
  readonly userData: string;
  /** The key pair's public key (EC2's metadata gives it to cloud-init). */
  readonly publicKey: string;
  /** The data volume (its id names the device at the Nitro by-id path). */
  readonly dataVolume?: { readonly volumeId: string; readonly sizeGb: number };
  /** Fleet-only files written into the host's root before it boots: path inside -> content. */
  readonly fleetFiles?: Readonly<Record<string, string>>;
}

/** What exists before any host boots: the run directory, bridge, proxy, image and key. */
export interface FleetBase {
  readonly runDir: string;
  readonly image: BaseImage;
  readonly imageSeconds: number;
  readonly proxy: AptProxy;
  readonly key: KeyPair;
  readonly slots: readonly HostSlot[];
}

export interface Fleet extends FleetBase {
  readonly hosts: readonly FleetHost[];
}

export interface FleetOptions {
  /** Host names of the plan to boot (web-1, prometheus, ...); all of them by default. */
  readonly hosts?: readonly string[];
  readonly log?: (line: string) => void;
  /** Seconds to wait for each host's cloud-init (the bootstrap runs inside it). */
  readonly cloudInitTimeoutSeconds?: number;
  /**
   * What each host boots with, decided once the base exists (provision.ts takes it from the
   * stack). Without it: the role's user data as rendered by default, a fresh volume id, the
   * run's key.
   */
  readonly inputs?: (base: FleetBase) => Promise<(slot: HostSlot) => HostInput>;
}

const hex = (bytes: number) => randomBytes(bytes).toString("hex");
/** EC2-shaped ids: 17 hex digits. */
export const newInstanceId = () => `i-${hex(9).slice(0, 17)}`;
export const newVolumeId = () => `vol-${hex(9).slice(0, 17)}`;

export const machineName = (slot: HostSlot) => `titan-${slot.name}`;

/** Without a stack: the role's default user data, a fresh volume of 1 GiB, the run's key. */
export function defaultInput(base: FleetBase, slot: HostSlot): HostInput {
  const volumeId = hasDataVolume(slot.role) ? newVolumeId() : undefined;
  return {
    userData: renderUserData({ role: slot.role, dataVolumeId: volumeId }),
    publicKey: base.key.publicKey,
    dataVolume: volumeId ? { volumeId, sizeGb: 1 } : undefined,
  };
}

export async function startFleet(cleanup: Cleanup, options: FleetOptions = {}): Promise<Fleet> {
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  checkPrerequisites();
  const names = FLEET_PLAN.hosts.map((h) => h.name);
  const unknown = (options.hosts ?? []).filter((h) => !names.includes(h));
  if (unknown.length > 0) throw new Error(`hosts ${unknown.join(", ")}: not in the address plan (${names.join(", ")})`);
  const slots = FLEET_PLAN.hosts.filter((h) => !options.hosts || options.hosts.includes(h.name));

  await acquireFleetLock(cleanup, log);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "titan-fleet-"));
  cleanup.add(`run directory ${runDir}`, () => fs.rmSync(runDir, { recursive: true, force: true }));
  log(`run directory ${runDir}`);
  createBridge(BRIDGE_NAME, BRIDGE_ADDRESS, SUBNET_PREFIX, cleanup);
  const proxy = await startAptProxy(runDir, ["127.0.0.1", BRIDGE_ADDRESS], cleanup);
  log(`apt-cacher-ng pid ${proxy.pid}`);

  const imageStart = Date.now();
  const image = ensureBaseImage(proxy.url("127.0.0.1"), log);
  const imageSeconds = (Date.now() - imageStart) / 1000;
  log(`image ${image.key}: ${image.built ? "built" : "cached"} in ${imageSeconds.toFixed(1)} s`);

  const key = makeKeyPair(path.join(runDir, "ssh"));
  const base: FleetBase = { runDir, image, imageSeconds, proxy, key, slots };
  const inputOf = options.inputs ? await options.inputs(base) : (slot: HostSlot) => defaultInput(base, slot);
  const timeoutMs = (options.cloudInitTimeoutSeconds ?? 900) * 1000;
  const hosts = await Promise.all(
    slots.map((slot) => startHost(base, slot, inputOf(slot), cleanup, { timeoutMs, log })),
  );
  return { ...base, hosts };
}

export interface StartHostOptions {
  readonly timeoutMs?: number;
  readonly log?: (line: string) => void;
  /** The host's directory under the run's hosts/ (a replaced host gets a fresh one). */
  readonly hostDirName?: string;
  /** A data volume already attached to a loop device (a replaced host keeps its volume). */
  readonly volume?: LoopVolume;
  readonly instanceId?: string;
}

/**
 * Boots one host: its data volume as a loop device at the Nitro by-id path, a fresh overlay
 * root with the NoCloud seed (user data, key, address), then waits for ssh, systemd and
 * cloud-init. Exported so a replaced host (new root and instance id, the same volume) boots
 * the same way.
 */
export async function startHost(
  base: FleetBase,
  slot: HostSlot,
  input: HostInput,
  cleanup: Cleanup,
  options: StartHostOptions = {},
): Promise<FleetHost> {
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const timeoutMs = options.timeoutMs ?? 900_000;
  const { runDir, image, key } = base;
  if (hasDataVolume(slot.role) !== (input.dataVolume !== undefined)) {
    throw new Error(`${slot.name}: role ${slot.role} ${hasDataVolume(slot.role) ? "needs" : "has no"} data volume`);
  }
  const hostDir = path.join(runDir, "hosts", options.hostDirName ?? slot.name);
  const volume =
    options.volume ??
    (input.dataVolume
      ? createLoopVolume(
          path.join(runDir, "volumes"),
          input.dataVolume.volumeId,
          input.dataVolume.sizeGb * 1024,
          cleanup,
        )
      : undefined);
  const diskDir = path.join(runDir, "disks", options.hostDirName ?? slot.name);
  if (volume) writeDiskLinks(diskDir, volume);
  const spec = {
    machine: machineName(slot),
    lowerdir: image.rootfs,
    hostDir,
    bridge: BRIDGE_NAME,
    binds: volume ? [volume.device] : [],
    readOnlyBinds: volume ? { [diskDir]: "/dev/disk" } : {},
  };
  const root = prepareRoot(spec, cleanup);
  const instanceId = options.instanceId ?? newInstanceId();
  writeSeed(root, {
    instanceId,
    hostname: slot.name,
    publicKey: input.publicKey,
    userData: input.userData,
    address: slot.privateIp,
    prefix: SUBNET_PREFIX,
  });
  for (const [inside, content] of Object.entries(input.fleetFiles ?? {})) {
    const file = path.join(root, inside);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
  }
  const started = Date.now();
  const container = await boot(spec, root, cleanup);
  log(`${slot.name}: booted (nspawn pid ${container.nspawnPid}, init pid ${container.leaderPid()})`);
  // Before anything in it listens: the ports only some roles may reach (securityGroups.ts).
  enforceSecurityGroups(slot, FLEET_PLAN, container.leaderPid());
  // sshd answers once cloud-init's init stage made the keys and the user, long before its
  // final stage (the bootstrap) ends.
  const knownHosts = await waitForSsh(container, key, LOGIN_USER, slot.privateIp, 300_000);
  const bootToSshSeconds = (Date.now() - started) / 1000;
  log(`${slot.name}: ssh ${LOGIN_USER}@${slot.privateIp} answers (${bootToSshSeconds.toFixed(1)} s after boot)`);
  // Startup ends with cloud-final, which runs the bootstrap.
  const systemd = await waitForSystemd(container, timeoutMs);
  log(`${slot.name}: systemd ${systemd.state}${systemd.failed.length ? ` (failed: ${systemd.failed.join(" ")})` : ""}`);
  const cloudInit = await waitForCloudInit(container, timeoutMs);
  const bootToCloudInitSeconds = (Date.now() - started) / 1000;
  log(`${slot.name}: cloud-init ${cloudInit.status} (${bootToCloudInitSeconds.toFixed(1)} s after boot)`);
  return {
    slot,
    container,
    volume,
    instanceId,
    knownHosts,
    readiness: {
      systemState: systemd.state,
      failedUnits: systemd.failed,
      cloudInit: cloudInit.status,
      cloudInitDetail: cloudInit.detail,
    },
    bootToSshSeconds,
    bootToCloudInitSeconds,
  };
}
