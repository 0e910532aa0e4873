/**
 * Runs a daemon under `strace -f -ff` as an unprivileged user (code paths differ for root: e.g.
 * SQLite fchown()s its files only when euid is 0), waits for real conditions, and stops it by pid
 * (SIGTERM to the traced process itself, so its shutdown is traced too).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { Processes } from "../e2e/processes";
import { readTrace, type Call } from "./straceLog";
import { Fatal, waitFor } from "../support/wait";

const STRACE = "/usr/bin/strace";
const TRACE_PREFIX = "trace";

export function requireRootAndStrace(): void {
  if (process.getuid?.() !== 0) throw new Error("the sandbox proof runs daemons as their users: run it as root");
  if (!fs.existsSync(STRACE)) throw new Error(`${STRACE} is missing: install strace (scripts/debian-packages.txt)`);
}

/** The unit's User= if this machine has that user, else nobody: any non-root uid takes the same paths. */
export function runAs(user: string | undefined): string {
  if (user && spawnSync("getent", ["passwd", user]).status === 0) return user;
  return "nobody";
}

/** uid and gid of a user, for chown-ing the directories it must write. */
export function idsOf(user: string): { uid: number; gid: number } {
  const out = spawnSync("getent", ["passwd", user], { encoding: "utf8" }).stdout.split(":");
  if (out.length < 4) throw new Error(`no user ${user}`);
  return { uid: Number(out[2]), gid: Number(out[3]) };
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

export interface Traced {
  readonly name: string;
  readonly dir: string;
  /** Polls `probe` until it returns a value; fails early if the daemon exits, or at the timeout. */
  until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T>;
  /** SIGTERM to the traced process, then the whole trace once strace has exited. */
  stop(): Promise<Call[]>;
  log(): string;
  running(): boolean;
}

export function startTraced(
  procs: Processes,
  dir: string,
  name: string,
  user: string,
  argv: readonly string[],
  options: { env: Record<string, string>; cwd?: string },
): Traced {
  const traceDir = path.join(dir, `${name}-trace`);
  fs.mkdirSync(traceDir, { recursive: true });
  const proc = procs.start(
    name,
    STRACE,
    ["-f", "-ff", "-qq", "-u", user, "-o", path.join(traceDir, TRACE_PREFIX), "--", ...argv],
    options,
  );
  const log = () => procs.tail(name, 30);
  /** The traced daemon: strace's one child. */
  const tracee = (): number | undefined => {
    try {
      const kids = fs.readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, "utf8").trim();
      return kids === "" ? undefined : Number(kids.split(/\s+/)[0]);
    } catch {
      return undefined;
    }
  };
  return {
    name,
    dir: traceDir,
    log,
    running: () => proc.exit === undefined,
    until: (what, timeoutMs, probe) =>
      waitFor(
        what,
        async () => {
          if (proc.exit) throw new Fatal(`${name} exited (${JSON.stringify(proc.exit)}):\n${log()}`);
          return probe();
        },
        { timeoutMs, intervalMs: 200 },
      ).catch((err: Error) => {
        throw new Error(`${name}: ${err.message}\n${log()}`);
      }),
    async stop() {
      const pid = tracee();
      if (pid !== undefined) process.kill(pid, "SIGTERM");
      // strace exits once its tracee has; only a daemon that ignores SIGTERM meets the group kill.
      const done = await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 15_000, undefined))]);
      if (done === undefined) await procs.stop(name);
      return readTrace(traceDir, TRACE_PREFIX);
    },
  };
}
