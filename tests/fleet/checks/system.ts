/**
 * Checks of one host's own state, each against the same source the host was built from:
 * cloud-init's verdict, the bootstrap's marker (templates/host/bootstrap.ts BOOTSTRAP_DONE),
 * every pinned package against its apt pin (the role's bootstrap plan, from facts/versions.ts),
 * every unit the bootstrap enables (templates/host/units.ts servicesFor, which the bootstrap's
 * `systemctl enable` line is rendered from) active and steady past their RestartSec, the journal
 * free of sandbox denials, no failed unit, node_exporter's collectors that alerts and dashboards
 * read all succeeding, and the web host's logrotate policy.
 */
import { AMAZON_TIME_SYNC, SSHD_SETTINGS, TIMESYNCD_SERVICE } from "../../../templates/host/baseline";
import { acceptedPins } from "../../../facts/versions";
import { bootstrapPlan, BOOTSTRAP_DONE } from "../../../templates/host/bootstrap";
import { lokiNeverUnconfigured } from "./loki";
import { servicesFor, TITAN_APP_DIR } from "../../../templates/host/units";
import { LOGIN_USER } from "../layout";
import { SERVICES } from "../../../facts/topology";
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

/** One check per unit the role enables: active, and steady (see unitActive). */
export async function unitsActive(h: CheckHost): Promise<CheckResult[]> {
  return Promise.all(servicesFor(h.role).map((unit) => unitActive(h, unit)));
}

/** Milliseconds in a systemd time span as `systemctl show` prints it ("5s", "100ms", "1min 30s"). */
export function timespanMs(span: string): number {
  const units: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };
  const parts = span.trim().split(/\s+/);
  let total = 0;
  for (const part of parts) {
    const m = /^(\d+(?:\.\d+)?)(us|ms|s|min|h|d)$/.exec(part);
    if (m === null)
      throw new Error(`RestartUSec: "${span}" is not a systemd time span (expected e.g. 100ms, 5s, 1min 30s)`);
    total += Number(m[1]) * units[m[2]];
  }
  return total;
}

/** What `systemctl show` says of a unit's run, for one look at it. */
export interface UnitState {
  readonly activeState: string;
  readonly subState: string;
  readonly mainPid: string;
  readonly nRestarts: string;
}

/**
 * Why a unit seen `first` and then `later` is not one steady run: not active, or another main
 * process, or a restart counted between the two looks. undefined when it ran throughout.
 */
export function unsteady(first: UnitState, later: UnitState): string | undefined {
  if (later.activeState !== "active" || later.subState !== "running") return `${later.activeState} (${later.subState})`;
  if (later.mainPid !== first.mainPid) return `main pid ${first.mainPid} became ${later.mainPid}`;
  if (later.nRestarts !== first.nRestarts) return `restarts ${first.nRestarts} became ${later.nRestarts}`;
  return undefined;
}

/** Margin past RestartSec: systemd's restart job plus the daemon's exec before its pid shows. */
const STEADY_MARGIN_MS = 2_000;

/**
 * The unit is active (running) and stays one run for longer than its RestartSec: the same main
 * pid and no restart counted (NRestarts) from the first look to the last. A daemon that dies and
 * is restarted is "active" again within RestartSec, so only a watch longer than that tells a
 * crash loop from a steady run. Polled, and failed at the first look that differs.
 */
export function unitActive(h: CheckHost, unit: string): Promise<CheckResult> {
  return checked(`unit ${unit} active and steady`, h.name, async () => {
    const show = async () => {
      const r = await h.exec([
        "systemctl",
        "show",
        "-p",
        "ActiveState,SubState,MainPID,NRestarts,Result,RestartUSec",
        unit,
      ]);
      const p = Object.fromEntries(
        r.out
          .trim()
          .split("\n")
          .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      ) as Record<string, string | undefined>;
      const state: UnitState = {
        activeState: p.ActiveState ?? "?",
        subState: p.SubState ?? "?",
        mainPid: p.MainPID ?? "?",
        nRestarts: p.NRestarts ?? "?",
      };
      return { state, result: p.Result ?? "?", restartSec: p.RestartUSec ?? "?" };
    };
    const lastLog = async () =>
      oneLine((await h.exec(["journalctl", "-u", unit, "-n", "5", "--no-pager", "-o", "cat"])).out);
    const first = await show();
    const describe = (s: UnitState) =>
      `${s.activeState} (${s.subState}), main pid ${s.mainPid}, restarts ${s.nRestarts}`;
    if (first.state.activeState !== "active")
      return { ok: false, detail: `${describe(first.state)}, result ${first.result}; last log: ${await lastLog()}` };
    const watchMs = timespanMs(first.restartSec) + STEADY_MARGIN_MS;
    const until = Date.now() + watchMs;
    for (;;) {
      const now = await show();
      const why = unsteady(first.state, now.state);
      if (why !== undefined)
        return {
          ok: false,
          detail: `not steady within ${watchMs} ms (RestartSec ${first.restartSec}): ${why}; was ${describe(first.state)}; last log: ${await lastLog()}`,
        };
      if (Date.now() >= until) break;
      await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, until - Date.now()))));
    }
    return {
      ok: true,
      detail: `${describe(first.state)}, unchanged for ${watchMs} ms (RestartSec ${first.restartSec} + ${STEADY_MARGIN_MS} ms)`,
    };
  });
}

