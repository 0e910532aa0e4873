/**
 * One fleet host: a copy-on-write root (overlayfs over the cached base image) booted by
 * systemd-nspawn with systemd as PID 1 on the fleet's bridge. There is no systemd on this
 * machine's PID 1 and no machined, hence --register=no --keep-unit; the container is known by
 * the pid of nspawn (which this run started) and of its init (the "leader").
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Cleanup } from "./cleanup";
import { Fatal, probeChild, run, waitFor, type ProbeResult } from "./exec";

export interface ContainerSpec {
  /** Machine name, also nspawn's veth name (vb-<name>, shortened by nspawn if long). */
  readonly machine: string;
  readonly lowerdir: string;
  readonly hostDir: string;
  readonly bridge: string;
  /** Host paths bound at the same path inside (device nodes). */
  readonly binds: readonly string[];
  /** host path -> path inside, read-only. */
  readonly readOnlyBinds: Readonly<Record<string, string>>;
}

export interface Container {
  readonly spec: ContainerSpec;
  /** The merged root as this machine sees it. */
  readonly root: string;
  readonly consoleLog: string;
  readonly nspawnPid: number;
  leaderPid(): number | undefined;
  running(): boolean;
  /** Powers the container off (SIGTERM to nspawn, which halts its init) and waits for nspawn to exit. */
  stop(timeoutMs?: number): Promise<void>;
  /** Resolves with nspawn's exit code (or signal name) once it has ended. */
  exited(): Promise<number | string>;
  /** Resolves once nspawn has ended and the kernel has let go of the init and the host-side veth. */
  released(timeoutMs?: number): Promise<void>;
  /**
   * Runs a command inside the container's namespaces (mount, pid, net, ...) as root, through
   * nsenter into its current init; ended by a stop (see endCommands).
   */
  enter(command: readonly string[], timeoutMs?: number): Promise<{ status: number; out: string }>;
}

/**
 * systemd-nspawn's exit status when the container's init rebooted rather than powered off:
 * systemd's own units/systemd-nspawn@.service.in restarts nspawn on exactly it
 * (RestartForceExitStatus=133, SuccessExitStatus=133).
 */
export const NSPAWN_REBOOT_STATUS = 133;

/**
 * A reboot from inside (`systemctl reboot`) ends nspawn with NSPAWN_REBOOT_STATUS; what restarts
 * it is whoever started it, here this harness: wait for that end, then boot the same overlay
 * root (the host's disk: its upper layer holds everything the host wrote) with the same binds,
 * as a new nspawn. Anything else than a reboot's status is an error.
 */
export async function bootAfterReboot(
  old: Container,
  cleanup: Cleanup,
  timeoutMs = 120_000,
  beforeBoot?: () => void,
): Promise<Container> {
  const status = await Promise.race([
    old.exited(),
    new Promise<undefined>((r) => setTimeout(r, timeoutMs, undefined).unref()),
  ]);
  if (status === undefined)
    throw new Error(`${old.spec.machine} did not end its nspawn within ${timeoutMs / 1000} s of a reboot`);
  if (status !== NSPAWN_REBOOT_STATUS)
    throw new Error(
      `${old.spec.machine}: nspawn ended with ${status}, not the reboot status ${NSPAWN_REBOOT_STATUS}: ${tail(old.consoleLog)}`,
    );
  // The new nspawn makes a veth of the same name: the old one must be gone first.
  await old.released();
  beforeBoot?.();
  return boot(old.spec, old.root, cleanup);
}

/** Mounts the overlay for `spec` and registers its removal; the root is ready for seed files. */
export function prepareRoot(spec: ContainerSpec, cleanup: Cleanup): string {
  const [upper, work, root] = ["upper", "work", "root"].map((d) => path.join(spec.hostDir, d));
  for (const d of [upper, work, root]) fs.mkdirSync(d, { recursive: true });
  run("/usr/bin/mount", [
    "-t",
    "overlay",
    "overlay",
    "-o",
    `lowerdir=${spec.lowerdir},upperdir=${upper},workdir=${work}`,
    root,
  ]);
  cleanup.add(`overlay ${root}`, () => {
    run("/usr/bin/umount", [root]);
    fs.rmSync(spec.hostDir, { recursive: true, force: true });
  });
  return root;
}

