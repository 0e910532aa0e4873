/**
 * "No other host is touched", proven on the hosts: a fingerprint of everything a push could
 * change (every active service's InvocationID, activation time and main pid, which a restart
 * renews; the mtime of every file under the push's staging and install directories),
 * taken before and after a change is applied, and compared.
 */
import { LOGIN_USER } from "../layout";
import { shell, type CheckHost } from "./host";
import type { CheckResult } from "./result";

/**
 * Where a push leaves files: the login user's staging tree (infra/delivery/pushTree.ts) and the
 * directories the push scripts install into. Missing ones are skipped.
 */
export const PUSHED_DIRS = [
  `/home/${LOGIN_USER}/titan-staging`,
  "/etc/prometheus",
  "/etc/default/prometheus",
  "/etc/loki",
  "/etc/alloy",
  "/etc/default/alloy",
  "/etc/grafana",
  "/opt/titan",
];

export interface Fingerprint {
  /** unit -> "InvocationID ActiveEnterTimestampMonotonic MainPID" */
  readonly units: ReadonlyMap<string, string>;
  /** path -> mtime (seconds, with fraction) */
  readonly files: ReadonlyMap<string, string>;
}

export async function fingerprint(h: CheckHost): Promise<Fingerprint> {
  const units = await shell(
    h,
    "systemctl list-units --type=service --state=active --plain --no-legend | awk '{print $1}' | " +
      "while read -r u; do printf '%s %s\\n' \"$u\" \"$(systemctl show -p InvocationID,ActiveEnterTimestampMonotonic,MainPID --value \"$u\" | tr '\\n' ' ')\"; done",
  );
  if (units.status !== 0) throw new Error(`listing units on ${h.name}: ${units.out}`);
  const files = await shell(
    h,
    `for d in ${PUSHED_DIRS.join(" ")}; do [ -e "$d" ] && find "$d" -printf '%p %T@\\n'; done; true`,
  );
  const toMap = (text: string) =>
    new Map(
      text
        .split("\n")
        .filter(Boolean)
        .map((l) => {
          const i = l.indexOf(" ");
          return [l.slice(0, i), l.slice(i + 1).trim()] as [string, string];
        }),
    );
  return { units: toMap(units.out), files: toMap(files.out) };
}

/** What differs between two fingerprints: restarted units and files made, changed or removed. */
export function differences(before: Fingerprint, after: Fingerprint): { units: string[]; files: string[] } {
  const diff = (a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>) =>
    [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).sort();
  return { units: diff(before.units, after.units), files: diff(before.files, after.files) };
}

/** The host is exactly as before: no unit restarted, no file of a push touched. */
export function untouched(h: CheckHost, before: Fingerprint, after: Fingerprint, change: string): CheckResult {
  const d = differences(before, after);
  const ok = d.units.length === 0 && d.files.length === 0;
  return {
    name: `${change}: host untouched (units, pushed files)`,
    host: h.name,
    ok,
    detail: ok
      ? `${before.units.size} units not restarted, ${before.files.size} files unchanged`
      : `restarted: ${d.units.join(" ") || "-"}; files: ${d.files.slice(0, 10).join(" ") || "-"}`,
  };
}

/** Exactly `units` restarted on the host (nothing else did), whatever files changed. */
export function onlyRestarted(
  h: CheckHost,
  before: Fingerprint,
  after: Fingerprint,
  units: readonly string[],
  change: string,
): CheckResult {
  const d = differences(before, after);
  const want = units.map((u) => (u.endsWith(".service") ? u : `${u}.service`)).sort();
  const ok = JSON.stringify(d.units) === JSON.stringify(want);
  return {
    name: `${change}: only ${want.join(" ")} restarted`,
    host: h.name,
    ok,
    detail: `restarted: ${d.units.join(" ") || "none"}; files changed: ${d.files.length}`,
  };
}
