/**
 * The README's cost estimate, computed from the stack's configuration and facts/prices.ts: every
 * host, every address and every volume the program creates (tests/cost.test.ts keeps the README
 * in step and checks the volumes against what infra/ declares).
 */
import type { StackConfig } from "../facts/config";
import { addressPlan } from "../facts/addressing";
import {
  GP3_GIB_MONTH_USD,
  HOURS_PER_MONTH,
  INSTANCE_HOURLY_USD,
  PRICE_REGION,
  PUBLIC_IPV4_HOURLY_USD,
} from "../facts/prices";
import { hasDataVolume, ROLES, type Role } from "../facts/topology";

export interface CostLine {
  readonly item: string;
  /** USD an hour; 0 for what AWS does not charge. */
  readonly hourly: number;
}

export interface CostEstimate {
  readonly lines: readonly CostLine[];
  readonly hourly: number;
  readonly monthly: number;
  /** Volumes priced, GiB per volume, in the order the hosts are planned: what the table sums. */
  readonly volumesGib: readonly { readonly host: string; readonly kind: "root" | "data"; readonly gib: number }[];
}

function instanceHourly(role: Role, type: string): number {
  const price = INSTANCE_HOURLY_USD[type];
  if (price === undefined) {
    throw new Error(
      `${role}InstanceType = ${JSON.stringify(type)}: no list price in facts/prices.ts (expected one of ${Object.keys(INSTANCE_HOURLY_USD).join(", ")}); add it to estimate the cost`,
    );
  }
  return price;
}

export function costEstimate(config: StackConfig): CostEstimate {
  const hosts = addressPlan(config.vpcCidr, config.webCount).hosts;
  const volumesGib: CostEstimate["volumesGib"][number][] = [];
  for (const host of hosts) {
    volumesGib.push({ host: host.name, kind: "root", gib: config.rootVolumeSizeGb });
    if (hasDataVolume(host.role))
      volumesGib.push({ host: host.name, kind: "data", gib: config.dataVolumeSizeGb[host.role] });
  }

  const lines: CostLine[] = [];
  for (const type of [...new Set(ROLES.map((r) => config.instanceTypes[r]))]) {
    const count = hosts.filter((h) => config.instanceTypes[h.role] === type).length;
    const role = ROLES.find((r) => config.instanceTypes[r] === type) as Role;
    const each = instanceHourly(role, type);
    lines.push({ item: `${count} × ${type} ($${each}/h)`, hourly: count * each });
  }
  lines.push({
    item: `${hosts.length} × public IPv4 address ($${PUBLIC_IPV4_HOURLY_USD}/h)`,
    hourly: hosts.length * PUBLIC_IPV4_HOURLY_USD,
  });
  const totalGib = volumesGib.reduce((sum, v) => sum + v.gib, 0);
  const dataParts = ROLES.filter(hasDataVolume).map((role) => `${config.dataVolumeSizeGb[role]} ${role}`);
  lines.push({
    item: `${totalGib} GiB gp3 (${hosts.length} × ${config.rootVolumeSizeGb} root + ${dataParts.join(" + ")} data; $${GP3_GIB_MONTH_USD}/GiB-month)`,
    hourly: (totalGib * GP3_GIB_MONTH_USD) / HOURS_PER_MONTH,
  });
  lines.push({ item: "S3 gateway endpoint, VPC, security groups", hourly: 0 });
  const hourly = lines.reduce((sum, l) => sum + l.hourly, 0);
  return { lines, hourly, monthly: hourly * HOURS_PER_MONTH, volumesGib };
}

const usd = (amount: number, digits: number) => `$${amount.toFixed(digits)}`;

/** The Markdown table: one line per priced item and the total an hour, a day and a month; then what it leaves out. */
export function costTable(config: StackConfig): string {
  const estimate = costEstimate(config);
  const oneMoreWeb = costEstimate({ ...config, webCount: config.webCount + 1 }).hourly - estimate.hourly;
  const rows = estimate.lines.map((l) => `| ${l.item} | ${l.hourly === 0 ? "free" : usd(l.hourly, 3)} |`);
  const total = `**≈ ${usd(estimate.hourly, 3)}/h (≈ ${usd(estimate.hourly * 24, 2)}/day, ≈ ${usd(estimate.monthly, 0)}/month)**`;
  return [
    `| item (${PRICE_REGION} on-demand list prices) | hourly |`,
    "| --- | ---: |",
    ...rows,
    `| **total** | ${total} |`,
    "",
    `Plus S3 storage and requests for Loki's chunks and data transfer out (cents for a demo). Every extra web host adds ≈ ${usd(oneMoreWeb, 3)}/h.`,
  ].join("\n");
}