/**
 * SIGRTMIN+3, systemd's "halt" (systemd(1), SIGNALS); glibc's SIGRTMIN is 34 on Linux. Node has
 * no name for the real-time signals.
 */
const HALT_SIGNAL = 34 + 3;

/** The pids whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      // Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return out;
}

/** The process among nspawn's children that is PID 1 of its own pid namespace. */
function findLeader(nspawnPid: number): number | undefined {
  for (const pid of childrenOf(nspawnPid)) {
    try {
      const nspid = /^NSpid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1].split(/\s+/);
      if (nspid && nspid.length > 1 && nspid[nspid.length - 1] === "1") return pid;
    } catch {
      // Gone while we looked.
    }
  }
  return undefined;
}

/** The unified (v2) hierarchy: /sys/fs/cgroup itself, or mounted by us where the host mounts only v1. */
const UNIFIED_MOUNT = "/run/titan-fleet-cgroup2";

function unifiedRoot(): string {
  if (fs.existsSync("/sys/fs/cgroup/cgroup.controllers")) return "/sys/fs/cgroup";
  if (fs.existsSync("/sys/fs/cgroup/unified/cgroup.controllers")) return "/sys/fs/cgroup/unified";
  // Left mounted (it holds nothing of ours once the containers are gone; /run goes at reboot).
  if (!fs.existsSync(`${UNIFIED_MOUNT}/cgroup.controllers`)) {
    fs.mkdirSync(UNIFIED_MOUNT, { recursive: true });
    run("mount", ["-t", "cgroup2", "titan-fleet-cgroup2", UNIFIED_MOUNT]);
  }
  return UNIFIED_MOUNT;
}

/** Every hierarchy nspawn places the container in: the unified one, and name=systemd where mounted. */
function cgroupRoots(): string[] {
  const legacy = "/sys/fs/cgroup/systemd";
  return [unifiedRoot(), ...(fs.existsSync(`${legacy}/cgroup.procs`) ? [legacy] : [])];
}

/**
 * Cgroups of the container's own, for nspawn to start in. With --keep-unit, nspawn splits the
 * cgroup it runs in into supervisor/ (itself) and payload/ (the container), the path taken from
 * its unified-hierarchy line (systemd src/nspawn/nspawn-cgroup.c, create_subcgroup; seen here:
 * moved into a name=systemd cgroup only, nspawn still went to /supervisor). Started from one
 * shared cgroup (this machine has no systemd to give each its own scope), every container's
 * systemd managed the same payload/ tree, where units of the same name (every host has them)
 * share a cgroup: one container removing its finished unit's cgroup removed another's in the
 * middle of its start ("Failed at step CGROUP spawning /bin/sh: No such file or directory",
 * status 219: seen on ifupdown-pre, systemd-network-generator and systemd-journal-flush, on
 * whichever host booted last). Each nspawn therefore starts in titan-fleet/<machine> of each.
 */
export function ownCgroups(machine: string): string[] {
  return cgroupRoots().map((root) => {
    const dir = path.join(root, "titan-fleet", machine);
    removeCgroup(dir);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  });
}

/** Removes a cgroup tree, deepest first (a cgroup goes only once it is empty); what stays busy stays. */
export function removeCgroup(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) removeCgroup(path.join(dir, e.name));
  }
  try {
    fs.rmdirSync(dir);
  } catch {
    // Still holds a process (a container not yet gone): its own removal comes later.
  }
}

