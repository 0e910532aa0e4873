/**
 * The fleet's report: one line per check, the `N passed, M failed` summary, and the
 * measurements per role. Figures are printed, never asserted (a loaded machine is slower).
 */
import * as os from "node:os";
import type { Role } from "../../facts/topology";
import type { CheckResult } from "./checks/result";

export function checkLine(r: CheckResult): string {
  return `${r.ok ? "PASS" : "FAIL"}  ${r.host.padEnd(11)} ${r.name}: ${r.detail}`;
}

export function summaryLine(results: readonly CheckResult[]): string {
  const failed = results.filter((r) => !r.ok).length;
  return `${results.length - failed} passed, ${failed} failed`;
}

/** Every check as a line, the failures again at the end (so they are not lost in a long list), the summary. */
export function formatReport(results: readonly CheckResult[]): string {
  const failures = results.filter((r) => !r.ok);
  return [
    ...results.map(checkLine),
    ...(failures.length > 0 ? ["", "failed:", ...failures.map(checkLine)] : []),
    "",
    summaryLine(results),
    "",
  ].join("\n");
}

/** The run's exit status from its checks: 0 only when every one passed (and there was one). */
export const exitStatus = (results: readonly CheckResult[]): number =>
  results.length > 0 && results.every((r) => r.ok) ? 0 : 1;

export interface HostTiming {
  readonly host: string;
  readonly role: Role;
  /** cloud-init's run of the bootstrap: from boot to cloud-init's end, in seconds. */
  readonly bootstrapSeconds: number | undefined;
  /** The push over SSH, in seconds (undefined when the run had no push). */
  readonly pushSeconds?: number;
  /** From the start of the run (lock held, before the bridge) until all this host's targets were seen up. */
  readonly targetsUpSeconds?: number;
}

export interface RunFacts {
  /** "cold" when apt-cacher-ng's cache held no package when the run started. */
  readonly packageCache: string;
  readonly imageBuilt: boolean;
  readonly imageSeconds: number;
  readonly totalSeconds?: number;
}

/** Seconds as the reports print them ("-" when not measured). */
export const secs = (s: number | undefined) => (s === undefined ? "-" : `${s.toFixed(1)} s`);

/** Per role, the slowest of its hosts' figures (one web host in the fleet's plan). */
export function slowestPerRole(
  timings: readonly HostTiming[],
): { role: Role; bootstrapSeconds?: number; pushSeconds?: number; targetsUpSeconds?: number }[] {
  const max = (xs: (number | undefined)[]) => {
    const known = xs.filter((x): x is number => x !== undefined);
    return known.length ? Math.max(...known) : undefined;
  };
  return [...new Set(timings.map((t) => t.role))].map((role) => {
    const mine = timings.filter((t) => t.role === role);
    return {
      role,
      bootstrapSeconds: max(mine.map((t) => t.bootstrapSeconds)),
      pushSeconds: max(mine.map((t) => t.pushSeconds)),
      targetsUpSeconds: max(mine.map((t) => t.targetsUpSeconds)),
    };
  });
}

export function measurementsTable(timings: readonly HostTiming[], facts: RunFacts): string {
  const rows = slowestPerRole(timings).map((r) => [
    r.role,
    secs(r.bootstrapSeconds),
    secs(r.pushSeconds),
    secs(r.targetsUpSeconds),
  ]);
  const header = ["role", `bootstrap (${facts.packageCache} package cache)`, "push", "targets up (from run start)"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [
    `measured ${new Date().toISOString().slice(0, 10)} on ${os.hostname()} (${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB)`,
    `base image: ${facts.imageBuilt ? "built" : "from cache"} in ${secs(facts.imageSeconds)}` +
      (facts.totalSeconds === undefined ? "" : `; whole run ${secs(facts.totalSeconds)}`),
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
    "",
  ].join("\n");
}
