/**
 * The machine's own numbers, read from the kernel independently of node_exporter and Prometheus.
 * Every "host" of the run shares this machine's CPUs, memory and root disk, so an alert on them
 * may rightly fire here (a busy CI runner, a nearly full disk); the checks compare the alert with
 * these figures instead of assuming an idle machine.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";

/** USER_HZ: /proc/stat counts in 1/100 s on Linux. */
const USER_HZ = 100;

interface CpuReading {
  readonly tMs: number;
  /** Idle seconds summed over all CPUs. */
  readonly idleS: number;
  readonly cpus: number;
}

function readCpu(): CpuReading {
  const lines = fs.readFileSync("/proc/stat", "utf8").split("\n");
  const total = lines[0].split(/\s+/);
  if (total[0] !== "cpu") throw new Error("unexpected /proc/stat");
  return {
    tMs: Date.now(),
    idleS: Number(total[4]) / USER_HZ,
    cpus: lines.filter((l) => /^cpu\d+ /.test(l)).length,
  };
}

/** Samples /proc/stat every second while the run lasts. */
export class CpuSampler {
  private readonly readings: CpuReading[] = [readCpu()];
  private readonly timer = setInterval(() => this.readings.push(readCpu()), 1000);

  constructor() {
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private nearest(tMs: number): CpuReading {
    return this.readings.reduce((best, r) => (Math.abs(r.tMs - tMs) < Math.abs(best.tMs - tMs) ? r : best));
  }

  /** Idle seconds (all CPUs) between two instants, from the nearest readings. */
  idleBetween(fromMs: number, toMs: number): { idleS: number; seconds: number; cpus: number } {
    this.readings.push(readCpu());
    const a = this.nearest(fromMs);
    const b = this.nearest(toMs);
    const seconds = (b.tMs - a.tMs) / 1000;
    if (seconds <= 0) throw new Error("no CPU readings span the window");
    return { idleS: b.idleS - a.idleS, seconds, cpus: b.cpus };
  }
}

/**
 * The CPU alert's value from kernel figures, both as the machine really is (`steady`) and as
 * PromQL's rate() computes it at `atS` over a `windowS` window from samples taken between
 * `firstS` and `lastS` (`count` of them): rate() extrapolates at most half an interval past the
 * samples and divides by the whole window, so a window longer than the data reads as busy CPU.
 */
export function cpuAlertValues(
  sampler: CpuSampler,
  s: { firstS: number; lastS: number; count: number; atS: number; windowS: number },
): { steady: number; asPromql: number; windowFull: boolean } {
  const k = sampler.idleBetween(s.firstS * 1000, s.lastS * 1000);
  const sampled = s.lastS - s.firstS;
  const avg = sampled / (s.count - 1);
  let toStart = s.firstS - (s.atS - s.windowS);
  let toEnd = s.atS - s.lastS;
  if (toStart >= avg * 1.1) toStart = avg / 2;
  if (toEnd >= avg * 1.1) toEnd = avg / 2;
  const idleRate = (k.idleS * ((sampled + toStart + toEnd) / sampled)) / s.windowS;
  return {
    steady: 100 * (1 - k.idleS / (k.seconds * k.cpus)),
    asPromql: 100 * (1 - idleRate / k.cpus),
    windowFull: s.firstS - (s.atS - s.windowS) < avg * 1.1,
  };
}

/** Root filesystem used %, as the disk alert computes it: 1 - avail/size (root's reserve counts as used). */
export function rootDiskPercent(): number {
  const st = fs.statfsSync("/");
  return 100 * (1 - st.bavail / st.blocks);
}

/** Memory used %, as the memory alert computes it: 1 - MemAvailable/MemTotal. */
export function memoryPercent(): number {
  const info = fs.readFileSync("/proc/meminfo", "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(info)?.[1]);
  return 100 * (1 - kb("MemAvailable") / kb("MemTotal"));
}

/**
 * The kernel's clock discipline, as adjtimex(2) reports it (read-only: modes 0), through
 * Python's ctypes since Node has no binding: what node_exporter's timex collector reads
 * (prometheus/node_exporter collector/timex.go: sync_status is 1 unless STA_UNSYNC is set,
 * maxerror in microseconds, offset in micro- or nanoseconds by STA_NANO).
 */
export interface KernelClock {
  readonly synchronised: boolean;
  readonly maxErrorSeconds: number;
  readonly offsetSeconds: number;
}

const ADJTIMEX_PY = `
import ctypes, ctypes.util, json
L, I = ctypes.c_long, ctypes.c_int
class Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", L), ("freq", L), ("maxerror", L), ("esterror", L),
                ("status", I), ("constant", L), ("precision", L), ("tolerance", L), ("sec", L), ("usec", L),
                ("tick", L), ("ppsfreq", L), ("jitter", L), ("shift", I), ("stabil", L), ("jitcnt", L),
                ("calcnt", L), ("errcnt", L), ("stbcnt", L), ("tai", I), ("pad", I * 11)]
t = Timex()
if ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).adjtimex(ctypes.byref(t)) < 0:
    raise OSError(ctypes.get_errno(), "adjtimex")
print(json.dumps({"status": t.status, "maxerror": t.maxerror, "offset": t.offset}))
`;

export function kernelClock(): KernelClock {
  const out = execFileSync("python3", ["-c", ADJTIMEX_PY], { encoding: "utf8" });
  const { status, maxerror, offset } = JSON.parse(out) as { status: number; maxerror: number; offset: number };
  const STA_UNSYNC = 0x0040;
  const STA_NANO = 0x2000;
  return {
    synchronised: (status & STA_UNSYNC) === 0,
    maxErrorSeconds: maxerror / 1e6,
    offsetSeconds: offset / (status & STA_NANO ? 1e9 : 1e6),
  };
}
