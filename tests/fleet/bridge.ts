/**
 * The fleet's bridge: the address plan's subnet with the host on its first address. Hosts get
 * no default route, so nothing they send can leave this machine; they reach only each other
 * and the proxy on the bridge address.
 */
import type { Cleanup } from "./cleanup";
import { probe, run } from "./exec";

const IP = "/usr/sbin/ip";

export const linkExists = (name: string): boolean => probe(IP, ["link", "show", "dev", name]).status === 0;

export function createBridge(name: string, address: string, prefix: number, cleanup: Cleanup): void {
  if (linkExists(name)) {
    throw new Error(
      `interface ${name} already exists: another fleet run, or one that was killed (ip link del ${name})`,
    );
  }
  run(IP, ["link", "add", name, "type", "bridge"]);
  cleanup.add(`bridge ${name}`, () => void run(IP, ["link", "del", name]));
  run(IP, ["addr", "add", `${address}/${prefix}`, "dev", name]);
  run(IP, ["link", "set", name, "up"]);
}
