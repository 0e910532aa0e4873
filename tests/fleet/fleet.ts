/**
 * A fleet run: bridge, package proxy, base image, then one container per host of the address
 * plan with its NoCloud seed and data volume, each waited on until ready. Everything made is
 * registered with the run's Cleanup as soon as it exists.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { hasDataVolume } from "../../infra/topology";
import type { HostSlot } from "../../infra/addressing";
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
];

/** Fails early, saying why and how, where the fleet cannot run. */
export function checkPrerequisites(): void {
  const uid = process.getuid?.();
  if (uid !== 0) {
    throw new Error(
      `the fleet needs root (systemd-nspawn, loop devices, a bridge); running as uid ${uid ?? "unknown"}`,
    );
  }
  const missing = TOOLS.filter((t) => !which(t));
  if (missing.length > 0) {
    throw new Error(
      `the fleet needs ${missing.join(", ")}: apt-get install systemd-container debootstrap apt-cacher-ng openssh-client`,
    );
  }
}

export interface FleetHost {
  readonly slot: HostSlot;
  readonly container: Container;
  readonly volume?: LoopVolume;
  readonly instanceId: string;
  readonly readiness: Readiness;
  /** From nspawn's start to ssh answering, in seconds. */
  readonly bootToSshSeconds: number;
  /** From nspawn's start to cloud-init's end (the bootstrap included), in seconds. */
  readonly bootToCloudInitSeconds: number;
}

export interface Fleet {
  readonly runDir: string;
  readonly image: BaseImage;
  readonly imageSeconds: number;
  readonly proxy: AptProxy;
  readonly key: KeyPair;
  readonly hosts: readonly FleetHost[];
}

export interface FleetOptions {
  /** Host names of the plan to boot (web-1, prometheus, ...); all of them by default. */
  readonly hosts?: readonly string[];
  readonly log?: (line: string) => void;
  /** Seconds to wait for each host's cloud-init (the bootstrap runs inside it). */
  readonly cloudInitTimeoutSeconds?: number;
}

const hex = (bytes: number) => randomBytes(bytes).toString("hex");
/** EC2-shaped ids: 17 hex digits. */
export const newInstanceId = () => `i-${hex(9).slice(0, 17)}`;
export const newVolumeId = () => `vol-${hex(9).slice(0, 17)}`;

export const machineName = (slot: HostSlot) => `titan-${slot.name}`;

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
  const timeoutMs = (options.cloudInitTimeoutSeconds ?? 900) * 1000;
  const hosts = await Promise.all(slots.map((slot) => startHost(slot, runDir, image, key, cleanup, timeoutMs, log)));
  return { runDir, image, imageSeconds, proxy, key, hosts };
}

async function startHost(
  slot: HostSlot,
  runDir: string,
  image: BaseImage,
  key: KeyPair,
  cleanup: Cleanup,
  timeoutMs: number,
  log: (line: string) => void,
): Promise<FleetHost> {
  const hostDir = path.join(runDir, "hosts", slot.name);
  const volume = hasDataVolume(slot.role)
    ? createLoopVolume(path.join(runDir, "volumes"), newVolumeId(), 1024, cleanup)
    : undefined;
  const diskDir = path.join(runDir, "disks", slot.name);
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
  const instanceId = newInstanceId();
  writeSeed(root, {
    instanceId,
    hostname: slot.name,
    publicKey: key.publicKey,
    userData: renderUserData({ role: slot.role, dataVolumeId: volume?.volumeId }),
    address: slot.privateIp,
    prefix: SUBNET_PREFIX,
  });
  const started = Date.now();
  const container = await boot(spec, root, cleanup);
  log(`${slot.name}: booted (nspawn pid ${container.nspawnPid}, init pid ${container.leaderPid()})`);
  // sshd answers once cloud-init's init stage made the keys and the user, long before its
  // final stage (the bootstrap) ends.
  await waitForSsh(container, key, LOGIN_USER, slot.privateIp, 300_000);
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