/** What a refused syscall or address family looks like in a daemon's log. */
export const DENIAL =
  /\bEPERM\b|\bEAFNOSUPPORT\b|\bEROFS\b|\bEACCES\b|operation not permitted|address family not supported|read-only file system|permission denied/i;

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

/**
 * `systemctl --failed` lists no unit; each that does is named with its result, exit status and
 * last log lines. No exclusion: the early-boot units once seen failed here (ifupdown-pre,
 * systemd-network-generator, systemd-journal-flush, status 219 "Failed at step CGROUP") failed
 * because the containers shared one cgroup tree, which container.ts ownCgroup now prevents.
 */
export function noFailedUnits(h: CheckHost): Promise<CheckResult> {
  return checked("no failed unit (systemctl --failed)", h.name, async () => {
    const r = await h.exec(["systemctl", "--failed", "--no-legend", "--plain", "--full"]);
    if (r.status !== 0) return { ok: false, detail: `systemctl --failed: ${oneLine(r.out)}` };
    const failed = r.out
      .split("\n")
      .map((l) => l.trim().split(/\s+/)[0])
      .filter((u): u is string => u !== undefined && u !== "");
    const logs = await Promise.all(
      failed.slice(0, 3).map(async (u) => {
        const result = await h.exec(["systemctl", "show", "-p", "Result,ExecMainStatus", "--value", u]);
        const log = await h.exec(["journalctl", "-u", u, "-n", "3", "--no-pager", "-o", "cat"]);
        return `${u} (${oneLine(result.out, 60)}): ${oneLine(log.out, 200)}`;
      }),
    );
    return {
      ok: failed.length === 0,
      detail: failed.length === 0 ? "none" : `failed: ${failed.join(", ")}; ${logs.join(" | ")}`,
    };
  });
}

/**
 * node_exporter's collectors whose metrics the alerts (templates/alerts.ts) and dashboards
 * (templates/grafana/dashboards.ts) read, by metric-name prefix. checks.test.ts proves every
 * node_ metric those render maps to one of them.
 */
export const NODE_COLLECTORS: Readonly<Record<string, string>> = {
  node_cpu_: "cpu",
  node_memory_: "meminfo",
  node_load: "loadavg",
  node_filesystem_: "filesystem",
  node_network_: "netdev",
  node_disk_: "diskstats",
  node_timex_: "timex",
};

/** The collector a node_ metric comes from, per NODE_COLLECTORS. */
export const collectorOf = (metric: string): string | undefined =>
  Object.entries(NODE_COLLECTORS).find(([prefix]) => metric.startsWith(prefix))?.[1];

/** Each collector's node_scrape_collector_success value in an exposition ("missing" if absent). */
export function collectorSuccess(exposition: string, collectors: readonly string[]): Map<string, string> {
  const seen = new Map<string, string>();
  for (const m of exposition.matchAll(/^node_scrape_collector_success\{collector="([^"]+)"\} (\S+)$/gm))
    seen.set(m[1], m[2]);
  return new Map(collectors.map((c) => [c, seen.get(c) ?? "missing"]));
}

/**
 * Every collector the alerts and dashboards read reports success on this host. A denial that
 * the daemon swallows (a collector's error is logged at debug level, or not at all) shows here
 * and nowhere else.
 */
export function nodeCollectorsSucceed(h: CheckHost): Promise<CheckResult> {
  const collectors = [...new Set(Object.values(NODE_COLLECTORS))];
  return checked(`node_exporter collectors ${collectors.join(",")} succeed`, h.name, async () => {
    const url = `http://${h.privateIp}:${SERVICES.nodeExporter.port}/metrics`;
    const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    if (!r.ok) return { ok: false, detail: `GET ${url} answered ${r.status}` };
    const values = collectorSuccess(await r.text(), collectors);
    const bad = [...values].filter(([, v]) => v !== "1");
    return {
      ok: bad.length === 0,
      detail:
        bad.length === 0
          ? `${collectors.length} collector(s) report success 1`
          : `node_scrape_collector_success: ${bad.map(([c, v]) => `${c}=${v}`).join(", ")}`,
    };
  });
}

/**
 * The quick start's disk-fill demo runs as documented: the login user, through sudo without a
 * password, at the path the README gives (--help: the demo itself would fill the build
 * machine's disk, which a container shares; titan/diskfill.py is tested by the app's suite).
 */
export function diskFillDemoRuns(h: CheckHost): Promise<CheckResult> {
  const demo = `${TITAN_APP_DIR}/demo/disk-fill.sh`;
  return checked(`the quick start's demo runs: sudo ${demo} --help as ${LOGIN_USER}`, h.name, async () => {
    const r = await h.exec(["runuser", "-u", LOGIN_USER, "--", "sudo", "-n", demo, "--help"]);
    const ok = r.status === 0 && /--target-pct/.test(r.out);
    return { ok, detail: ok ? "usage printed" : `exit ${r.status}: ${oneLine(r.out)}` };
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
  results.push(await noFailedUnits(h));
  results.push(await nodeCollectorsSucceed(h));
  results.push(await sshdHardened(h), await timeSyncConfigured(h));
  if (h.role === "web") results.push(await logrotatePolicy(h), await diskFillDemoRuns(h));
  if (h.role === "loki") results.push(await lokiNeverUnconfigured(h));
  return results;
}
