/**
 * Which traced calls a unit's seccomp filters would refuse, and which directive refuses each.
 * The rules are systemd v252's, read from systemd-stable v252.31 src/shared/seccomp-util.c and
 * src/core/execute.c (function named per rule). Arguments are matched as strace prints them.
 */
import { expand, type FlagDirective, type Restrictions } from "./restrictions";
import type { Call } from "./straceLog";

export interface Violation {
  readonly unit: string;
  readonly syscall: string;
  /** What was refused, e.g. "socket(AF_NETLINK)" or "adjtimex". */
  readonly what: string;
  readonly directive: string;
  readonly example: string;
}

/** A flag set as strace prints it (`A|B|0x10`), as names. */
const flagNames = (arg: string | undefined): string[] => (arg ?? "").split("|").map((s) => s.trim());
const hasFlag = (arg: string | undefined, flag: string) => flagNames(arg).includes(flag);

/** A file mode as strace prints it (`0640`, `S_ISUID|0755`): does it carry setuid or setgid? */
function setsIdBits(arg: string | undefined): boolean {
  if (!arg) return false;
  const names = flagNames(arg);
  if (names.includes("S_ISUID") || names.includes("S_ISGID")) return true;
  return names.some((n) => /^0[0-7]+$/.test(n) && (parseInt(n, 8) & 0o6000) !== 0);
}

/** The namespace flags systemd's namespace_info knows (src/shared/namespace-util.c, v252). */
const NEW_NAMESPACE = /\bCLONE_NEW(?:CGROUP|IPC|NET|NS|PID|USER|UTS)\b/;

/** The clone flags of a clone()/clone3() call (`flags=...` inside the arguments). */
const cloneFlags = (call: Call) => /flags=([A-Z0-9_|x]+)/.exec(call.args.join(","))?.[1] ?? "";

/** Where RestrictSUIDSGID= looks for the mode (seccomp_restrict_sxid): argument index per call. */
const MODE_ARG: Readonly<Record<string, number>> = {
  chmod: 1,
  fchmod: 1,
  fchmodat: 2,
  mkdir: 1,
  mkdirat: 2,
  mknod: 1,
  mknodat: 2,
  creat: 1,
};
/** open()/openat() count only with O_CREAT: [flags index, mode index]. */
const OPEN_ARGS: Readonly<Record<string, readonly [number, number]>> = { open: [1, 2], openat: [2, 3] };

