/**
 * One network namespace per run: the hosts' private IPs live on its loopback, so every service
 * listens on the address and port it has in production and nothing outside the namespace is
 * touched. Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN).
 */
import { execFileSync } from "node:child_process";

const IP = "/usr/sbin/ip";

export function requireRoot(): void {
  const uid = process.getuid?.();
  if (uid !== 0) {
    throw new Error(
      `the end-to-end run needs root to create a network namespace (ip netns add); running as uid ${uid ?? "unknown"}. ` +
        "Run it as root (CI does), e.g. `sudo npm run e2e`.",
    );
  }
}

function ip(...args: string[]): string {
  return execFileSync(IP, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

export interface Namespace {
  readonly name: string;
  /** The command line that runs `command` inside the namespace (`ip netns exec` execs, so the pid is the command's). */
  readonly wrap: (command: string, args: readonly string[]) => [string, string[]];
}

/** Interface standing in for the hosts' EC2 NIC, so node_exporter reports a device besides lo. */
export const STAND_IN_NIC = "ens5";

export function createNamespace(name: string, addresses: readonly string[]): Namespace {
  ip("netns", "add", name);
  try {
    ip("-n", name, "link", "set", "lo", "up");
    for (const a of addresses) ip("-n", name, "addr", "add", `${a}/32`, "dev", "lo");
    // Both ends stay inside the namespace; the dashboards' network panel excludes lo, and a
    // namespace with only lo would leave that panel empty for a reason that is not the template's.
    ip("-n", name, "link", "add", STAND_IN_NIC, "type", "veth", "peer", "name", `${STAND_IN_NIC}-peer`);
    ip("-n", name, "link", "set", STAND_IN_NIC, "up");
    ip("-n", name, "link", "set", `${STAND_IN_NIC}-peer`, "up");
  } catch (err) {
    deleteNamespace(name);
    throw err;
  }
  return { name, wrap: (command, args) => [IP, ["netns", "exec", name, command, ...args]] };
}

/** Pids of processes still inside the namespace (all of them started by this run). */
export function namespacePids(name: string): number[] {
  try {
    return ip("netns", "pids", name).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function namespaceExists(name: string): boolean {
  return ip("netns", "list")
    .split("\n")
    .some((line) => line.split(" ")[0] === name);
}

/** Removes the namespace; its veth pair and addresses go with it. Safe to call twice. */
export function deleteNamespace(name: string): void {
  try {
    if (namespaceExists(name)) ip("netns", "del", name);
  } catch {
    // Reported by the caller's check that the namespace is gone.
  }
}
