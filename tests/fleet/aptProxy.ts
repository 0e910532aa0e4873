/**
 * Debian's apt-cacher-ng as the fleet's package proxy: its own configuration (no system
 * files touched), its cache under CACHE_DIR so later runs download nothing twice, in the
 * foreground so this run owns its pid and stops it by that pid.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type { Cleanup } from "./cleanup";
import { Fatal, waitFor } from "./exec";
import { APT_PROXY_PORT, CACHE_DIR } from "./layout";

export interface AptProxy {
  readonly pid: number;
  /** The proxy URL for a client on `address`. */
  readonly url: (address: string) => string;
  readonly logDir: string;
}

const canConnect = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });

/** Starts apt-cacher-ng bound to `addresses`; waits until each one accepts connections. */
export async function startAptProxy(runDir: string, addresses: readonly string[], cleanup: Cleanup): Promise<AptProxy> {
  for (const a of addresses) {
    if (await canConnect(a, APT_PROXY_PORT))
      throw new Error(`${a}:${APT_PROXY_PORT} is already in use: another proxy?`);
  }
  const confDir = path.join(runDir, "apt-cacher-ng");
  const logDir = path.join(confDir, "log");
  const cacheDir = path.join(CACHE_DIR, "apt-cacher-ng");
  fs.mkdirSync(logDir, { recursive: true });
  fs.mkdirSync(cacheDir, { recursive: true });
  // Settings are apt-cacher-ng's acng.conf keys (see /etc/apt-cacher-ng/acng.conf of the package).
  fs.writeFileSync(
    path.join(confDir, "acng.conf"),
    [
      `CacheDir: ${cacheDir}`,
      `LogDir: ${logDir}`,
      "SupportDir: /usr/lib/apt-cacher-ng",
      `Port: ${APT_PROXY_PORT}`,
      `BindAddress: ${addresses.join(" ")}`,
      `SocketPath: ${path.join(confDir, "socket")}`,
      "ForeGround: 1",
      // One cache for both names of the security archive.
      "Remap-secdeb: security.debian.org deb.debian.org/debian-security ; deb.debian.org/debian-security",
      "",
    ].join("\n"),
  );
  const out = fs.openSync(path.join(logDir, "stdout.log"), "a");
  const child = spawn("/usr/sbin/apt-cacher-ng", ["-c", confDir], { stdio: ["ignore", out, out], detached: true });
  fs.closeSync(out);
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start /usr/sbin/apt-cacher-ng");
  let exited = false;
  child.once("exit", () => (exited = true));
  cleanup.add(`apt-cacher-ng (pid ${pid})`, async () => {
    if (exited) return;
    const gone = new Promise((r) => child.once("exit", r));
    process.kill(pid, "SIGTERM");
    await gone;
  });
  for (const a of addresses) {
    await waitFor(
      `apt-cacher-ng on ${a}:${APT_PROXY_PORT}`,
      async () => {
        if (exited)
          throw new Fatal(`apt-cacher-ng exited: ${fs.readFileSync(path.join(logDir, "stdout.log"), "utf8")}`);
        return (await canConnect(a, APT_PROXY_PORT)) || undefined;
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );
  }
  return { pid, url: (address) => `http://${address}:${APT_PROXY_PORT}`, logDir };
}
