/**
 * systemd unit files as typed data. Values are written one directive a line; list values
 * become space-separated, and repeated directives (Environment=) stay repeated.
 */

export type DirectiveValue = string | number | boolean | readonly string[];
export type Section = Readonly<Record<string, DirectiveValue | readonly DirectiveValue[] | undefined>>;

export interface UnitFile {
  readonly Unit: Section;
  readonly Service?: Section;
  readonly Timer?: Section;
  readonly Install?: Section;
}

function value(v: DirectiveValue): string {
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v)) return (v as readonly string[]).join(" ");
  const text = String(v);
  if (/[\n\r]/.test(text)) throw new Error(`a systemd value cannot span lines: ${JSON.stringify(text)}`);
  return text;
}

/** Directives written once per list element; every other list is one space-separated value. */
const REPEATED = new Set([
  "Environment",
  "EnvironmentFile",
  "SystemCallFilter",
  "ExecStartPre",
  "ExecStartPost",
  "ReadWritePaths",
  "ConditionPathExists",
]);

/** Environment= assignments quoted for systemd: "NAME=value" with \ and " escaped. */
export const environment = (vars: Readonly<Record<string, string | number>>): string[] =>
  Object.entries(vars).map(([k, v]) => `"${k}=${String(v).replace(/[\\"]/g, (c) => `\\${c}`)}"`);

export function renderUnit(unit: UnitFile, header = "# Rendered by templates/host; do not edit on the host."): string {
  const lines = [header];
  for (const [name, section] of Object.entries(unit) as [string, Section | undefined][]) {
    if (!section || Object.keys(section).length === 0) continue;
    lines.push("", `[${name}]`);
    for (const [key, raw] of Object.entries(section)) {
      if (raw === undefined) continue;
      const values = REPEATED.has(key) && Array.isArray(raw) ? (raw as string[]) : [raw as DirectiveValue];
      for (const v of values) lines.push(`${key}=${value(v)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

const BASE_FAMILIES = ["AF_INET", "AF_INET6", "AF_UNIX"] as const;
const BASE_SYSCALL_FILTER = ["@system-service", "~@privileged @mount @swap @reboot @raw-io @module @obsolete"] as const;

/**
 * The common sandbox (systemd 252, Debian 12). tests/sandbox.test.ts proves, under strace, that
 * each daemon with a binary here does nothing it forbids; give a daemon more only through
 * `sandbox()`, with the reason.
 */
export const HARDENING: Section = {
  NoNewPrivileges: true,
  PrivateTmp: true,
  PrivateDevices: true,
  ProtectSystem: "strict",
  ProtectHome: true,
  ProtectKernelTunables: true,
  ProtectKernelModules: true,
  ProtectKernelLogs: true,
  ProtectControlGroups: true,
  ProtectClock: true,
  ProtectHostname: true,
  RestrictNamespaces: true,
  RestrictRealtime: true,
  RestrictSUIDSGID: true,
  LockPersonality: true,
  MemoryDenyWriteExecute: true,
  RestrictAddressFamilies: BASE_FAMILIES,
  SystemCallArchitectures: "native",
  SystemCallFilter: BASE_SYSCALL_FILTER,
  // A filtered call fails with EPERM instead of killing the service outright.
  SystemCallErrorNumber: "EPERM",
  CapabilityBoundingSet: "",
  UMask: "0027",
};

export interface SandboxAllowances {
  /** Address families on top of AF_INET, AF_INET6 and AF_UNIX (e.g. AF_NETLINK to list interfaces). */
  readonly families?: readonly string[];
  /**
   * System calls allowed again after the deny-list. systemd applies SystemCallFilter= lines in
   * order, so a later allow-list line re-adds calls an earlier `~` line removed
   * (src/core/load-fragment.c config_parse_syscall_filter).
   */
  readonly syscalls?: readonly string[];
  /** Directives of HARDENING replaced for this daemon (e.g. ProtectClock: false). */
  readonly overrides?: Section;
}

const SYSCALL_NAME = /^@?[a-z0-9_-]+$/;

/** HARDENING with what one daemon provably needs on top; bad names fail here, not on the host. */
export function sandbox(allow: SandboxAllowances = {}): Section {
  for (const family of allow.families ?? [])
    if (!/^AF_[A-Z0-9]+$/.test(family))
      throw new Error(`sandbox families: ${JSON.stringify(family)} is not an address family name like AF_NETLINK`);
  for (const call of allow.syscalls ?? [])
    if (!SYSCALL_NAME.test(call))
      throw new Error(`sandbox syscalls: ${JSON.stringify(call)} is not a system call or @group name`);
  for (const key of Object.keys(allow.overrides ?? {}))
    if (!(key in HARDENING)) throw new Error(`sandbox overrides: ${key} is not a HARDENING directive`);
  const syscalls = allow.syscalls ?? [];
  return {
    ...HARDENING,
    ...allow.overrides,
    RestrictAddressFamilies: [...BASE_FAMILIES, ...(allow.families ?? [])],
    SystemCallFilter: syscalls.length > 0 ? [...BASE_SYSCALL_FILTER, syscalls.join(" ")] : BASE_SYSCALL_FILTER,
  };
}
