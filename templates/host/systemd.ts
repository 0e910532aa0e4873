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

/** Sandboxing every service here can live with (systemd 252, Debian 12). */
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
  RestrictAddressFamilies: ["AF_INET", "AF_INET6", "AF_UNIX"],
  SystemCallArchitectures: "native",
  SystemCallFilter: ["@system-service", "~@privileged @mount @swap @reboot @raw-io @module @obsolete"],
  // A filtered call fails with EPERM instead of killing the service outright.
  SystemCallErrorNumber: "EPERM",
  CapabilityBoundingSet: "",
  UMask: "0027",
};
