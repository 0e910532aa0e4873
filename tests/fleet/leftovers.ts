/**
 * What a fleet run may leave behind, looked for directly in the kernel's and filesystem's
 * state: the bridge and nspawn's veths, mounts and loop devices under the run directory, the
 * directory itself, and the processes the run started.
 */
import * as fs from "node:fs";
import { run } from "./exec";
import { livingPid } from "./container";
import { BRIDGE_NAME } from "./layout";

export function leftovers(runDir: string, pids: readonly number[]): string[] {
  const found: string[] = [];
  for (const line of run("/usr/sbin/ip", ["-brief", "link"]).split("\n")) {
    const name = line.split(/\s+/)[0].split("@")[0];
    if (name === BRIDGE_NAME || name.startsWith("vb-titan-")) found.push(`interface ${name}`);
  }
  for (const line of fs.readFileSync("/proc/mounts", "utf8").split("\n")) {
    if (line.includes(runDir)) found.push(`mount ${line}`);
  }
  for (const line of run("/usr/sbin/losetup", ["--list", "--noheadings", "--output", "NAME,BACK-FILE"]).split("\n")) {
    if (line.includes(runDir)) found.push(`loop device ${line.trim()}`);
  }
  if (fs.existsSync(runDir)) found.push(`directory ${runDir}`);
  for (const pid of pids) if (livingPid(pid)) found.push(`process ${pid}`);
  return found;
}

/** The run directory and pids a run announced in its log lines. */
export function announced(lines: readonly string[]): { runDir?: string; pids: number[] } {
  const text = lines.join("\n");
  const runDir = /run directory (\S+)/.exec(text)?.[1];
  const pids = [...text.matchAll(/(?:apt-cacher-ng pid|nspawn pid|init pid) (\d+)/g)].map((m) => Number(m[1]));
  return { runDir, pids };
}
