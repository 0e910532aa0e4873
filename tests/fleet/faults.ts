/**
 * Faults done to a running fleet, and what must hold after each: a daemon killed with SIGKILL
 * is brought back by systemd (its unit's Restart=); a rebooted data host whose volume shows up
 * late comes back with its daemon started only after the mount, and the data it had.
 * Replacements are the matrix's (replacements.ts).
 */
import * as fs from "node:fs";
import { DATA_DAEMONS, DATA_MOUNTS } from "../../templates/host/bootstrap";
import { hasDataVolume } from "../../facts/topology";
import type { ContainerHost } from "./checks/host";
import { activeTargets, findTarget, instantQuery, targetProblem, type ExpectedTarget } from "./checks/prometheus";
import { checked, oneLine, type CheckResult } from "./checks/result";
import { unitActive, unitsActive } from "./checks/system";
import type { Cleanup } from "./cleanup";
import { bootAfterReboot } from "./container";
import { waitFor } from "./exec";
import { waitForSystemd } from "./readiness";
import { attachLoop, detachLoop, writeDiskLinks, type LoopVolume } from "./volume";

const unitProps = async (h: ContainerHost, unit: string): Promise<Record<string, string>> => {
  const r = await h.exec(["systemctl", "show", "-p", "MainPID,ActiveState,InvocationID,NRestarts", unit]);
  return Object.fromEntries(
    r.out
      .trim()
      .split("\n")
      .map((l) => l.split("=", 2) as [string, string]),
  );
};

/**
 * `kill -9` of the unit's main process; holds when systemd started it again (a new MainPID,
 * active, NRestarts one more) and the new run stays steady past RestartSec (unitActive) and,
 * when `target` is given, Prometheus scrapes it as up again.
 */
export function killAndRecover(
  h: ContainerHost,
  unit: string,
  prometheusUrl: string | undefined,
  target: ExpectedTarget | undefined,
  timeoutMs = 120_000,
): Promise<CheckResult> {
  return checked(`kill -9 ${unit}: systemd restarts it`, h.name, async () => {
    const before = await unitProps(h, unit);
    if (before.ActiveState !== "active" || !Number(before.MainPID))
      return { ok: false, detail: `not running before the kill: ${JSON.stringify(before)}` };
    const killed = await h.exec(["kill", "-9", before.MainPID]);
    if (killed.status !== 0) return { ok: false, detail: `kill -9 ${before.MainPID}: ${oneLine(killed.out)}` };
    const after = await waitFor(
      `${unit} on ${h.name} running again under a new pid`,
      async () => {
        const p = await unitProps(h, unit);
        if (p.ActiveState === "active" && Number(p.MainPID) && p.MainPID !== before.MainPID) return p;
        throw new Error(JSON.stringify(p));
      },
      { timeoutMs },
    );
    // systemd's Restart= counts in NRestarts; a start by anything else would not.
    if (Number(after.NRestarts) !== Number(before.NRestarts) + 1)
      return {
        ok: false,
        detail: `pid ${after.MainPID} is not systemd's restart: NRestarts ${before.NRestarts} -> ${after.NRestarts}`,
      };
    // Back, and staying back: the new run outlives RestartSec without another restart.
    const steady = await unitActive(h, unit);
    if (!steady.ok) return { ok: false, detail: `restarted as pid ${after.MainPID}, then ${steady.detail}` };
    let scraped = "";
    if (prometheusUrl && target) {
      // The kill may fall between two scrapes: the target is up again once a scrape after the
      // restart succeeded, which `up` alone cannot tell from the one before. Wait for a scrape
      // whose sample is newer than the restart.
      const restartedAt = Date.now() / 1000;
      await waitFor(
        `${target.job} ${target.address} scraped up after the restart`,
        async () => {
          const active = await activeTargets(prometheusUrl);
          const problem = targetProblem(target, active);
          if (problem) throw new Error(problem);
          const t = findTarget(target, active);
          return t && Date.parse(t.lastScrape) / 1000 > restartedAt ? true : undefined;
        },
        { timeoutMs },
      );
      scraped = `; Prometheus scrapes ${target.job} ${target.address} up again`;
    }
    return {
      ok: true,
      detail: `pid ${before.MainPID} killed, now pid ${after.MainPID} (restarts ${before.NRestarts} -> ${after.NRestarts})${scraped}`,
    };
  });
}

/** A sample Prometheus holds now: its own `up` series' latest timestamp (seconds). */
export async function recordedSample(prometheusUrl: string): Promise<number> {
  return waitFor(
    "a sample of Prometheus' own up series",
    async () => (await instantQuery(prometheusUrl, `timestamp(up{job="prometheus"})`))[0]?.value,
    { timeoutMs: 120_000 },
  );
}

