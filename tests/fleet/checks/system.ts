/**
 * Checks of one host's own state, each against the same source the host was built from:
 * cloud-init's verdict, the bootstrap's marker (templates/host/bootstrap.ts BOOTSTRAP_DONE),
 * every pinned package against its apt pin (the role's bootstrap plan, from facts/versions.ts),
 * every unit the bootstrap enables (templates/host/units.ts servicesFor, which the bootstrap's
 * `systemctl enable` line is rendered from), the journal free of sandbox denials, and the web
 * host's logrotate policy.
 */
import { AMAZON_TIME_SYNC, SSHD_SETTINGS, TIMESYNCD_SERVICE } from "../../../templates/host/baseline";
import { acceptedPins } from "../../../facts/versions";
import { bootstrapPlan, BOOTSTRAP_DONE } from "../../../templates/host/bootstrap";
import { lokiNeverUnconfigured } from "./loki";
import { servicesFor } from "../../../templates/host/units";
import { shell, type CheckHost } from "./host";
import { checked, oneLine, type CheckResult } from "./result";

/** cloud-init finished (status done) and its result.json lists no error. */
export function cloudInitFinished(h: CheckHost): Promise<CheckResult> {
  return checked("cloud-init finished without errors", h.name, async () => {
    const status = await h.exec(["cloud-init", "status", "--long"]);
    const state = /^status:\s*(\S+)/m.exec(status.out)?.[1] ?? "unknown";
    const raw = await h.exec(["cat", "/run/cloud-init/result.json"]);
    if (raw.status !== 0) return { ok: false, detail: `status ${state}; no result.json: ${oneLine(raw.out)}` };
    const v1 = (JSON.parse(raw.out) as { v1?: { errors?: unknown[]; recoverable_errors?: Record<string, unknown[]> } })
      .v1;
    const errors = v1?.errors ?? ["result.json has no v1.errors"];
    const recoverable = Object.entries(v1?.recoverable_errors ?? {}).filter(([, list]) => list.length > 0);
    const ok = state === "done" && errors.length === 0 && recoverable.length === 0;
    return {
      ok,
      detail: ok
        ? "status done, result.json errors: []"
        : `status ${state}; errors ${oneLine(JSON.stringify(errors))}; recoverable ${oneLine(JSON.stringify(recoverable))}`,
    };
  });
}

/** The marker the bootstrap writes last, holding the time it finished. */
export function bootstrapMarker(h: CheckHost): Promise<CheckResult> {
  return checked(`bootstrap marker ${BOOTSTRAP_DONE}`, h.name, async () => {
    const r = await h.exec(["cat", BOOTSTRAP_DONE]);
    const ok = r.status === 0 && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(r.out.trim());
    return { ok, detail: ok ? `written ${r.out.trim()}` : `missing or malformed: ${oneLine(r.out)}` };
  });
}

/**
 * An apt preferences glob (`*` and `[0-9]`-style classes are what the pins use) as an anchored
 * regular expression.
 */
export const pinPattern = (glob: string): RegExp =>
  new RegExp(
    `^${glob
      .split(/(\[[^\]]+\])/)
      .map((part, i) => (i % 2 === 1 ? part : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")))
      .join("")}$`,
  );

/** One check per pinned package of the role: installed, and its version matches the pin. */
export async function pinnedPackages(h: CheckHost): Promise<CheckResult[]> {
  const plan = bootstrapPlan(h.role, h.dataVolumeId);
  return Promise.all(
    plan.pinned.map((p) =>
      checked(`${p.package} at its pin ${acceptedPins(p).join(" or ")}`, h.name, async () => {
        const r = await h.exec(["dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", p.package]);
        const [status, version] = r.out.trim().split(" ");
        const ok =
          r.status === 0 &&
          status === "installed" &&
          acceptedPins(p).some((pin) => pinPattern(pin).test(version ?? ""));
        return { ok, detail: r.status === 0 ? `${status} ${version}` : oneLine(r.out) };
      }),
    ),
  );
}

/** One check per unit the role enables: active, with its main pid. */
export async function unitsActive(h: CheckHost): Promise<CheckResult[]> {
  return Promise.all(servicesFor(h.role).map((unit) => unitActive(h, unit)));
}

export function unitActive(h: CheckHost, unit: string): Promise<CheckResult> {
  return checked(`unit ${unit} active`, h.name, async () => {
    const r = await h.exec(["systemctl", "show", "-p", "ActiveState,SubState,MainPID,NRestarts,Result", unit]);
    const p = Object.fromEntries(
      r.out
        .trim()
        .split("\n")
        .map((l) => l.split("=", 2) as [string, string]),
    );
    const ok = p.ActiveState === "active";
    let detail = `${p.ActiveState ?? "?"} (${p.SubState ?? "?"}), main pid ${p.MainPID ?? "?"}, restarts ${p.NRestarts ?? "?"}`;
    if (!ok) {
      const log = await h.exec(["journalctl", "-u", unit, "-n", "5", "--no-pager", "-o", "cat"]);
      detail += `, result ${p.Result ?? "?"}; last log: ${oneLine(log.out)}`;
    }
    return { ok, detail };
  });
}

/** What a refused syscall or address family looks like in a daemon's log. */
export const DENIAL = /EPERM|EAFNOSUPPORT|operation not permitted|address family not supported/i;

