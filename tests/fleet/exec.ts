/**
 * Running the host's tools for the fleet: synchronous calls that fail with the command line
 * and its stderr, and a wait that polls a real condition until a deadline (never a fixed sleep).
 */
import { execFile, execFileSync, spawnSync, type ChildProcess } from "node:child_process";

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: string;
  readonly timeoutMs?: number;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly status: number | null,
    readonly stderr: string,
  ) {
    super(`\`${command}\` failed (exit ${status ?? "by signal"}): ${stderr.trim().split("\n").slice(-15).join("\n")}`);
  }
}

const show = (command: string, args: readonly string[]) => [command, ...args].join(" ");

/** Runs a command, returns its stdout; throws a CommandError naming it otherwise. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): string {
  const r = spawnSync(command, args, {
    encoding: "utf8",
    env: options.env ?? process.env,
    input: options.input,
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
    stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  if (r.error) throw new CommandError(show(command, args), null, r.error.message);
  if (r.status !== 0) throw new CommandError(show(command, args), r.status, `${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Exit status and output, for commands whose failure is an answer rather than an error. */
export function probe(command: string, args: readonly string[], timeoutMs = 60_000): { status: number; out: string } {
  const r = spawnSync(command, args, { encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"] });
  return { status: r.status ?? -1, out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? r.error.message : ""}` };
}

export interface ProbeResult {
  readonly status: number;
  readonly out: string;
}

/** `probe` without blocking the event loop, with the child, for a caller that may have to end it. */
export function probeChild(
  command: string,
  args: readonly string[],
  timeoutMs = 60_000,
): { child: ChildProcess; result: Promise<ProbeResult> } {
  let child!: ChildProcess;
  const result = new Promise<ProbeResult>((resolve) => {
    child = execFile(
      command,
      args,
      { encoding: "utf8", timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const status = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ status, out: `${stdout}${stderr}${err && typeof err.code !== "number" ? err.message : ""}` });
      },
    );
  });
  return { child, result };
}

/** `probe` without blocking the event loop, so hosts are awaited in parallel. */
export function probeAsync(command: string, args: readonly string[], timeoutMs = 60_000): Promise<ProbeResult> {
  return probeChild(command, args, timeoutMs).result;
}

export function which(tool: string): boolean {
  try {
    execFileSync("/bin/sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export { Fatal, waitFor } from "../support/wait";
