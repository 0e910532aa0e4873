/**
 * A static HTTP server for the stand-in vendor repository (tests/fleet/standins), bound to the
 * bridge address so the hosts fetch it as they would fetch apt.grafana.com: the key with curl,
 * the indices and packages with apt. GET and HEAD of regular files under `dir` only; anything
 * else is 404/405. Stopped by the run's Cleanup.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import type { Cleanup } from "./cleanup";

export interface RepoServer {
  /** http://address:port (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** Every request served, as "METHOD path status" (for diagnostics). */
  readonly requests: readonly string[];
  stop(): Promise<void>;
}

const TYPES: Record<string, string> = {
  ".deb": "application/vnd.debian.binary-package",
  ".gz": "application/gzip",
  ".xz": "application/x-xz",
  ".key": "application/pgp-keys",
};

/** Serves `dir` on `address` (port 0: any free port). */
export async function startRepoServer(dir: string, address: string, cleanup: Cleanup, port = 0): Promise<RepoServer> {
  const root = path.resolve(dir);
  const requests: string[] = [];
  const server = http.createServer((req, res): void => {
    const done = (status: number): void => void requests.push(`${req.method} ${req.url} ${status}`);
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return done(405);
    }
    let rel: string;
    try {
      rel = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    } catch {
      res.writeHead(400).end();
      return done(400);
    }
    const file = path.join(root, rel);
    if (file !== root && !file.startsWith(`${root}${path.sep}`)) {
      res.writeHead(404).end();
      return done(404);
    }
    fs.stat(file, (err, st): void => {
      if (err || !st.isFile()) {
        res.writeHead(404).end();
        return done(404);
      }
      res.writeHead(200, {
        "Content-Length": st.size,
        "Content-Type": TYPES[path.extname(file)] ?? "application/octet-stream",
        "Last-Modified": st.mtime.toUTCString(),
      });
      done(200);
      if (req.method === "HEAD") res.end();
      else fs.createReadStream(file).pipe(res);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, address, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  cleanup.add(`stand-in repository server on ${address}:${bound}`, stop);
  return { url: `http://${address}:${bound}`, port: bound, requests, stop };
}
