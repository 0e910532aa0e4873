/**
 * `npm run fleet` (= `node build/tests/fleet/main.js [--hosts web-1,prometheus] [--hold]`):
 * boots the fleet, runs every check, change and fault against it, prints one line per check,
 * the `N passed, M failed` summary and the measurements, and removes everything it made: at
 * the end, on a failure, or on SIGINT/SIGTERM. Exits non-zero when any check failed. --hold
 * keeps the hosts up after the checks until interrupted (to look around inside).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ContainerHost } from "./checks/host";
import { expectedTargets, targetKey, targetsUp, trafficMoves, type ExpectedTarget } from "./checks/prometheus";
import { fail, type CheckResult } from "./checks/result";
import { hostChecks } from "./checks/system";
import { remediationChecks } from "./checks/remediation";
import { lokiNeverUnconfigured } from "./checks/loki";
import { Cleanup } from "./cleanup";
import { stagedAsRendered, userDataAsDeclared } from "./checks/delivery";
import { RECORDED_AMP_SAMPLE_RATE, writeAmpSampleRate } from "./ampSampleRate";
import { runMatrix, transitionLines, type TransitionRecord } from "./matrix";
import { imageChanged, pinRaised } from "./replacements";
import { stoppedAndStarted } from "./stopStart";
import {
  RECORDED_TIMINGS,
  RUN_TIMINGS,
  TIMINGS_DOC,
  withTimingsSection,
  writeTimings,
  type FleetTimings,
} from "./timings";
import { killAndRecover, prometheusHistory, rebootDataHost, volumeMounted, volumeToken } from "./faults";
import type { Fleet } from "./fleet";
import { startAwsEndpoints } from "./awsEndpoints";
import { provisionFleet, pushCheck, setContainer, type ProvisionedFleet } from "./provision";
import { CACHE_DIR } from "./layout";
import { exitStatus, formatReport, measurementsTable, type HostTiming } from "./report";

interface Args {
  readonly hosts?: string[];
  readonly hold: boolean;
  /** Keep the run's timings as bench/fleet-timings.json and write docs/fleet.md's section from them. */
  readonly record: boolean;
}

export function parseArgs(argv: readonly string[]): Args {
  let hosts: string[] | undefined;
  let hold = false;
  let record = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--hold") hold = true;
    else if (a === "--record") record = true;
    else if (a === "--hosts" && argv[i + 1]) hosts = argv[++i].split(",").filter(Boolean);
    else throw new Error(`argument ${JSON.stringify(a)}: expected --hosts NAME[,NAME...], --hold or --record`);
  }
  if (record && hosts) throw new Error("--record: only a run of every host of the plan is recorded; drop --hosts");
  return { hosts, hold, record };
}

export function summary(fleet: Fleet): string {
  const lines = [
    `base image ${fleet.image.key}: ${fleet.image.built ? "built" : "from cache"} in ${fleet.imageSeconds.toFixed(1)} s`,
    "host         ip            boot→ssh  boot→cloud-init end  systemd    cloud-init  failed units",
    ...fleet.hosts.map((h) =>
      [
        h.slot.name.padEnd(12),
        h.slot.privateIp.padEnd(13),
        `${h.bootToSshSeconds.toFixed(1)} s`.padEnd(9),
        `${h.bootToCloudInitSeconds.toFixed(1)} s`.padEnd(20),
        h.readiness.systemState.padEnd(10),
        h.readiness.cloudInit.padEnd(11),
        h.readiness.failedUnits.join(" ") || "-",
      ].join(" "),
    ),
  ];
  return `${lines.join("\n")}\n`;
}

/** "cold" when apt-cacher-ng's cache holds no package yet (a first run on this machine). */
export function packageCacheState(cacheDir = path.join(CACHE_DIR, "apt-cacher-ng")): string {
  let debs = 0;
  const walk = (dir: string) => {
    for (const e of fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : []) {
      if (e.isDirectory()) walk(path.join(dir, e.name));
      else if (e.name.endsWith(".deb")) debs++;
    }
  };
  walk(cacheDir);
  return debs === 0 ? "cold" : `warm (${debs} .deb cached)`;
}

const PROMETHEUS_PORT = 9090;

