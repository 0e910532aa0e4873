/**
 * The address plan: every host's private IP is fixed by its role and index, so no host waits
 * for another's address and all of them are created in parallel (docs/architecture.md decision 2).
 */
import { firstSubnet, formatCidr, hostAddress, parseCidr } from "./cidr";
import type { Role } from "./topology";

/** Host offsets inside the subnet; AWS reserves .0-.3 and the last address. */
const OFFSETS: Readonly<Record<Role, number>> = { prometheus: 10, loki: 11, grafana: 12, web: 20 };
export const MAX_WEB_HOSTS = 10;

export interface HostSlot {
  /** Logical name: the role, or web-1..web-N. */
  readonly name: string;
  readonly role: Role;
  readonly index: number;
  readonly privateIp: string;
}

export interface AddressPlan {
  readonly subnetCidr: string;
  readonly hosts: readonly HostSlot[];
}

export function addressPlan(vpcCidr: string, webCount: number): AddressPlan {
  const vpc = parseCidr(vpcCidr);
  if (!vpc) throw new Error(`vpcCidr ${vpcCidr} is not a canonical IPv4 CIDR`);
  if (!Number.isInteger(webCount) || webCount < 1 || webCount > MAX_WEB_HOSTS) {
    throw new Error(`webCount ${webCount} is outside 1-${MAX_WEB_HOSTS}`);
  }
  const subnet = firstSubnet(vpc, 24);
  const single = (role: Role): HostSlot => ({
    name: role,
    role,
    index: 1,
    privateIp: hostAddress(subnet, OFFSETS[role]),
  });
  const web = Array.from({ length: webCount }, (_, i): HostSlot => ({
    name: `web-${i + 1}`,
    role: "web",
    index: i + 1,
    privateIp: hostAddress(subnet, OFFSETS.web + i),
  }));
  return { subnetCidr: formatCidr(subnet), hosts: [...web, single("prometheus"), single("loki"), single("grafana")] };
}
