/**
 * Which scrape targets Prometheus must find: every service on every host whose role runs it
 * (facts/topology.ts), labelled from the host's tags (docs/architecture.md decision 3). Computed from the
 * topology and the hosts' tags, not from the rendered config, so a wrong filter or relabelling
 * in the config shows up as a difference.
 */
import { SERVICES, type Role } from "../../facts/topology";
import { SCRAPE_JOBS, SELF_JOB } from "../../facts/scrapeJobs";
import type { Ec2Instance } from "./fakeEc2";
import { tag } from "./hosts";
import type { Target } from "./prometheusApi";

export interface ExpectedTarget {
  readonly job: string;
  readonly instance: string;
  readonly role: string;
  readonly environment: string;
  /** host:port as scraped. */
  readonly address: string;
  readonly metricsPath: string;
}

export function expectedTargets(instances: readonly Ec2Instance[]): ExpectedTarget[] {
  const out: ExpectedTarget[] = [];
  for (const job of SCRAPE_JOBS) {
    const service = SERVICES[job.service];
    for (const i of instances) {
      if (!(service.runsOn as readonly Role[]).includes(tag(i, "Role") as Role)) continue;
      out.push({
        job: job.job,
        instance: tag(i, "Name"),
        role: tag(i, "Role"),
        environment: tag(i, "Environment"),
        address: `${i.privateIp}:${service.port}`,
        metricsPath: job.metricsPath,
      });
    }
  }
  // Prometheus scrapes itself over loopback, labelled like the host it runs on.
  const self = instances.find((i) => tag(i, "Role") === "prometheus");
  if (!self) throw new Error("no prometheus host");
  out.push({
    job: SELF_JOB,
    instance: tag(self, "Name"),
    role: "prometheus",
    environment: tag(self, "Environment"),
    address: `localhost:${SERVICES.prometheus.port}`,
    metricsPath: "/metrics",
  });
  return out;
}

export const targetKey = (t: ExpectedTarget): string =>
  `job=${t.job} instance=${t.instance} role=${t.role} environment=${t.environment} url=http://${t.address}${t.metricsPath}`;

/** A live target in the same shape as the expectation. */
export function observed(t: Target): ExpectedTarget {
  const url = new URL(t.scrapeUrl);
  return {
    job: t.labels.job ?? "",
    instance: t.labels.instance ?? "",
    role: t.labels.role ?? "",
    environment: t.labels.environment ?? "",
    address: url.host,
    metricsPath: url.pathname,
  };
}

export interface TargetDiff {
  readonly missing: string[];
  readonly unexpected: string[];
}

export function diffTargets(expected: readonly ExpectedTarget[], live: readonly Target[]): TargetDiff {
  const want = new Set(expected.map(targetKey));
  const have = new Set(live.map((t) => targetKey(observed(t))));
  return {
    missing: [...want].filter((k) => !have.has(k)),
    unexpected: [...have].filter((k) => !want.has(k)),
  };
}
