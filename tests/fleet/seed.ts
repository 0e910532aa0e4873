/**
 * cloud-init's NoCloud seed for one host: user data as the program renders it, meta-data with
 * the instance id, hostname and public key (what EC2's metadata service gives the AMI), and a
 * static address on the container's host0. NoCloud reads these from
 * /var/lib/cloud/seed/nocloud/; that the installed cloud-init (22.4.2) takes them, key included,
 * is what the fleet test proves by logging in with that key.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { toYaml } from "../../templates/yaml";
import { IMDS_ADDRESS } from "./awsEndpoints";
import { BRIDGE_ADDRESS } from "./layout";

export const SEED_DIR = "/var/lib/cloud/seed/nocloud";

export interface SeedInput {
  readonly instanceId: string;
  readonly hostname: string;
  readonly publicKey: string;
  readonly userData: string;
  readonly address: string;
  readonly prefix: number;
}

function check(input: SeedInput): void {
  if (!/^i-[0-9a-f]{17}$/.test(input.instanceId)) {
    throw new Error(`instanceId ${input.instanceId}: expected i- and 17 hex digits, like EC2's`);
  }
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(input.hostname)) {
    throw new Error(`hostname ${input.hostname}: expected a DNS label`);
  }
  if (!/^ssh-ed25519 [A-Za-z0-9+/=]+( \S+)?$/.test(input.publicKey.trim())) {
    throw new Error(`publicKey ${input.publicKey.slice(0, 30)}...: expected one OpenSSH ed25519 public key`);
  }
  if (!input.userData.startsWith("#cloud-config\n")) throw new Error("userData: expected a #cloud-config document");
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(input.address)) throw new Error(`address ${input.address}: expected IPv4`);
}

/**
 * Fleet only: the route to the instance metadata service (tests/fleet/awsEndpoints.ts, whose
 * 169.254.169.254/32 is on the bridge), through the bridge address, as an EC2 instance reaches
 * it through its subnet's router. Not a `routes:` entry of the network config: cloud-init 22.4
 * picks its ENI renderer in this image (ifupdown is installed), which renders a v1 route as
 * `post-up route add -host ... || true` (cloudinit/net/eni.py, _render_route), and the image has
 * no net-tools, so the route would be silently missing (seen in a booted host: no route, and
 * 169.254.169.254 reached on-link from networkd's IPv4 link-local address, which the bridge
 * cannot answer). systemd-networkd already manages host0 in the container (its
 * 80-container-host0.network); this drop-in adds the route there, owned by networkd (so never
 * removed as a foreign route), on-link so it does not wait for ifupdown's address. The source
 * address the kernel picks for it is the host's private IP, which the fake IMDS tells hosts by.
 */
export const IMDS_ROUTE_FILE = "/etc/systemd/network/80-container-host0.network.d/titan-fleet-imds.conf";

export function imdsRouteFile(gateway: string = BRIDGE_ADDRESS): string {
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(gateway)) throw new Error(`gateway ${gateway}: expected IPv4`);
  return [
    "# Fleet only (tests/fleet/seed.ts): the fake instance metadata service on the bridge.",
    "[Route]",
    `Destination=${IMDS_ADDRESS}/32`,
    `Gateway=${gateway}`,
    "GatewayOnLink=yes",
    "",
  ].join("\n");
}

export function seedFiles(input: SeedInput): Record<"meta-data" | "user-data" | "network-config", string> {
  check(input);
  return {
    "meta-data": toYaml({
      "instance-id": input.instanceId,
      "local-hostname": input.hostname,
      "public-keys": [input.publicKey.trim()],
    }),
    "user-data": input.userData,
    // Network config version 1; no gateway: hosts reach the bridge and each other, nothing else
    // (and the metadata service through IMDS_ROUTE_FILE, below).
    "network-config": toYaml({
      version: 1,
      config: [
        { type: "physical", name: "host0", subnets: [{ type: "static", address: `${input.address}/${input.prefix}` }] },
      ],
    }),
  };
}

/** Writes the seed, and the fleet's route to the IMDS, into a host's root tree (the overlay's merged view). */
export function writeSeed(root: string, input: SeedInput): void {
  const dir = path.join(root, SEED_DIR);
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(seedFiles(input))) fs.writeFileSync(path.join(dir, name), content);
  const route = path.join(root, IMDS_ROUTE_FILE);
  fs.mkdirSync(path.dirname(route), { recursive: true });
  fs.writeFileSync(route, imdsRouteFile());
}
