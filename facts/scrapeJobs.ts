/**
 * Prometheus scrape jobs: which service on which roles, under which job name. The Prometheus
 * config, the dashboards' and alerts' `job` selectors, the post-deploy verification and the
 * end-to-end run all read this table.
 */
import { SERVICES, type Role, type ServiceName } from "./topology";

export interface ScrapeJob {
  readonly job: string;
  readonly service: ServiceName;
  /** Roles whose hosts are scraped (found by EC2 discovery on the Role tag). */
  readonly roles: readonly Role[];
  readonly metricsPath: string;
  /** The basic-auth user Prometheus scrapes as, when the target requires credentials. */
  readonly basicAuthUser?: string;
}

export const SCRAPE_JOBS = [
  { job: "node", service: "nodeExporter", roles: SERVICES.nodeExporter.runsOn, metricsPath: "/metrics" },
  { job: "titan", service: "titan", roles: ["web"], metricsPath: "/metrics" },
  { job: "alloy", service: "alloy", roles: ["web"], metricsPath: "/metrics" },
  { job: "remediation", service: "remediationMetrics", roles: ["web"], metricsPath: "/metrics" },
  { job: "loki", service: "loki", roles: ["loki"], metricsPath: "/metrics" },
  // Port 3000 is open to the operators too: Grafana's /metrics asks for credentials.
  { job: "grafana", service: "grafana", roles: ["grafana"], metricsPath: "/metrics", basicAuthUser: "prometheus" },
] as const satisfies readonly ScrapeJob[];

/** Prometheus scrapes itself on localhost; it is the one job not found through EC2. */
export const SELF_JOB = "prometheus";

export type JobName = (typeof SCRAPE_JOBS)[number]["job"] | typeof SELF_JOB;

/** Labels every discovered target carries besides job and instance. */
export const TARGET_LABELS = ["role", "environment"] as const;