/** A fault whose machinery itself failed (the host never came back, ...) is that fault's failure. */
async function step(what: string, host: string, body: () => Promise<CheckResult[]>): Promise<CheckResult[]> {
  try {
    return await body();
  } catch (err) {
    return [fail(`${what}`, host, (err as Error).message)];
  }
}
const TARGETS_TIMEOUT_MS = 300_000;

export interface FleetRun {
  readonly results: CheckResult[];
  readonly timings: HostTiming[];
  readonly transitions: TransitionRecord[];
}

/** Every check, change and fault, in that order; each records its result, none ends the run. */
export async function checkFleet(pf: ProvisionedFleet, started: number, log: (l: string) => void): Promise<FleetRun> {
  const hosts = pf.hosts.map(
    (h) => new ContainerHost(h.slot.name, h.slot.role, h.slot.privateIp, h.container, h.volume?.volumeId),
  );
  const timings: HostTiming[] = pf.hosts.map((h) => ({
    host: h.slot.name,
    role: h.slot.role,
    bootstrapSeconds: h.bootstrapSeconds,
    pushSeconds: h.pushSeconds,
  }));
  // The push over SSH, as pulumi-command ran it (provision.ts records a failed one and goes on).
  const results: CheckResult[] = pf.hosts.map((h) => pushCheck(h));
  // What reached each host is what the program declares (user data, the staged push).
  results.push(...(await userDataAsDeclared(pf)));
  results.push(...(await Promise.all(pf.hosts.map((h) => stagedAsRendered(pf, h)))));
  log("checking each host");
  for (const batch of await Promise.all(hosts.map(hostChecks))) results.push(...batch);
  // Every data host, not only Prometheus: its volume is mounted where its daemon keeps its data.
  for (const h of hosts) {
    const volume = pf.hosts.find((p) => p.slot.name === h.name)?.volume;
    if (volume) results.push(await volumeMounted(h, volume, "first boot"));
  }

  const prometheus = hosts.find((h) => h.role === "prometheus");
  const web = hosts.find((h) => h.role === "web");
  const promUrl = prometheus ? `http://${prometheus.privateIp}:${PROMETHEUS_PORT}` : undefined;
  const expected = expectedTargets(hosts);
  if (promUrl) {
    log(`waiting for ${expected.length} targets in ${promUrl}`);
    const outcome = await targetsUp(promUrl, expected, TARGETS_TIMEOUT_MS);
    results.push(...outcome.results);
    for (const t of timings) {
      const ups = expected.filter((e) => e.host === t.host).map((e) => outcome.firstUp.get(targetKey(e)));
      const seen = ups.filter((u): u is number => u !== undefined);
      if (ups.length > 0 && seen.length === ups.length) {
        Object.assign(t, { targetsUpSeconds: (Math.max(...seen) - started) / 1000 });
      }
    }
    if (web) results.push(await trafficMoves(promUrl, web, 120_000));
  } else {
    results.push(fail("Prometheus targets", "fleet", "no prometheus host in this run: targets not checked"));
  }

  // The self-healing agent's last hop: a signed webhook from the Grafana host, its effect on the web host.
  const grafanaHost = hosts.find((h) => h.role === "grafana");
  if (web && grafanaHost) {
    log("the remediation agent: signed webhooks from the grafana host");
    const others = hosts.filter((h) => h !== web && h !== grafanaHost);
    results.push(...(await remediationChecks({ web, grafana: grafanaHost, others, prometheusUrl: promUrl })));
  }

  log("the lifecycle matrix: configuration transitions");
  const transitions = await runMatrix({ pf, hosts, prometheusUrl: promUrl, log });
  for (const t of transitions) results.push(...t.results);

  log("faults");
  const target = (job: string, host: string): ExpectedTarget | undefined =>
    expected.find((t) => t.job === job && t.host === host);
  if (web) {
    results.push(await killAndRecover(web, "titan", promUrl, target("titan", web.name)));
    results.push(await killAndRecover(web, "prometheus-node-exporter", promUrl, target("node", web.name)));
  } else if (prometheus) {
    results.push(
      await killAndRecover(prometheus, "prometheus-node-exporter", promUrl, target("node", prometheus.name)),
    );
  }
  // Loki's and Prometheus' hosts rebooted at once, each with its volume attached late: the
  // daemon must wait for its mount, keep its data, and Loki still never run on the package's
  // example config. (Grafana's host goes through the same in the matrix's stop and start.)
  const rebootOf = async (role: "loki" | "prometheus"): Promise<CheckResult[]> => {
    const h = hosts.find((x) => x.role === role);
    const volume = pf.hosts.find((x) => x.slot.role === role)?.volume;
    if (!h || !volume) return [];
    if (role === "prometheus" && !promUrl) return [];
    const probe = role === "prometheus" && promUrl ? prometheusHistory(h, promUrl) : volumeToken(h);
    return step("reboot", h.name, async () => {
      const r = await rebootDataHost(h, volume, probe, pf.cleanup, log);
      setContainer(pf, h.name, h.container);
      return role === "loki" ? [...r, await lokiNeverUnconfigured(h, "after reboot")] : r;
    });
  };
  for (const r of await Promise.all([rebootOf("loki"), rebootOf("prometheus")])) results.push(...r);
  // A stop and start outside Pulumi, then replacements as the engine makes them for a raised
  // pin and for a new image (stopStart.ts, replacements.ts).
  log("the lifecycle matrix: stop and start, replacements");
  const replacements = await runMatrix({ pf, hosts, prometheusUrl: promUrl, log }, [
    stoppedAndStarted,
    pinRaised("grafana"),
    imageChanged,
  ]);
  for (const t of replacements) results.push(...t.results);
  transitions.push(...replacements);
  return { results, timings, transitions };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const cleanup = new Cleanup();
  cleanup.onSignals();
  // Measured from the moment the run holds the machine's fleet lock (fleet.ts logs its run
  // directory right after), so time spent waiting for another run is not counted.
  const clock = { started: Date.now() };
  const log = (l: string) => {
    if (l.startsWith("run directory ")) clock.started = Date.now();
    process.stderr.write(`fleet: ${l}\n`);
  };
  const packageCache = packageCacheState();
  let status = 0;
  try {
    const pf = await provisionFleet(cleanup, { hosts: args.hosts, log, awsEndpoints: startAwsEndpoints });
    const fleet = pf.fleet;
    process.stdout.write(summary(fleet));
    const run = await checkFleet(pf, clock.started, log);
    process.stdout.write(
      `\n${measurementsTable(run.timings, {
        packageCache,
        imageBuilt: fleet.image.built,
        imageSeconds: fleet.imageSeconds,
        totalSeconds: (Date.now() - clock.started) / 1000,
      })}\n`,
    );
    process.stdout.write(`\n${transitionLines(run.transitions)}\n`);
    process.stdout.write(formatReport(run.results));
    status = exitStatus(run.results);
    const failed = run.results.filter((r) => !r.ok).length;
    const timings: FleetTimings = {
      measured: new Date().toISOString().slice(0, 10),
      machine: { cpus: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30) },
      packageCache,
      imageBuilt: fleet.image.built,
      wholeRunSeconds: Math.round((Date.now() - clock.started) / 100) / 10,
      checks: { passed: run.results.length - failed, failed },
      hosts: run.timings,
      transitions: run.transitions.map((t) => ({ id: t.id, live: t.live })),
    };
    writeTimings(RUN_TIMINGS(), timings);
    // Measured by the transition "metricsStore amp, then local" (ampSampleRate.ts).
    const sampleRate = run.transitions.find((t) => t.sampleRate)?.sampleRate;
    if (args.record) {
      if (status !== 0) throw new Error("--record: a run with a failed check is not recorded");
      if (!sampleRate) throw new Error("--record: the run measured no AMP sample rate");
      writeTimings(RECORDED_TIMINGS(), timings);
      writeAmpSampleRate(RECORDED_AMP_SAMPLE_RATE(), sampleRate);
      const doc = TIMINGS_DOC();
      fs.writeFileSync(doc, withTimingsSection(fs.readFileSync(doc, "utf8"), timings));
      log(`recorded ${RECORDED_TIMINGS()}, ${RECORDED_AMP_SAMPLE_RATE()} and the timing section of ${doc}`);
    }
    if (args.hold) {
      log("holding; interrupt (Ctrl-C) to remove everything");
      // A timer keeps the event loop (and so the process) alive until a signal ends it.
      await new Promise(() => setInterval(() => undefined, 1 << 30));
    }
  } catch (err) {
    process.stderr.write(`fleet: FAILED: ${(err as Error).message}\n`);
    status = 1;
  }
  const failures = await cleanup.run();
  for (const f of failures) process.stderr.write(`fleet: cleanup failed: ${f}\n`);
  return failures.length > 0 ? 1 : status;
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
