/**
 * "No other host is touched", proven on the hosts: a fingerprint of everything a push could
 * change (every active service's InvocationID, activation time and main pid, which a restart
 * renews; the mtime of every file under the push's staging and install directories),
 * taken before and after a change is applied, and compared.
 */
import { LOGIN_USER } from "../layout";
import { shell, type CheckHost } from "./host";
import { applyUpdate, type ProvisionedFleet, type UpdateResult } from "../provision";
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
  "/etc/titan-remediation",
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
    "systemctl list-units --type=service --state=running --plain --no-legend | awk '{print $1}' | " +
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

/**
 * A login's own systemd user manager (user@<uid>.service): logind starts it with a user's first
 * session and stops it once the last one has ended (after UserStopDelaySec=, 10 s by default in
 * Debian 12's systemd 252, logind.conf(5)). Every SSH login makes one, the verification's log
 * markers on the web hosts included, so whether it is still running when a fingerprint is taken
 * is timing; no push restarts it.
 */
const isLoginManager = (unit: string): boolean => /^user@\d+\.service$/.test(unit);

/**
 * What differs between two fingerprints: services running before that were restarted or
 * stopped, and files made, changed or removed. A service that runs only afterwards is not
 * counted: systemd's own timers start short jobs at any time (apt-daily, tmpfiles-clean).
 */
export function differences(before: Fingerprint, after: Fingerprint): { units: string[]; files: string[] } {
  const units = [...before.units.keys()]
    .filter((k) => !isLoginManager(k) && before.units.get(k) !== after.units.get(k))
    .sort();
  const files = [...new Set([...before.files.keys(), ...after.files.keys()])]
    .filter((k) => before.files.get(k) !== after.files.get(k))
    .sort();
  return { units, files };
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

/**
 * The verification's log markers run whenever something the verification covers changed, any
 * host's push included (infra/delivery/pipeline.ts: `${host}-log-marker`, triggered by the
 * digest of the spec and every push), so another host's change appends a line to each web
 * host's verify.log; they are no part of any host's push. With nothing changed they do not run
 * (secondUpNoOp excuses nothing).
 */
export const isVerificationStep = (resource: string): boolean => /-log-marker$/.test(resource);

const fingerprints = (hosts: readonly CheckHost[]) => Promise.all(hosts.map(fingerprint));

/**
 * A configuration change applied as `pulumi up` would (provision.ts applyUpdate): only the pushes
 * of the hosts `restarts` names (its owners) run, on each owner only its units restart, every
 * other host is untouched. An owner not booted in this run must at least have the steps the
 * engine would run planned. `ended` is when the up returned, before the hosts were read again.
 */
export async function changesApplied(
  pf: ProvisionedFleet,
  hosts: readonly CheckHost[],
  change: string,
  configChanges: Record<string, string | null>,
  restarts: Readonly<Record<string, readonly string[]>>,
): Promise<{ results: CheckResult[]; update: UpdateResult; started: number; ended: number }> {
  const owners = Object.keys(restarts);
  const before = await fingerprints(hosts);
  // "config change -> live" counts from here: the start of the `up`.
  const started = Date.now();
  const update = await applyUpdate(pf, configChanges);
  const ended = Date.now();
  const after = await fingerprints(hosts);
  const ran = update.ran.map((r) => `${r.host}:${r.resource} (${r.action})`);
  const strays = update.ran.filter((r) => !owners.includes(r.host) && !isVerificationStep(r.resource));
  const unbootedStrays = update.notRun.filter(
    (n) =>
      /is not in this fleet run/.test(n.why) &&
      !owners.some((o) => n.why.includes(` ${o} `)) &&
      !isVerificationStep(n.resource),
  );
  const silent = owners.filter((owner) =>
    hosts.some((h) => h.name === owner)
      ? !update.ran.some((r) => r.host === owner && !isVerificationStep(r.resource))
      : // With the owner not booted, its steps must at least be the ones the engine would run.
        !update.notRun.some((n) => n.why.includes(` ${owner} `)),
  );
  const ok = strays.length === 0 && unbootedStrays.length === 0 && silent.length === 0;
  const results: CheckResult[] = [
    {
      name: `${change}: only the ${owners.join(" and ")} ${owners.length === 1 ? "push runs" : "pushes run"}`,
      host: "fleet",
      ok,
      detail: `ran: ${ran.join(", ") || "nothing"}; not run: ${
        update.notRun.map((n) => `${n.resource} (${n.action}: ${n.why})`).join(", ") || "nothing"
      }${silent.length ? `; nothing ran or was planned on ${silent.join(", ")}` : ""}`,
    },
  ];
  hosts.forEach((h, i) =>
    results.push(
      restarts[h.name]
        ? onlyRestarted(h, before[i], after[i], restarts[h.name], change)
        : untouched(h, before[i], after[i], change),
    ),
  );
  return { results, update, started, ended };
}

/** changesApplied with one owner: only `owner`'s push runs and only `restarts` restart there. */
export async function changeApplied(
  pf: ProvisionedFleet,
  hosts: readonly CheckHost[],
  change: string,
  configChanges: Record<string, string | null>,
  owner: string,
  restarts: readonly string[],
): Promise<{ results: CheckResult[]; update: UpdateResult; started: number }> {
  const { results, update, started } = await changesApplied(pf, hosts, change, configChanges, { [owner]: restarts });
  return { results, update, started };
}

/**
 * `pulumi up` again with nothing changed (provision.ts applyUpdate of no change), Molecule's
 * idempotence step: the engine runs no command, remote or local (the verification and its
 * markers included), and every host is exactly as before: no service restarted, no pushed
 * file touched.
 */
export async function secondUpNoOp(pf: ProvisionedFleet, hosts: readonly CheckHost[]): Promise<CheckResult[]> {
  const change = "second up with nothing changed";
  const before = await fingerprints(hosts);
  const update = await applyUpdate(pf, {});
  const after = await fingerprints(hosts);
  const planned = [
    ...update.ran.map((r) => `ran ${r.host}:${r.resource} (${r.action})`),
    ...update.notRun.map((n) => `would run ${n.resource} (${n.action}: ${n.why})`),
  ];
  return [
    {
      name: `${change}: no command runs`,
      host: "fleet",
      ok: planned.length === 0,
      detail: planned.join(", ") || "nothing ran, nothing planned",
    },
    ...hosts.map((h, i) => untouched(h, before[i], after[i], change)),
  ];
}
