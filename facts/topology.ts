/**
 * The one table of hosts, services, ports and network flows (docs/architecture.md: "Hosts" and the
 * security-group matrix). Security groups, outputs, scrape jobs, tests and the README all
 * read from here, so a port is written down exactly once.
 */

export const ROLES = ["web", "prometheus", "loki", "grafana"] as const;
export type Role = (typeof ROLES)[number];

/**
 * Roles whose state lives on an EBS volume of its own, so a replaced host (a version bump, a
 * new image) keeps its metrics, logs not yet in S3, and dashboards (docs/architecture.md decision 5).
 */
export const DATA_VOLUME_ROLES = ["prometheus", "loki", "grafana"] as const satisfies readonly Role[];
export type DataVolumeRole = (typeof DATA_VOLUME_ROLES)[number];
export const hasDataVolume = (role: Role): role is DataVolumeRole =>
  (DATA_VOLUME_ROLES as readonly Role[]).includes(role);

export interface Service {
  readonly port: number;
  readonly description: string;
  /** Roles whose hosts run this service. */
  readonly runsOn: readonly Role[];
}

export const SERVICES = {
  ssh: { port: 22, description: "SSH (operator access and configuration push)", runsOn: ROLES },
  titan: { port: 5000, description: "Titan app (gunicorn)", runsOn: ["web"] },
  nodeExporter: { port: 9100, description: "node_exporter", runsOn: ROLES },
  alloy: { port: 12345, description: "Grafana Alloy HTTP server (metrics, UI)", runsOn: ["web"] },
  prometheus: { port: 9090, description: "Prometheus", runsOn: ["prometheus"] },
  loki: { port: 3100, description: "Loki (push, query, metrics)", runsOn: ["loki"] },
  grafana: { port: 3000, description: "Grafana", runsOn: ["grafana"] },
  remediation: { port: 9180, description: "Remediation agent (Grafana's signed webhook)", runsOn: ["web"] },
  remediationMetrics: { port: 9181, description: "Remediation agent metrics", runsOn: ["web"] },
} as const satisfies Record<string, Service>;
export type ServiceName = keyof typeof SERVICES;

/** Who may open a connection: another role's security group, or the operator's CIDRs. */
export type Source = { readonly role: Role } | { readonly operator: true };

export interface Flow {
  readonly service: ServiceName;
  readonly from: readonly Source[];
  readonly why: string;
}

const operator: Source = { operator: true };
const fromRole = (role: Role): Source => ({ role });

/**
 * Ingress flows, one row per service. Each row opens the service's port on every host that
 * runs it, from the listed sources only; everything not listed stays closed.
 */
export const FLOWS: readonly Flow[] = [
  {
    service: "titan",
    from: [fromRole("prometheus"), operator],
    why: "Prometheus scrapes /metrics; the operator opens the app",
  },
  { service: "alloy", from: [fromRole("prometheus")], why: "Prometheus scrapes Alloy's own metrics" },
  { service: "nodeExporter", from: [fromRole("prometheus")], why: "Prometheus scrapes every host" },
  {
    service: "loki",
    from: [fromRole("prometheus"), fromRole("web"), fromRole("grafana")],
    why: "metrics scrape, log push from Alloy, LogQL queries from Grafana",
  },
  { service: "prometheus", from: [fromRole("grafana"), operator], why: "PromQL from Grafana; the UI" },
  {
    service: "grafana",
    from: [fromRole("prometheus"), operator],
    why: "Prometheus scrapes Grafana's metrics; the operator uses the UI",
  },
  {
    service: "remediation",
    from: [fromRole("grafana")],
    why: "Grafana posts alerts that name a fix to the web host's remediation agent",
  },
  {
    service: "remediationMetrics",
    from: [fromRole("prometheus")],
    why: "Prometheus scrapes the remediation agent's decisions",
  },
  { service: "ssh", from: [operator], why: "operator shell and the configuration push" },
];

/**
 * Outbound traffic beyond the flows above: package repositories and release downloads over
 * HTTP(S), S3 through the gateway endpoint, and Grafana's Slack webhook. DNS, NTP and the
 * instance metadata service are not filtered by security groups.
 */
export const INTERNET_EGRESS_PORTS = [80, 443] as const;

export const isOperator = (source: Source): source is Extract<Source, { operator: true }> => "operator" in source;

/** One resolved rule: port `port` on hosts of `to`, open to `from`. */
export interface IngressRule {
  readonly to: Role;
  readonly port: number;
  readonly service: ServiceName;
  readonly from: Source;
}

/** Expands FLOWS into one rule per (destination role, port, source). */
export function ingressRules(flows: readonly Flow[] = FLOWS): IngressRule[] {
  const rules: IngressRule[] = [];
  for (const flow of flows) {
    const service: Service = SERVICES[flow.service];
    for (const to of service.runsOn) {
      for (const from of flow.from) rules.push({ to, port: service.port, service: flow.service, from });
    }
  }
  return rules;
}

/** Ports a role listens on, for documentation and tests. */
export function portsOf(role: Role): number[] {
  return Object.values(SERVICES as Record<string, Service>)
    .filter((s) => s.runsOn.includes(role))
    .map((s) => s.port)
    .sort((a, b) => a - b);
}
