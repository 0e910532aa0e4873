/**
 * The test process stays outside the namespace (Node cannot enter one), so it reaches the
 * services through a helper inside it: an HTTP forwarder on a Unix socket. Filesystem sockets
 * are not scoped to a network namespace; TCP addresses are. Requests carry the in-namespace URL
 * in absolute form, as to a proxy, and only addresses on the allow list are forwarded.
 */
import * as http from "node:http";

export interface BridgeResponse {
  readonly status: number;
  readonly body: string;
}

export function createBridge(allowedHosts: ReadonlySet<string>): http.Server {
  return http.createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? "");
    } catch {
      res.writeHead(400).end(`bridge: expected an absolute URL, got ${req.url}`);
      return;
    }
    if (target.protocol !== "http:" || !allowedHosts.has(target.hostname)) {
      res.writeHead(403).end(`bridge: ${target.host} is not an address of this run`);
      return;
    }
    const upstream = http.request(
      target,
      { method: req.method, headers: { ...req.headers, host: target.host }, timeout: 20_000 },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("timeout", () => upstream.destroy(new Error("timeout")));
    // 599 tells the caller the connection itself failed (refused, unreachable), not the service.
    upstream.on("error", (err) => {
      if (!res.headersSent) res.writeHead(599, { "x-bridge-error": err.message });
      res.end(`bridge: ${target.host}: ${err.message}`);
    });
    req.pipe(upstream);
  });
}

export interface RequestOptions {
  readonly method?: string;
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

/** One request to an in-namespace URL through the bridge's socket. */
export function bridgeRequest(socketPath: string, url: string, options: RequestOptions = {}): Promise<BridgeResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        path: url,
        method: options.method ?? "GET",
        headers: {
          ...(options.headers ?? {}),
          ...(options.body ? { "content-length": Buffer.byteLength(options.body) } : {}),
        },
        timeout: options.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout: ${url}`)));
    req.on("error", reject);
    req.end(options.body);
  });
}
