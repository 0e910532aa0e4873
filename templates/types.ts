/**
 * What every renderer takes and gives. Renderers are pure functions of the stack config and
 * the address plan (no AWS calls, no Pulumi outputs), so the Pulumi program, the tests and the
 * local end-to-end run all render exactly the same files.
 */
import type { AddressPlan, HostSlot } from "../facts/addressing";
import type { StackConfig } from "../facts/config";
import type { AmpEndpoints } from "../facts/metricsStore";

export interface TemplateContext {
  readonly config: StackConfig;
  readonly plan: AddressPlan;
  /** Name of Loki's S3 bucket (known once the bucket exists; a fixed name in tests). */
  readonly lokiBucket: string;
  /**
   * With metricsStore=amp: the workspace's endpoints (known once it exists). Only the Prometheus and
   * Grafana renderers read it; absent with local, so the default stack renders as before.
   */
  readonly amp?: AmpEndpoints;
}

/** One file as it lands on a host. */
export interface RenderedFile {
  /** Absolute path on the host. */
  readonly path: string;
  readonly content: string;
  /** Octal mode, e.g. 0o644. */
  readonly mode: number;
  readonly owner: string;
  readonly group: string;
}

/** Private address of the single host of a role (prometheus, loki, grafana). */
export function addressOf(plan: AddressPlan, role: HostSlot["role"]): string {
  const host = plan.hosts.find((h) => h.role === role);
  if (!host) throw new Error(`the address plan has no ${role} host`);
  return host.privateIp;
}
