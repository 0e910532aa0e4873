/**
 * One fleet at a time per machine: the bridge name, its subnet and the proxy port are fixed by
 * the address plan, so a second run would collide with the first. A run takes the lock (a
 * directory, made atomically, holding the owner's pid) and a second one waits for it to be
 * released, or takes it over when its owner is gone (a run killed by SIGKILL).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Cleanup } from "./cleanup";
import { waitFor } from "./exec";

export const LOCK_DIR = process.env.TITAN_FLEET_LOCK ?? "/run/titan-fleet.lock";

const ownerOf = (dir: string): number | undefined => {
  try {
    const pid = Number(fs.readFileSync(path.join(dir, "pid"), "utf8"));
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
};

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
};

/** Tries once; true when this process now holds the lock. */
export function tryLock(dir: string = LOCK_DIR): boolean {
  try {
    fs.mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const owner = ownerOf(dir);
    // A lock without a pid file is being made right now; one whose owner died is stale.
    if (owner === undefined || alive(owner)) return false;
    fs.rmSync(dir, { recursive: true, force: true });
    return tryLock(dir);
  }
  fs.writeFileSync(path.join(dir, "pid"), String(process.pid));
  return true;
}

/** Waits until the lock is free, takes it, and registers its release. */
export async function acquireFleetLock(
  cleanup: Cleanup,
  log: (line: string) => void,
  { dir = LOCK_DIR, timeoutMs = 60 * 60_000 } = {},
): Promise<void> {
  if (!tryLock(dir)) {
    log(`another run (pid ${ownerOf(dir) ?? "?"}) holds ${dir}; waiting for it to end`);
    await waitFor(`the fleet lock ${dir}`, () => (tryLock(dir) ? true : undefined), {
      timeoutMs,
      intervalMs: 1_000,
      why: () => `still held by pid ${ownerOf(dir) ?? "?"}`,
    });
  }
  cleanup.add(`fleet lock ${dir}`, () => {
    if (ownerOf(dir) === process.pid) fs.rmSync(dir, { recursive: true, force: true });
  });
}
