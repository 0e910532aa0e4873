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

export function seedFiles(input: SeedInput): Record<"meta-data" | "user-data" | "network-config", string> {
  check(input);
  return {
    "meta-data": toYaml({
      "instance-id": input.instanceId,
      "local-hostname": input.hostname,
      "public-keys": [input.publicKey.trim()],
    }),
    "user-data": input.userData,
    // Network config version 1; no gateway: hosts reach the bridge and each other, nothing else.
    "network-config": toYaml({
      version: 1,
      config: [
        { type: "physical", name: "host0", subnets: [{ type: "static", address: `${input.address}/${input.prefix}` }] },
      ],
    }),
  };
}

/** Writes the seed into a host's root tree (the overlay's merged view). */
export function writeSeed(root: string, input: SeedInput): void {
  const dir = path.join(root, SEED_DIR);
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(seedFiles(input))) fs.writeFileSync(path.join(dir, name), content);
}