/** The sample recorded at `stamp` is still answered, evaluated at that time: the same timestamp. */
export function historyKept(prometheusUrl: string, host: string, stamp: number, when: string): Promise<CheckResult> {
  return checked(`${when}: the series recorded before are still there`, host, async () => {
    const found = await waitFor(
      "Prometheus answering queries",
      async () => instantQuery(prometheusUrl, `timestamp(up{job="prometheus"})`, stamp),
      { timeoutMs: 180_000 },
    );
    const at = found[0]?.value;
    return {
      ok: at === stamp,
      detail:
        at === stamp
          ? `the sample of ${new Date(stamp * 1000).toISOString()} is answered`
          : `query at ${stamp} gave ${at === undefined ? "nothing" : at}: the history is gone`,
    };
  });
}

/** The role's data volume is mounted where the bootstrap mounts it, from the volume's device. */
export function volumeMounted(h: ContainerHost, volume: LoopVolume, when: string): Promise<CheckResult> {
  if (!hasDataVolume(h.role)) throw new Error(`${h.name} (${h.role}) has no data volume`);
  const mountPoint = DATA_MOUNTS[h.role].mountPoint;
  return checked(`${when}: data volume mounted on ${mountPoint}`, h.name, async () => {
    const r = await h.exec(["findmnt", "-n", "-o", "SOURCE,FSTYPE", mountPoint]);
    const [source, fstype] = r.out.trim().split(/\s+/);
    const ok = r.status === 0 && source === volume.device && fstype === "ext4";
    return { ok, detail: ok ? `${source} ${fstype}` : `findmnt: ${oneLine(r.out) || "not mounted"}` };
  });
}

/** The host path bound on /dev/disk (the stand-in for udev's links), from the container's spec. */
function diskDirOf(h: ContainerHost): string | undefined {
  return Object.entries(h.container.spec.readOnlyBinds).find(([, inside]) => inside === "/dev/disk")?.[0];
}

/** The mount unit systemd names for a mount point (systemd-escape --path; these paths need no escaping). */
export function mountUnitOf(mountPoint: string): string {
  if (!/^\/[a-z0-9/]+$/.test(mountPoint) || mountPoint.endsWith("/"))
    throw new Error(`mount point ${JSON.stringify(mountPoint)}: expected a plain absolute path`);
  return `${mountPoint.slice(1).replaceAll("/", "-")}.mount`;
}

const showProps = async (h: ContainerHost, unit: string, props: string[]): Promise<Record<string, string>> => {
  const r = await h.exec(["systemctl", "show", "-p", props.join(","), unit]);
  return Object.fromEntries(
    r.out
      .trim()
      .split("\n")
      .map((l) => l.split(/=(.*)/s, 2) as [string, string]),
  );
};

/**
 * The role's data daemon started only once its volume was mounted: the mount unit was active
 * before the daemon's main process started, in this boot (monotonic clock).
 */
export function mountedBeforeDaemon(h: ContainerHost, when: string): Promise<CheckResult> {
  if (!hasDataVolume(h.role)) throw new Error(`${h.name} (${h.role}) has no data volume`);
  const unit = DATA_DAEMONS[h.role];
  const mount = mountUnitOf(DATA_MOUNTS[h.role].mountPoint);
  return checked(`${when}: ${mount} active before ${unit} started`, h.name, async () => {
    const m = await showProps(h, mount, ["ActiveState", "ActiveEnterTimestampMonotonic"]);
    const d = await showProps(h, unit, ["ActiveState", "ExecMainStartTimestampMonotonic"]);
    const mounted = Number(m.ActiveEnterTimestampMonotonic);
    const started = Number(d.ExecMainStartTimestampMonotonic);
    const ok = m.ActiveState === "active" && mounted > 0 && started > 0 && started >= mounted;
    return {
      ok,
      detail:
        `${mount} ${m.ActiveState} at ${(mounted / 1e6).toFixed(2)} s, ${unit} ${d.ActiveState} started at ` +
        `${(started / 1e6).toFixed(2)} s${ok ? "" : ": the daemon ran before its volume was there"}`,
    };
  });
}

/**
 * Waits until the data daemon has either started, or is held back by nothing but its mount:
 * its start job is queued and none of the units it is ordered after has a job left except the
 * mount. Then attaching the volume decides the race the way a late EBS device does.
 */
