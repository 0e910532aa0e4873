/**
 * The seccomp side of a service's sandbox, computed from its unit text and drop-ins the way
 * systemd 252 (Debian 12) builds it. Sources, systemd-stable at v252.31:
 * - src/core/load-fragment.c config_parse_syscall_filter: the first SystemCallFilter= line picks
 *   allow-list (and adds @default) or deny-list mode; every later name is added to or removed from
 *   that one set, in order; an empty assignment resets it.
 * - src/core/load-fragment.c config_parse_address_families: the same for RestrictAddressFamilies=,
 *   plus `none`.
 * - src/core/execute.c apply_*: the filters that other directives add (see IMPLIED below).
 * Groups are expanded by `systemd-analyze syscall-filter`, the tool of the systemd that runs here.
 */
import { spawnSync } from "node:child_process";
import { parseUnit } from "../e2e/systemdUnit";

/** Directives that install seccomp filters of their own (src/core/execute.c apply_*). */
export const FLAG_DIRECTIVES = [
  "ProtectClock",
  "PrivateDevices",
  "ProtectKernelModules",
  "ProtectKernelLogs",
  "ProtectKernelTunables",
  "ProtectHostname",
  "RestrictRealtime",
  "RestrictNamespaces",
  "RestrictSUIDSGID",
  "LockPersonality",
  "MemoryDenyWriteExecute",
] as const;
export type FlagDirective = (typeof FLAG_DIRECTIVES)[number];

export interface NameSet {
  /** true: only `names` pass; false: everything but `names` passes. */
  readonly allowList: boolean;
  readonly names: ReadonlySet<string>;
}

export interface Restrictions {
  readonly unit: string;
  /** Effective SystemCallFilter= (undefined: no filter). */
  readonly syscalls?: NameSet;
  /** Effective RestrictAddressFamilies= (undefined: no restriction). */
  readonly families?: NameSet;
  readonly flags: Readonly<Record<FlagDirective, boolean>>;
  /** Syscalls of each group the flags above deny (from systemd-analyze). */
  readonly groups: SyscallGroups;
}

/** systemd's parse_boolean (src/basic/parse-util.c). */
function parseBoolean(unit: string, key: string, value: string): boolean {
  const v = value.toLowerCase();
  if (["1", "yes", "y", "true", "t", "on"].includes(v)) return true;
  if (["0", "no", "n", "false", "f", "off"].includes(v)) return false;
  throw new Error(`${unit}: ${key}=${value} is not a boolean; this checker expects yes or no`);
}

export type SyscallGroups = ReadonlyMap<string, readonly string[]>;

/** Every group `systemd-analyze syscall-filter` knows, as its direct entries (names or @groups). */
export function loadSyscallGroups(): SyscallGroups {
  const result = spawnSync("systemd-analyze", ["syscall-filter", "--no-pager"], { encoding: "utf8" });
  if (result.error || result.status !== 0)
    throw new Error(`systemd-analyze syscall-filter failed: ${result.error?.message ?? result.stderr}`);
  const groups = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of result.stdout.split("\n")) {
    const header = /^(@[a-z-]+)$/.exec(line);
    if (header) {
      current = [];
      groups.set(header[1], current);
    } else if (/^\S/.test(line) || line.trim() === "") {
      current = line.trim() === "" ? current : undefined;
    } else if (current && !line.trim().startsWith("#")) {
      current.push(line.trim());
    }
  }
  if (!groups.has("@system-service") || !groups.has("@default"))
    throw new Error("systemd-analyze syscall-filter listed no @system-service or @default group");
  return groups;
}

/** A syscall name or @group, expanded to syscall names. */
export function expand(groups: SyscallGroups, name: string, seen = new Set<string>()): string[] {
  if (!name.startsWith("@")) return [name];
  const entries = groups.get(name);
  if (!entries) throw new Error(`unknown system call group ${name} (systemd-analyze syscall-filter lists none)`);
  if (seen.has(name)) return [];
  seen.add(name);
  return entries.flatMap((e) => expand(groups, e, seen));
}

/** Folds one more assignment into a set, as config_parse_syscall_filter / _address_families do. */
function assign(
  current: { allowList: boolean; names: Set<string> } | undefined,
  rvalue: string,
  words: (w: string) => string[],
  startAllowList: () => string[],
): { allowList: boolean; names: Set<string> } | undefined {
  if (rvalue === "") return undefined;
  const invert = rvalue.startsWith("~");
  const set = current ?? { allowList: !invert, names: new Set(invert ? [] : startAllowList()) };
  for (const word of rvalue.replace(/^~/, "").split(/\s+/).filter(Boolean)) {
    for (const name of words(word)) {
      if (invert !== set.allowList) set.names.add(name);
      else set.names.delete(name);
    }
  }
  return set;
}

/**
 * The effective restrictions of `unit` from its texts in the order systemd reads them: the unit
 * file first, then each drop-in.
 */
export function effectiveRestrictions(unit: string, texts: readonly string[], groups: SyscallGroups): Restrictions {
  let syscalls: { allowList: boolean; names: Set<string> } | undefined;
  let families: { allowList: boolean; names: Set<string> } | undefined;
  const flags = Object.fromEntries(FLAG_DIRECTIVES.map((d) => [d, false])) as Record<FlagDirective, boolean>;
  for (const text of texts) {
    const service = parseUnit(text).get("Service");
    if (!service) continue;
    for (const [key, values] of service) {
      for (const value of values) {
        if (key === "SystemCallFilter") {
          if (/:/.test(value))
            throw new Error(`${unit}: SystemCallFilter=${value}: per-call errno is not supported by this checker`);
          syscalls = assign(
            syscalls,
            value,
            (w) => expand(groups, w),
            () => expand(groups, "@default"),
          );
        } else if (key === "RestrictAddressFamilies") {
          families =
            value === "none"
              ? { allowList: true, names: new Set() }
              : assign(
                  families,
                  value,
                  (w) => [w],
                  () => [],
                );
          for (const af of families?.names ?? [])
            if (!/^AF_[A-Z0-9]+$/.test(af))
              throw new Error(`${unit}: RestrictAddressFamilies=${value}: ${af} is not an AF_* name`);
        } else if ((FLAG_DIRECTIVES as readonly string[]).includes(key)) {
          flags[key as FlagDirective] = parseBoolean(unit, key, value);
        }
      }
    }
  }
  return { unit, syscalls, families, flags, groups };
}
