/**
 * The stack's own sample rate, as AMP would ingest (and bill) it: the samples the fleet's fake AMP
 * received with a timestamp inside a window of whole scrape intervals, per second, in total, by
 * scrape job and by host role (web per web host). The matrix transition "metricsStore amp, then
 * local" measures it on the fleet (metricsStoreTransition.ts); `main.js --record` keeps it as
 * bench/amp-sample-rate.json, which the README's AMP cost reads.
 *
 * Counted by sample timestamp, not by arrival: Prometheus scrapes each target once per interval,
 * so a window of N whole intervals holds exactly N scrapes of every target whatever the send
 * batching did, once every sample of the window has arrived.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { AMP_SAMPLE_RATE_FILE, type AmpSampleRate } from "../../templates/ampCostDocs";
import { projectRoot } from "../../templates/projectFiles";

/** The file's schema and its checks are the cost generator's (templates/ampCostDocs.ts), which reads it. */
export type { AmpSampleRate };

/** What sampleRate counts; parseAmpSampleRate makes the recorded file of it, with the run's facts. */
export interface CountedRate {
  readonly samplesPerSecond: number;
  readonly byJob: Readonly<Record<string, number>>;
  readonly byRole: Readonly<Record<string, number>>;
}

export const RECORDED_AMP_SAMPLE_RATE = (root = projectRoot()): string => path.join(root, AMP_SAMPLE_RATE_FILE);

export interface CountedSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly timestampMs: number;
}

const perSecond = (n: number, seconds: number) => Math.round((n / seconds) * 100) / 100;

/**
 * Samples per second with a timestamp in [fromMs, fromMs + windowSeconds): in total, by `job`,
 * and by `role` (web divided by `webHosts`). A sample without a job or role label is named in
 * the error: every series the stack sends carries both (EC2 discovery's relabelling, and the
 * self-scrape's static labels), so one without is a finding, not a rounding matter.
 */
export function sampleRate(
  samples: readonly CountedSample[],
  fromMs: number,
  windowSeconds: number,
  webHosts: number,
): CountedRate {
  if (!(windowSeconds > 0)) throw new Error(`sampleRate windowSeconds ${windowSeconds}: expected a positive number`);
  if (!Number.isInteger(webHosts) || webHosts < 1) {
    throw new Error(`sampleRate webHosts ${webHosts}: expected a positive integer`);
  }
  const toMs = fromMs + windowSeconds * 1000;
  const byJob = new Map<string, number>();
  const byRole = new Map<string, number>();
  let total = 0;
  for (const s of samples) {
    if (s.timestampMs < fromMs || s.timestampMs >= toMs) continue;
    const { job, role } = s.labels;
    if (!job || !role)
      throw new Error(`sample of ${s.labels.__name__} without job or role: ${JSON.stringify(s.labels)}`);
    total++;
    byJob.set(job, (byJob.get(job) ?? 0) + 1);
    byRole.set(role, (byRole.get(role) ?? 0) + 1);
  }
  const sorted = (m: Map<string, number>, divide: (k: string) => number = () => 1) =>
    Object.fromEntries([...m.keys()].sort().map((k) => [k, perSecond((m.get(k) ?? 0) / divide(k), windowSeconds)]));
  return {
    samplesPerSecond: perSecond(total, windowSeconds),
    byJob: sorted(byJob),
    byRole: sorted(byRole, (role) => (role === "web" ? webHosts : 1)),
  };
}

/** The file as prettier lays it out (`npm run lint` checks it): the short list of stand-ins on one line. */
export function formatAmpSampleRate(rate: AmpSampleRate): string {
  const text = JSON.stringify(rate, null, 2).replace(
    /"standIns": \[[^\]]*\]/,
    `"standIns": [${rate.standIns.map((j) => JSON.stringify(j)).join(", ")}]`,
  );
  return `${text}\n`;
}

export function writeAmpSampleRate(file: string, rate: AmpSampleRate): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, formatAmpSampleRate(rate));
}
