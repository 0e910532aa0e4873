/**
 * A data volume: a sparse file on a loop device, shown inside a host at the by-id path the
 * bootstrap waits for on Nitro, where udev names an EBS volume's NVMe device after its serial
 * (the volume id without its dash; templates/host/bootstrap.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Cleanup } from "./cleanup";
import { run } from "./exec";

export interface LoopVolume {
  readonly volumeId: string;
  readonly file: string;
  /** The loop device on the host, e.g. /dev/loop3. */
  readonly device: string;
}

export const VOLUME_ID = /^vol-[0-9a-f]{17}$/;

/** The name udev gives the volume's device on a Nitro instance. */
export const nitroById = (volumeId: string): string => `nvme-Amazon_Elastic_Block_Store_${volumeId.replace("-", "")}`;

export function createLoopVolume(dir: string, volumeId: string, sizeMiB: number, cleanup: Cleanup): LoopVolume {
  if (!VOLUME_ID.test(volumeId)) throw new Error(`volume id ${volumeId}: expected vol- and 17 hex digits`);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${volumeId}.img`);
  if (!fs.existsSync(file)) {
    // Sparse: a gigabyte costs nothing until the host writes to it.
    fs.writeFileSync(file, "");
    fs.truncateSync(file, sizeMiB * 1024 * 1024);
  }
  const device = run("/usr/sbin/losetup", ["--find", "--show", file]).trim();
  if (!/^\/dev\/loop\d+$/.test(device)) throw new Error(`losetup gave ${JSON.stringify(device)}, expected /dev/loopN`);
  cleanup.add(`loop device ${device} (${file})`, () => void run("/usr/sbin/losetup", ["--detach", device]));
  return { volumeId, file, device };
}

/**
 * The volume's device without its medium (the node stays, bound into the host; it reads as
 * empty), as an EBS device that has not appeared yet: nothing can mount it until attachLoop.
 */
export function detachLoop(volume: LoopVolume): void {
  run("/usr/sbin/losetup", ["--detach", volume.device]);
}

/** The volume's file on the same device node again (the cleanup's detach still applies). */
export function attachLoop(volume: LoopVolume): void {
  run("/usr/sbin/losetup", [volume.device, volume.file]);
}

/** Loop devices still attached to `file` (none once the run is cleaned up). */
export const loopDevicesOf = (file: string): string[] =>
  run("/usr/sbin/losetup", ["--associated", file, "--noheadings", "--output", "NAME"])
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);

/**
 * The /dev/disk tree a host sees, standing in for udev (which does not run in a container):
 * by-id names the volume by its serial; by-uuid names its filesystem once it has one, as
 * udev's 60-persistent-storage rules do from blkid.
 */
export function writeDiskLinks(diskDir: string, volume: LoopVolume): void {
  fs.rmSync(diskDir, { recursive: true, force: true });
  fs.mkdirSync(path.join(diskDir, "by-id"), { recursive: true });
  fs.symlinkSync(`../../${path.basename(volume.device)}`, path.join(diskDir, "by-id", nitroById(volume.volumeId)));
  const uuid = filesystemUuid(volume.device);
  if (uuid) {
    fs.mkdirSync(path.join(diskDir, "by-uuid"), { recursive: true });
    fs.symlinkSync(`../../${path.basename(volume.device)}`, path.join(diskDir, "by-uuid", uuid));
  }
}

/** The filesystem UUID on `device`, or undefined while it is blank. */
export function filesystemUuid(device: string): string | undefined {
  try {
    return run("/usr/sbin/blkid", ["-s", "UUID", "-o", "value", device]).trim() || undefined;
  } catch {
    return undefined;
  }
}
