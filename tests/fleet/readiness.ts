/**
 * When a fleet host is ready: systemd inside reached running (or degraded, with the failed
 * units named), cloud-init finished, and sshd answers on the plan IP to the run's key as the
 * login user, presenting the host key cloud-init generated (checked, not blindly accepted).
 * Without machined, `systemctl --machine` cannot reach the container: commands run in it
 * through nsenter into its init's namespaces.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Container } from "./container";
import { Fatal, probeAsync, waitFor } from "./exec";
import { baseArgs } from "./push";
import type { KeyPair } from "./sshKey";

/** Runs a command inside the container's namespaces (mount, pid, net, ...), as root. */
export function inContainer(
  c: Container,
  command: readonly string[],
  timeoutMs = 60_000,
): Promise<{ status: number; out: string }> {
  return c.enter(command, timeoutMs);
}

export interface Readiness {
  readonly systemState: string;
  readonly failedUnits: readonly string[];
  /** cloud-init's own verdict: done, error, ... */
  readonly cloudInit: string;
  readonly cloudInitDetail: string;
}

const stillRunning = (c: Container) => {
  if (!c.running()) throw new Fatal(`container ${c.spec.machine} stopped`);
};

/** systemd's state once startup has finished: running or degraded (anything else is an error). */
export async function waitForSystemd(c: Container, timeoutMs: number): Promise<{ state: string; failed: string[] }> {
  const state = await waitFor(
    `systemd in ${c.spec.machine} to finish starting`,
    async () => {
      stillRunning(c);
      // --wait returns once the manager left "starting"; before its socket exists it cannot connect.
      const r = await inContainer(c, ["systemctl", "is-system-running", "--wait"], timeoutMs);
      const s = r.out.trim().split("\n").pop() ?? "";
      if (["running", "degraded", "maintenance", "stopping", "offline"].includes(s)) return s;
      throw new Error(r.out.trim());
    },
    { timeoutMs },
  );
  if (state !== "running" && state !== "degraded") throw new Error(`systemd in ${c.spec.machine} is ${state}`);
  const failed = (await inContainer(c, ["systemctl", "list-units", "--failed", "--plain", "--no-legend"])).out
    .split("\n")
    .map((l) => l.split(/\s+/)[0])
    .filter(Boolean);
  return { state, failed };
}

/** Waits for cloud-init's final stage; returns its status (done, error, ...) and its long report. */
export async function waitForCloudInit(c: Container, timeoutMs: number): Promise<{ status: string; detail: string }> {
  const r = await inContainer(c, ["cloud-init", "status", "--wait", "--long"], timeoutMs);
  const status = /^status:\s*(\S+)/m.exec(r.out)?.[1];
  if (!status)
    throw new Error(`cloud-init status in ${c.spec.machine} said nothing usable (exit ${r.status}): ${r.out}`);
  if (status === "running" || status === "not")
    throw new Error(`cloud-init in ${c.spec.machine} did not finish: ${r.out}`);
  return { status, detail: r.out.trim() };
}

/** ssh as `user` to `address`, with the push's options (push.ts baseArgs) and a short dial. */
export function sshArgs(key: KeyPair, knownHosts: string, user: string, address: string): string[] {
  const target = { address, user, privateKeyPath: key.privateKeyPath, knownHosts, connectTimeoutSeconds: 5 };
  return [...baseArgs(target, "-p"), `${user}@${address}`];
}

/** Records the host key cloud-init generated, then waits until ssh as `user` works with `key`. */
export async function waitForSsh(
  c: Container,
  key: KeyPair,
  user: string,
  address: string,
  timeoutMs: number,
): Promise<string> {
  const knownHosts = path.join(path.dirname(key.privateKeyPath), `known_hosts.${c.spec.machine}`);
  const hostKeyFile = path.join(c.root, "etc/ssh/ssh_host_ed25519_key.pub");
  await waitFor(
    `ssh ${user}@${address} (${c.spec.machine})`,
    async () => {
      stillRunning(c);
      // cloud-init's init stage makes the host keys; until then there is nothing to trust.
      if (!fs.existsSync(knownHosts)) {
        const hostKey = fs.readFileSync(hostKeyFile, "utf8").trim().split(/\s+/);
        fs.writeFileSync(knownHosts, `${address} ${hostKey[0]} ${hostKey[1]}\n`);
      }
      const r = await probeAsync(
        "/usr/bin/ssh",
        [...sshArgs(key, knownHosts, user, address), "id -un && sudo -n true && echo sudo-ok"],
        20_000,
      );
      if (r.status === 0 && r.out.includes(`${user}\n`) && r.out.includes("sudo-ok")) return true;
      throw new Error(r.out.trim());
    },
    { timeoutMs },
  );
  return knownHosts;
}
