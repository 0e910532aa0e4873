/**
 * What a check sees of a fleet host: its place in the plan and a way to run a command in it as
 * root. Commands go through nsenter into the container's current init (readiness.ts
 * inContainer), so a host that was rebooted (a new nspawn, a new init) is reached through the
 * container it runs in now.
 */
import type { Role } from "../../../facts/topology";
import type { Container } from "../container";
import { inContainer } from "../readiness";

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