async function daemonDecided(h: ContainerHost, unit: string, mount: string): Promise<string> {
  return waitFor(
    `${unit} on ${h.name} started, or waiting only for ${mount}`,
    async () => {
      const state = (await h.exec(["systemctl", "is-active", unit])).out.trim();
      if (state === "active" || state === "activating") return `${unit} ${state} before the volume was attached`;
      const jobs = (await h.exec(["systemctl", "list-jobs", "--no-legend", "--no-pager", "--plain"])).out
        .split("\n")
        .map((l) => l.trim().split(/\s+/)[1])
        .filter((u): u is string => Boolean(u));
      const after = ((await showProps(h, unit, ["After"])).After ?? "").split(/\s+/).filter(Boolean);
      const blocking = after.filter((u) => u !== mount && jobs.includes(u));
      if (jobs.includes(`${unit}.service`) && blocking.length === 0)
        return `${unit} queued, held back by ${after.includes(mount) ? mount : "nothing"}`;
      throw new Error(`${unit} ${state}; pending: ${blocking.join(" ") || "(no start job yet)"}`);
    },
    { timeoutMs: 120_000, intervalMs: 250 },
  );
}

/** Something the host keeps on its data volume, read back after a fault. */
export interface DataProbe {
  record(): Promise<void>;
  kept(when: string): Promise<CheckResult>;
}

/** Prometheus' history: a sample recorded before is still answered. */
export function prometheusHistory(h: ContainerHost, prometheusUrl: string): DataProbe {
  let stamp = 0;
  return {
    record: async () => void (stamp = await recordedSample(prometheusUrl)),
    kept: (when) => historyKept(prometheusUrl, h.name, stamp, when),
  };
}

/** A file written on the volume before (any data role): the same content afterwards. */
export function volumeToken(h: ContainerHost): DataProbe {
  if (!hasDataVolume(h.role)) throw new Error(`${h.name} (${h.role}) has no data volume`);
  const file = `${DATA_MOUNTS[h.role].mountPoint}/.fleet-token`;
  const token = `fleet-${process.pid}-${Date.now()}`;
  return {
    record: async () => {
      const r = await h.exec(["/bin/sh", "-c", `printf %s ${token} >${file} && sync`]);
      if (r.status !== 0) throw new Error(`writing ${file}: ${oneLine(r.out)}`);
    },
    kept: (when) =>
      checked(`${when}: what was written on the volume is still there`, h.name, async () => {
        const r = await h.exec(["cat", file]);
        const ok = r.status === 0 && r.out === token;
        return { ok, detail: ok ? `${file} read back` : `${file}: ${oneLine(r.out) || "missing"}` };
      }),
  };
}

/**
 * `systemctl reboot` inside the host; the harness boots the same root again when nspawn ends
 * (container.ts bootAfterReboot) with the volume's loop device detached, as an EBS device may
 * still be missing when systemd starts the boot's jobs. The fleet's fstab generator stand-in
 * (baseImage.ts FSTAB_GENERATOR) orders the `nofail` mount as weakly as EC2 does. Once the
 * data daemon has either started or is held back by its mount alone, the volume is attached
 * again. Then: systemd up, the mount active before the daemon started, every enabled unit
 * active, the volume mounted, and the data recorded before the reboot still there.
 */
export async function rebootDataHost(
  h: ContainerHost,
  volume: LoopVolume,
  probe: DataProbe,
  cleanup: Cleanup,
  log: (line: string) => void,
  /** Also done while the host is down (a stop and start: the fake EC2 moves or keeps its address). */
  whileDown?: () => void,
): Promise<CheckResult[]> {
  if (!hasDataVolume(h.role)) throw new Error(`${h.name} (${h.role}) has no data volume`);
  const unit = DATA_DAEMONS[h.role];
  const mount = mountUnitOf(DATA_MOUNTS[h.role].mountPoint);
  await probe.record();
  log(`${h.name}: rebooting`);
  const diskDir = diskDirOf(h);
  await h.exec(["systemctl", "reboot"]);
  h.container = await bootAfterReboot(h.container, cleanup, 120_000, () => {
    // udev would have made the by-uuid link of the now-formatted volume; the stand-in does it.
    if (diskDir && fs.existsSync(diskDir)) writeDiskLinks(diskDir, volume);
    detachLoop(volume);
    whileDown?.();
  });
  log(`${h.name}: booted again (nspawn pid ${h.container.nspawnPid}), volume not attached yet`);
  let decided: string;
  try {
    decided = await daemonDecided(h, unit, mount);
  } finally {
    attachLoop(volume);
  }
  log(`${h.name}: ${decided}; volume attached`);
  const systemd = await waitForSystemd(h.container, 300_000);
  return [
    {
      name: "after reboot: systemd running",
      host: h.name,
      ok: systemd.state === "running",
      detail: `${systemd.state}${systemd.failed.length ? `, failed: ${systemd.failed.join(" ")}` : ""}`,
    },
    await mountedBeforeDaemon(h, "after reboot (volume attached late)"),
    await volumeMounted(h, volume, "after reboot"),
    ...(await unitsActive(h)).map((r) => ({ ...r, name: `after reboot: ${r.name}` })),
    await probe.kept("after reboot"),
  ];
}
