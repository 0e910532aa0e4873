/**
 * The fleet's measurements as a file: every run writes what it measured (per host: bootstrap,
 * push, targets up; per transition of the lifecycle matrix: config change → live) to
 * build/fleet-timings.json, and `npm run fleet:record` (a run with --record, every check green,
 * every host of the plan) keeps it as bench/fleet-timings.json and writes the timing section of
 * docs/fleet.md from it. tests/readme.test.ts holds that page to that file: the figures on it
 * are the ones a run measured, never typed by hand. `node build/tests/fleet/timings.js` writes the
 * section again from the recorded file (after its layout changed; the figures stay the run's).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { projectRoot } from "../../templates/projectFiles";
import type { LiveTiming } from "./matrix";
import { secs as s, slowestPerRole, type HostTiming } from "./report";
import { markdownTable } from "../../templates/markdownTable";

export interface FleetTimings {
  /** The run's date (YYYY-MM-DD). */
  readonly measured: string;
  readonly machine: { readonly cpus: number; readonly memoryGiB: number };
  /** "cold", or "warm (N .deb cached)". */
  readonly packageCache: string;
  readonly imageBuilt: boolean;
  readonly wholeRunSeconds: number;
  readonly checks: { readonly passed: number; readonly failed: number };
  readonly hosts: readonly HostTiming[];
  readonly transitions: readonly { readonly id: string; readonly live: readonly LiveTiming[] }[];
}

export const RUN_TIMINGS = (root = projectRoot()) => path.join(root, "build", "fleet-timings.json");
export const RECORDED_TIMINGS = (root = projectRoot()) => path.join(root, "bench", "fleet-timings.json");
export const TIMINGS_MARKERS = ["<!-- fleet-timings:start -->", "<!-- fleet-timings:end -->"] as const;

export function readTimings(file: string): FleetTimings {
  return JSON.parse(fs.readFileSync(file, "utf8")) as FleetTimings;
}

export function writeTimings(file: string, t: FleetTimings): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(t, null, 2)}\n`);
}

/** The section between TIMINGS_MARKERS (in TIMINGS_DOC), from a recorded run. */
export function timingsSection(t: FleetTimings): string {
  const hostRows = slowestPerRole(t.hosts).map((r) => [
    `\`${r.role}\``,
    s(r.bootstrapSeconds),
    s(r.pushSeconds),
    s(r.targetsUpSeconds),
  ]);
  const transitionRows = t.transitions.map((tr) => [
    tr.id,
    tr.live.length === 0 ? "-" : s(Math.max(...tr.live.map((l) => l.seconds))),
    [...new Set(tr.live.map((l) => l.host))].join(", ") || "(nothing to go live)",
  ]);
  return [
    "",
    `Measured ${t.measured} by \`npm run fleet:record\` on a ${t.machine.cpus}-core, ${t.machine.memoryGiB} GiB machine, all four hosts of the plan, ${t.checks.passed} checks passed, ${t.checks.failed} failed; package cache ${t.packageCache}, base image ${t.imageBuilt ? "built" : "from cache"}; the whole run took ${s(t.wholeRunSeconds)}. Written from \`bench/fleet-timings.json\`, which that run wrote; figures are printed, never asserted.`,
    "",
    ...markdownTable(["role", "bootstrap", "push", "targets up, from run start"], hostRows, [false, true, true, true]),
    "",
    "Each transition of the lifecycle matrix (`tests/fleet/matrix.ts`, `tests/fleet/replacements.ts`), with the time from the start of its `up` until the change was seen in effect on the host (the slowest host when several):",
    "",
    ...markdownTable(["transition", "config change → live", "hosts"], transitionRows, [false, true, false]),
    "",
  ].join("\n");
}

/** The document's text with the section between the markers replaced. */
export function withTimingsSection(readme: string, t: FleetTimings): string {
  const [start, end] = TIMINGS_MARKERS;
  const i = readme.indexOf(start);
  const j = readme.indexOf(end);
  if (i < 0 || j < i) throw new Error(`${TIMINGS_DOC()}: no ${start} ... ${end} section`);
  return `${readme.slice(0, i + start.length)}\n${timingsSection(t)}\n${readme.slice(j)}`;
}

/** The document that carries the section: the fleet's own page. */
export const TIMINGS_DOC = (root = projectRoot()) => path.join(root, "docs", "fleet.md");

if (require.main === module) {
  const doc = TIMINGS_DOC();
  fs.writeFileSync(doc, withTimingsSection(fs.readFileSync(doc, "utf8"), readTimings(RECORDED_TIMINGS())));
  process.stdout.write(`wrote the timing section of ${doc} from ${RECORDED_TIMINGS()}\n`);
}
