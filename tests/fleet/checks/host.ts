/**
 * What a check sees of a fleet host: its place in the plan and a way to run a command in it as
 * root. Commands go through nsenter into the container's current init (readiness.ts
 * inContainer), so a host that was rebooted (a new nspawn, a new init) is reached through the
 * container it runs in now.
 */
import type { Role } from "../../../facts/topology";
import type { Container } from "../container";
import { inContainer } from "../readiness";
import { oneLine } from "./result";

export interface ExecResult {
  readonly status: number;
  readonly out: string;
}

export interface CheckHost {
  readonly name: string;
  readonly role: Role;
  readonly privateIp: string;
  /** The data volume's id, for the roles that have one (the bootstrap plan needs it). */
  readonly dataVolumeId?: string;
  /** Runs `command` (argv, no shell) inside the host as root. */
  exec(command: readonly string[], timeoutMs?: number): Promise<ExecResult>;
}

/** A shell line inside the host (for pipes and globs); the line is this harness's own. */
export const shell = (host: CheckHost, line: string, timeoutMs?: number): Promise<ExecResult> =>
  host.exec(["/bin/sh", "-c", line], timeoutMs);

/** A host reached through the container it currently runs in; `container` moves on a reboot. */
export class ContainerHost implements CheckHost {
  constructor(
    readonly name: string,
    readonly role: Role,
    readonly privateIp: string,
    public container: Container,
    readonly dataVolumeId?: string,
  ) {}

  exec(command: readonly string[], timeoutMs = 60_000): Promise<ExecResult> {
    return inContainer(this.container, command, timeoutMs);
  }
}

/** A unit's InvocationID (systemd renews it on every start) and, while it runs, its main process's environment. */
export interface UnitState {
  readonly invocation: string;
  /** Absent when no main process could be read: the unit is stopped, or its process exited meanwhile. */
  readonly env?: ReadonlyMap<string, string>;
  /** Why `env` is absent. */
  readonly notRunning?: string;
}

/** The state of `unit`, running or not (a check that waits for a stopped unit to start reads this). */
export async function unitState(h: CheckHost, unit: string): Promise<UnitState> {
  // One property a call: `systemctl show -p A,B` prints them in systemd's order, not ours.
  const prop = async (name: string) => (await shell(h, `systemctl show -p ${name} --value ${unit}`)).out.trim();
  const invocation = await prop("InvocationID");
  const pid = await prop("MainPID");
  if (!/^[1-9]\d*$/.test(pid))
    return { invocation, notRunning: `${unit} is not running (MainPID ${pid || "unknown"})` };
  const environ = await shell(h, `tr '\\0' '\\n' </proc/${pid}/environ`);
  if (environ.status !== 0) return { invocation, notRunning: `reading /proc/${pid}/environ: ${oneLine(environ.out)}` };
  const env = new Map(
    environ.out
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as [string, string]),
  );
  return { invocation, env };
}

/** The state of `unit`, which must be running: throws why it is not. */
export async function serviceState(
  h: CheckHost,
  unit: string,
): Promise<{ invocation: string; env: ReadonlyMap<string, string> }> {
  const state = await unitState(h, unit);
  if (!state.env) throw new Error(state.notRunning);
  return { invocation: state.invocation, env: state.env };
}