/** The directives among the boolean ones that refuse this call, with what they refuse. */
function flagVerdicts(call: Call, r: Restrictions): { directive: FlagDirective; what: string }[] {
  const out: { directive: FlagDirective; what: string }[] = [];
  const on = (d: FlagDirective) => r.flags[d];
  const inGroup = (g: string) => expand(r.groups, g).includes(call.name);
  const { name, args } = call;
  // apply_protect_clock, apply_private_devices, apply_protect_kernel_modules: whole groups.
  if (on("ProtectClock") && inGroup("@clock")) out.push({ directive: "ProtectClock", what: name });
  if (on("PrivateDevices") && inGroup("@raw-io")) out.push({ directive: "PrivateDevices", what: name });
  if (on("ProtectKernelModules") && inGroup("@module")) out.push({ directive: "ProtectKernelModules", what: name });
  // seccomp_protect_syslog, seccomp_protect_sysctl, seccomp_protect_hostname.
  if (on("ProtectKernelLogs") && name === "syslog") out.push({ directive: "ProtectKernelLogs", what: name });
  if (on("ProtectKernelTunables") && name === "_sysctl") out.push({ directive: "ProtectKernelTunables", what: name });
  if (on("ProtectHostname") && (name === "sethostname" || name === "setdomainname"))
    out.push({ directive: "ProtectHostname", what: name });
  // seccomp_restrict_realtime_full: only SCHED_OTHER, SCHED_BATCH and SCHED_IDLE, no flag bits.
  if (
    on("RestrictRealtime") &&
    name === "sched_setscheduler" &&
    !["SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE"].includes(args[1] ?? "")
  )
    out.push({ directive: "RestrictRealtime", what: `sched_setscheduler(${args[1]})` });
  // seccomp_restrict_namespaces(0): setns always; unshare and clone with any CLONE_NEW* flag.
  if (on("RestrictNamespaces")) {
    if (name === "setns") out.push({ directive: "RestrictNamespaces", what: name });
    if (name === "unshare" && NEW_NAMESPACE.test(args[0] ?? ""))
      out.push({ directive: "RestrictNamespaces", what: `unshare(${args[0]})` });
    if (name === "clone" && NEW_NAMESPACE.test(cloneFlags(call)))
      out.push({ directive: "RestrictNamespaces", what: `clone(${cloneFlags(call)})` });
  }
  // seccomp_lock_personality: personality() with anything but the locked PER_LINUX (a query too).
  if (on("LockPersonality") && name === "personality" && args[0] !== "PER_LINUX")
    out.push({ directive: "LockPersonality", what: `personality(${args[0]})` });
  // seccomp_memory_deny_write_execute (x86_64): mmap W+X; mprotect/pkey_mprotect X; shmat SHM_EXEC.
  if (on("MemoryDenyWriteExecute")) {
    if (name === "mmap" && hasFlag(args[2], "PROT_WRITE") && hasFlag(args[2], "PROT_EXEC"))
      out.push({ directive: "MemoryDenyWriteExecute", what: `mmap(${args[2]})` });
    if ((name === "mprotect" || name === "pkey_mprotect") && hasFlag(args[2], "PROT_EXEC"))
      out.push({ directive: "MemoryDenyWriteExecute", what: `${name}(${args[2]})` });
    if (name === "shmat" && hasFlag(args[2], "SHM_EXEC"))
      out.push({ directive: "MemoryDenyWriteExecute", what: `shmat(${args[2]})` });
  }
  // seccomp_restrict_suid_sgid: setuid/setgid mode bits; openat2 refused outright (ENOSYS).
  if (on("RestrictSUIDSGID")) {
    const modeAt = MODE_ARG[name];
    const open = OPEN_ARGS[name];
    if (modeAt !== undefined && setsIdBits(args[modeAt]))
      out.push({ directive: "RestrictSUIDSGID", what: `${name}(${args[modeAt]})` });
    if (open && hasFlag(args[open[0]], "O_CREAT") && setsIdBits(args[open[1]]))
      out.push({ directive: "RestrictSUIDSGID", what: `${name}(${args[open[1]]})` });
    if (name === "openat2") out.push({ directive: "RestrictSUIDSGID", what: name });
  }
  return out;
}

function passes(set: { allowList: boolean; names: ReadonlySet<string> }, name: string): boolean {
  return set.allowList ? set.names.has(name) : !set.names.has(name);
}

/** Every refusal of one call (several directives may refuse the same call). */
function refusals(call: Call, r: Restrictions): Omit<Violation, "unit" | "example">[] {
  // seccomp_restrict_namespaces answers clone3 with ENOSYS on purpose, "so that glibc and other
  // users shall fall back to clone()"; glibc does (sysdeps/unix/sysv/linux/clone-internal.c,
  // __clone_internal retries __clone_internal_fallback on ENOSYS), with the same flags. So the
  // call that must pass is that clone().
  if (call.name === "clone3" && r.flags.RestrictNamespaces)
    return refusals({ ...call, name: "clone", args: [`flags=${cloneFlags(call)}`] }, r);
  const out: Omit<Violation, "unit" | "example">[] = [];
  if (r.syscalls && !passes(r.syscalls, call.name))
    out.push({ syscall: call.name, what: call.name, directive: "SystemCallFilter" });
  if (call.name === "socket" && r.families) {
    const family = call.args[0] ?? "";
    const name = /^AF_[A-Z0-9]+$/.exec(family)?.[0] ?? family;
    if (!passes(r.families, name))
      out.push({ syscall: "socket", what: `socket(${name})`, directive: "RestrictAddressFamilies" });
  }
  for (const f of flagVerdicts(call, r)) out.push({ syscall: call.name, what: f.what, directive: f.directive });
  return out;
}

/** Every distinct refusal over a trace, with one example line each. */
export function violations(calls: readonly Call[], r: Restrictions): Violation[] {
  const seen = new Map<string, Violation>();
  for (const call of calls) {
    for (const v of refusals(call, r)) {
      const key = `${v.directive} ${v.what}`;
      if (!seen.has(key)) seen.set(key, { unit: r.unit, ...v, example: call.line });
    }
  }
  return [...seen.values()];
}

export function describe(v: Violation): string {
  return `${v.unit}: ${v.what} is refused by ${v.directive}= (e.g. ${v.example.slice(0, 160)})`;
}