export async function boot(spec: ContainerSpec, root: string, cleanup: Cleanup): Promise<Container> {
  const consoleLog = path.join(path.dirname(spec.hostDir), `${spec.machine}.console.log`);
  const args = [
    `--directory=${root}`,
    `--machine=${spec.machine}`,
    "--register=no",
    "--keep-unit",
    "--boot",
    // A pty whose output nspawn copies to the log. Not "passive": nobody reads that pty, and once
    // its buffer is full PID 1 blocks writing to the console (seen here: a reboot hung on it).
    "--console=read-only",
    "--link-journal=no",
    `--network-bridge=${spec.bridge}`,
    // nspawn's own seccomp allow-list (systemd src/nspawn/nspawn-seccomp.c,
    // seccomp_add_default_syscall_filter) admits the @clock group only when CAP_SYS_TIME is
    // retained, which it is not here, so every process in the container got EPERM from
    // adjtimex() whatever its unit allowed: node_exporter's timex collector failed because of
    // the container, not our sandbox. Allowing the one call makes the unit's SystemCallFilter=
    // the thing the fleet proves; setting the clock still needs CAP_SYS_TIME, which stays dropped.
    // Seen here with nspawn 252: the raw adjtimex syscall (what Go's unix.Adjtimex, and so the
    // timex collector, makes) gets EPERM without this flag and succeeds with it. glibc's
    // adjtimex() goes through clock_adjtime instead, which stays refused.
    "--system-call-filter=adjtimex",
    ...spec.binds.map((b) => `--bind=${b}`),
    ...Object.entries(spec.readOnlyBinds).map(([from, to]) => `--bind-ro=${from}:${to}`),
  ];
  // Registered before nspawn starts: a run being cleaned up (SIGINT during a reboot) refuses new
  // steps, and then no container must be started that nobody would stop.
  const registered: { stop?: () => Promise<void> } = {};
  cleanup.add(`container ${spec.machine}`, () => registered.stop?.());
  const fd = fs.openSync(consoleLog, "a");
  fs.writeSync(fd, `$ systemd-nspawn ${args.join(" ")}\n`);
  const cgroups = ownCgroups(spec.machine);
  // The shell enters the container's own cgroups, then becomes nspawn (same pid).
  const child: ChildProcess = spawn(
    "/bin/sh",
    [
      "-c",
      'for d in $0; do echo $$ >"$d/cgroup.procs" || exit 1; done; exec "$@"',
      cgroups.join(" "),
      "/usr/bin/systemd-nspawn",
      ...args,
    ],
    { stdio: ["ignore", fd, fd], detached: true },
  );
  fs.closeSync(fd);
  const nspawnPid = child.pid;
  if (nspawnPid === undefined) throw new Error(`could not start systemd-nspawn for ${spec.machine}`);
  let exited: string | undefined;
  let exitStatus: number | string = "";
  const exit = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = `exit ${code ?? signal}`;
      exitStatus = code ?? signal ?? "";
      resolve();
    }),
  );
  const exitedWithin = (ms: number) =>
    Promise.race([exit.then(() => true), new Promise<boolean>((r) => setTimeout(r, ms, false))]);
  // Known once booted: what must be gone before a stop counts as done.
  const booted: { leader?: number; vethIndex?: number } = {};
  // The harness's own commands inside (nsenter), each still running.
  const commands = new Set<ChildProcess>();
  /**
   * A shutdown inside freezes every process it sees with SIGSTOP before it signals them
   * (systemd's src/shared/killall.c, broadcast_signal). nsenter mirrors a stopped child by
   * stopping itself (util-linux sys-utils/nsenter.c, continue_as_child), but it lives outside
   * the container, so the SIGCONT that follows never reaches it: it stays stopped, never reaps
   * its child, and the namespace's init waits for that zombie forever (seen in CI: a SIGINT
   * during a cloud-init status left init, nspawn and the veth behind). So a stop, and a
   * shutdown the container began itself, end the harness's commands first; SIGKILL reaches a
   * stopped process, and the child's zombie then goes to the container's init.
   */
  const endCommands = () => {
    for (const c of commands) c.kill("SIGKILL");
  };
  const enter = async (command: readonly string[], timeoutMs = 60_000): Promise<ProbeResult> => {
    const leader = exited ? undefined : findLeader(nspawnPid);
    if (leader === undefined) return { status: -1, out: `container ${spec.machine} is not running` };
    const { child, result } = probeChild(
      "/usr/bin/nsenter",
      ["--target", String(leader), "--all", ...command],
      timeoutMs,
    );
    commands.add(child);
    try {
      return await result;
    } finally {
      commands.delete(child);
    }
  };
  const stop = async (timeoutMs = 60_000) => {
    await powerOff(timeoutMs);
    await released(timeoutMs);
  };
  /**
   * nspawn's end is not yet the end of what the container held: the kernel tears a network
   * namespace down asynchronously (its veth pair goes with it), and a loaded machine lags
   * (seen in CI: the host-side veth still listed right after the run exited). Wait for the
   * real conditions: the init gone (a zombie holds nothing) and the host-side veth deleted.
   */
  const released = async (timeoutMs = 60_000) => {
    await exit;
    for (const c of cgroups) removeCgroup(c);
    await waitFor(
      `${spec.machine}'s init and veth to be released`,
      () => {
        endCommands();
        const leaderLeft = booted.leader !== undefined && livingPid(booted.leader);
        const vethLeft = booted.vethIndex !== undefined && linkIndexExists(booted.vethIndex);
        return leaderLeft || vethLeft ? undefined : true;
      },
      {
        timeoutMs,
        intervalMs: 100,
        why: () =>
          `init ${booted.leader} alive: ${booted.leader !== undefined && livingPid(booted.leader)}, host veth index ${booted.vethIndex} present: ${booted.vethIndex !== undefined && linkIndexExists(booted.vethIndex)}`,
      },
    );
  };
  const powerOff = async (timeoutMs: number) => {
    if (exited) return;
    endCommands();
    // nspawn turns SIGTERM into one halt signal for the container's init. A PID-namespace init
    // drops signals it has no handler for, so a halt sent before systemd installed its handlers
    // is lost (seen in CI: a failure right after boot left the container running). Hence the
    // halt is repeated to the init itself, and at the deadline the init is killed, which ends
    // every process of its namespace and so nspawn.
    process.kill(nspawnPid, "SIGTERM");
    const deadline = Date.now() + timeoutMs;
    while (!exited && Date.now() < deadline) {
      if (await exitedWithin(Math.min(5_000, Math.max(0, deadline - Date.now())))) return;
      endCommands();
      signalLeader(HALT_SIGNAL);
    }
    if (exited) return;
    signalLeader("SIGKILL");
    if (await exitedWithin(30_000)) return;
    process.kill(nspawnPid, "SIGKILL");
    await exit;
  };
  const signalLeader = (signal: NodeJS.Signals | number) => {
    const leader = exited ? undefined : findLeader(nspawnPid);
    if (leader === undefined) return;
    try {
      process.kill(leader, signal);
    } catch {
      // Gone meanwhile.
    }
  };
  registered.stop = stop;
  const container: Container = {
    spec,
    root,
    consoleLog,
    nspawnPid,
    leaderPid: () => (exited ? undefined : findLeader(nspawnPid)),
    running: () => exited === undefined,
    stop,
    exited: () => exit.then(() => exitStatus),
    released,
    enter,
  };
  booted.leader = await waitFor(
    `the init of ${spec.machine}`,
    () => {
      if (exited) throw new Fatal(`systemd-nspawn ended (${exited}): ${tail(consoleLog)}`);
      // Until it execs, the leader is still nspawn's own child setting the container up.
      const leader = container.leaderPid();
      return leader !== undefined && commOf(leader) === "systemd" ? leader : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  booted.vethIndex = hostVethIndex(booted.leader);
  return container;
}

/**
 * The host-side ifindex of the container's veth: inside, nspawn's `host0` names its peer
 * ("host0@if7"). nspawn has set the link up before it starts the init, so it exists by now.
 */
function hostVethIndex(leader: number): number {
  const line = run("/usr/bin/nsenter", [
    "--target",
    String(leader),
    "--net",
    "/usr/sbin/ip",
    "-o",
    "link",
    "show",
    "dev",
    "host0",
  ]);
  const m = /host0@if(\d+)/.exec(line);
  if (!m) throw new Error(`container init ${leader}: no veth peer index in ${JSON.stringify(line)}`);
  return Number(m[1]);
}

function linkIndexExists(index: number): boolean {
  for (const name of fs.readdirSync("/sys/class/net")) {
    try {
      if (Number(fs.readFileSync(`/sys/class/net/${name}/ifindex`, "utf8")) === index) return true;
    } catch {
      // Gone while we looked.
    }
  }
  return false;
}

/** Alive and not a zombie: a zombie has released its namespaces, memory and files. */
export function livingPid(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] !== "Z";
  } catch {
    return false;
  }
}

function commOf(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}

export function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch (err) {
    return `(cannot read ${file}: ${(err as Error).message})`;
  }
}
