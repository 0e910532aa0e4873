/**
 * Where the stack keeps its metrics (`metricsStore` config key) and the facts about Amazon Managed
 * Service for Prometheus (AMP) that the program, the templates and the policy pack share: the
 * workspace's URLs and the IAM actions each side needs.
 */

/** local: the Prometheus host's TSDB is the store (the default, today's stack); amp: an AMP workspace is. */
export const METRICS_STORES = ["local", "amp"] as const;
export type MetricsStore = (typeof METRICS_STORES)[number];
export const DEFAULT_METRICS_STORE: MetricsStore = "local";

/**
 * What the Prometheus host keeps locally with `amp`: a buffer for its own UI and for rule
 * debugging, not the store. Remote write itself reads the WAL, not the retained blocks, so the
 * retention does not bound how long AMP may be away (the WAL does: see docs/metrics-store.md).
 */
export const AMP_LOCAL_RETENTION = "1d";

/**
 * How long Prometheus tries to send what its remote-write queue holds when it stops or reloads a
 * changed remote_write (`--storage.remote.flush-deadline`, 2.42's cmd/prometheus/main.go, default
 * 1m). Debian's prometheus.service stops with TimeoutStopSec=20s and SendSIGKILL=no: with AMP away
 * the default minute outlasts the stop, systemd gives up on it and then refuses to start the unit
 * while its process remains (result 'resources'; seen on the fleet), so a restart during an AMP
 * outage would leave Prometheus down. 10 s leaves the TSDB's own shutdown the rest of the 20 s.
 * What is unsent at the stop is read again from the WAL only if newer than the restart, so a
 * longer wait would not save it either when AMP is away.
 */
export const AMP_FLUSH_DEADLINE_SECONDS = 10;

/** The workspace's endpoints and region, as the templates receive them. */
export interface AmpEndpoints {
  /** Prometheus' remote_write url. */
  readonly remoteWriteUrl: string;
  /** Grafana's data source url: the workspace root, under which Grafana requests /api/v1/query etc. */
  readonly queryUrl: string;
  /** The region SigV4 signs for (service "aps"). */
  readonly region: string;
}

/**
 * The endpoints from the workspace's `prometheusEndpoint` output. pulumi-aws 7.x documents it only
 * as "Prometheus endpoint available for this workspace" (sdk amp/workspace.d.ts); AWS's API
 * reference (API_WorkspaceDescription) shows `https://aps-workspaces.<region>.amazonaws.com/
 * workspaces/<id>/api/v1/` while the usual Terraform usage appends `api/v1/remote_write` to a value
 * ending in `<id>/`. Both forms are accepted: trailing slashes and an `/api/v1` suffix are dropped
 * to get the workspace root, and the remote-write and query paths are added to it.
 */
export function ampEndpoints(prometheusEndpoint: string, region: string): AmpEndpoints {
  let url: URL;
  try {
    url = new URL(prometheusEndpoint);
  } catch {
    throw new Error(`AMP prometheusEndpoint ${JSON.stringify(prometheusEndpoint)}: expected an https:// URL`);
  }
  if (url.protocol !== "https:" || url.search || url.hash) {
    throw new Error(`AMP prometheusEndpoint ${JSON.stringify(prometheusEndpoint)}: expected an https:// URL`);
  }
  const root = `${url.origin}${url.pathname}`.replace(/\/+$/, "").replace(/\/api\/v1$/, "");
  return { remoteWriteUrl: `${root}/api/v1/remote_write`, queryUrl: root, region };
}

/**
 * IAM actions, each granted on the workspace ARN only. They are the ones AWS's own managed policies
 * grant (docs.aws.amazon.com/aws-managed-policy/latest/reference/: AmazonPrometheusRemoteWriteAccess
 * allows aps:RemoteWrite; AmazonPrometheusQueryAccess allows aps:GetLabels, aps:GetMetricMetadata,
 * aps:GetSeries and aps:QueryMetrics), there on Resource "*".
 */
export const AMP_WRITE_ACTIONS = ["aps:RemoteWrite"] as const;
export const AMP_QUERY_ACTIONS = [
  "aps:GetLabels",
  "aps:GetMetricMetadata",
  "aps:GetSeries",
  "aps:QueryMetrics",
] as const;

/**
 * The signing relay on the Prometheus host (relay/, unit titan-amp-relay): Debian 12's prometheus
 * 2.42 ignores remote_write's `sigv4` block (its debian/patches/91-Disable_opentelemetry.patch
 * drops the line of storage/remote/client.go NewWriteClient that installed the signing round
 * tripper; prometheus/prometheus#13030), so Prometheus writes to the relay on loopback and the
 * relay forwards each write to the workspace signed with the instance role's keys. Loopback only,
 * so not in facts/topology.ts SERVICES (no security group opens it). 9201: the default listen
 * address of Prometheus' own remote-storage adapter example (prometheus/prometheus
 * documentation/examples/remote_storage/remote_storage_adapter/main.go), free on every host here.
 */
export const AMP_RELAY_PORT = 9201;
/** The one path the relay answers (relay/titan_amp_relay/server.py PATH). */
export const AMP_RELAY_PATH = "/api/v1/remote_write";