/**
 * Lines that match DENIAL but are not a sandbox's doing, each by its precise cause. The
 * container's capability bounding set lacks CAP_SYS_RESOURCE (systemd-nspawn does not retain it;
 * seen in /proc/<init>/status CapBnd), so setrlimit() may not raise a hard limit above what
 * nspawn started with: dbus-daemon's attempt to raise RLIMIT_NOFILE to 65536 (dbus
 * bus/bus.c, "Failed to set fd limit") and pam_limits' core limit for sudo sessions fail with
 * EPERM. On EC2 PID 1 holds CAP_SYS_RESOURCE, and neither process runs under our sandboxes.
 */
export const NOT_SANDBOX_DENIALS: readonly { readonly line: RegExp; readonly cause: string }[] = [
  {
    line: /dbus-daemon\[\d+\]: .*Failed to set fd limit to \d+: Operation not permitted/,
    cause: "setrlimit(RLIMIT_NOFILE) without CAP_SYS_RESOURCE in the container",
  },
  {
    line: /pam_limits\(\w+:session\): Could not set limit for '\w+' to .*: Operation not permitted/,
    cause: "setrlimit() from pam_limits without CAP_SYS_RESOURCE in the container",
  },
];

/** Lines of a journal that report a denial not explained by NOT_SANDBOX_DENIALS. */
export const sandboxDenials = (journal: string): string[] =>
  journal.split("\n").filter((l) => DENIAL.test(l) && !NOT_SANDBOX_DENIALS.some((x) => x.line.test(l)));

/** No line of the journal (every boot it kept) reports a denied operation. */
export function noSandboxDenials(h: CheckHost): Promise<CheckResult> {
  return checked("no sandbox denial in the journal", h.name, async () => {
    const r = await h.exec(["journalctl", "--no-pager", "-o", "short-iso"], 120_000);
    if (r.status !== 0) return { ok: false, detail: `journalctl failed: ${oneLine(r.out)}` };
    const lines = r.out.split("\n").filter((l) => DENIAL.test(l));
    const denials = sandboxDenials(lines.join("\n"));
    return {
      ok: denials.length === 0,
      detail:
        denials.length === 0
          ? `none (${lines.length} rlimit line(s) excluded by cause)`
          : `${denials.length} line(s): ${oneLine(denials.slice(0, 3).join(" | "), 600)}`,
    };
  });
}

/** The app's logrotate policy as logrotate itself reads it (debug mode: nothing is rotated). */
export function logrotatePolicy(h: CheckHost, file = "/etc/logrotate.d/titan"): Promise<CheckResult> {
  return checked(`logrotate -d ${file}`, h.name, async () => {
    const r = await shell(h, `logrotate -d ${file} 2>&1`);
    const errors = r.out.split("\n").filter((l) => /^error:/i.test(l));
    const ok = r.status === 0 && errors.length === 0 && /rotating pattern/.test(r.out);
    return {
      ok,
      detail: ok
        ? oneLine(r.out.split("\n").find((l) => /rotating pattern/.test(l)) ?? "")
        : `exit ${r.status}: ${oneLine(errors.join(" | ") || r.out)}`,
    };
  });
}

/** `sshd -T` (the effective settings, every include applied) against what user data sets. */
export function sshdHardened(h: CheckHost): Promise<CheckResult> {
  return checked("sshd -T: keys only, no root login, no forwarding", h.name, async () => {
    const r = await h.exec(["sshd", "-T"]);
    if (r.status !== 0) return { ok: false, detail: `sshd -T: ${oneLine(r.out)}` };
    const effective = new Map(
      r.out.split("\n").map((l) => [l.split(" ", 1)[0].toLowerCase(), l.slice(l.indexOf(" ") + 1).trim()]),
    );
    const wrong = Object.entries(SSHD_SETTINGS).filter(([k, v]) => effective.get(k.toLowerCase()) !== v);
    return {
      ok: wrong.length === 0,
      detail:
        wrong.length === 0
          ? `${Object.keys(SSHD_SETTINGS).length} settings in force (the push logged in with its key after they were)`
          : wrong.map(([k, v]) => `${k} is ${effective.get(k.toLowerCase()) ?? "unset"}, expected ${v}`).join("; "),
    };
  });
}

/**
 * systemd-timesyncd enabled with the Amazon Time Sync Service as its server, as timesyncd
 * merges its configuration. Its unit has ConditionVirtualization=!container, so in the fleet it
 * is enabled but never runs: synchronisation itself is EC2's to prove.
 */
export function timeSyncConfigured(h: CheckHost): Promise<CheckResult> {
  return checked(`${TIMESYNCD_SERVICE} enabled, server ${AMAZON_TIME_SYNC}`, h.name, async () => {
    const enabled = (await h.exec(["systemctl", "is-enabled", `${TIMESYNCD_SERVICE}.service`])).out.trim();
    const cat = await h.exec(["systemd-analyze", "cat-config", "systemd/timesyncd.conf"]);
    const servers = cat.out
      .split("\n")
      .filter((l) => /^NTP=/.test(l))
      .map((l) => l.slice(4));
    const last = servers[servers.length - 1];
    const ok = enabled === "enabled" && last === AMAZON_TIME_SYNC;
    return { ok, detail: `${enabled}; NTP= ${servers.join(" | ") || "(none)"}` };
  });
}

/** Every check of one host's own state. */
export async function hostChecks(h: CheckHost): Promise<CheckResult[]> {
  const results = [await cloudInitFinished(h), await bootstrapMarker(h)];
  results.push(...(await pinnedPackages(h)), ...(await unitsActive(h)), await noSandboxDenials(h));
  results.push(await sshdHardened(h), await timeSyncConfigured(h));
  if (h.role === "web") results.push(await logrotatePolicy(h));
  if (h.role === "loki") results.push(await lokiNeverUnconfigured(h));
  return results;
}
