import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { ROOT } from "./support/files";
import { titanReadyPids } from "./support/titanReady";
import { Fatal, waitFor } from "./support/wait";

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

describe("titanReadyPids on a real titan-serve", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "titan-ready-"));
  let stop: (() => void) | undefined;
  after(() => {
    stop?.();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("finds one pid per worker, each a child of gunicorn's master, and not from the boot lines", async () => {
    const logPath = path.join(dir, "server.log");
    const out = fs.openSync(logPath, "w");
    const child = spawn(path.join(ROOT, "app", "bin", "titan-serve"), [], {
      env: {
        PATH: "/usr/bin:/bin",
        TITAN_BIND: "127.0.0.1",
        TITAN_PORT: String(await freePort()),
        TITAN_WORKERS: "3",
        TITAN_LOG_DIR: path.join(dir, "log"),
        TITAN_DATA_DIR: path.join(dir, "data"),
        PROMETHEUS_MULTIPROC_DIR: path.join(dir, "prom"),
      },
      stdio: ["ignore", out, out],
      detached: true,
    });
    fs.closeSync(out);
    const pid = child.pid;
    assert.ok(pid);
    let exited = false;
    child.once("exit", () => (exited = true));
    stop = () => {
      if (!exited) process.kill(-pid, "SIGTERM");
    };

    const log = () => fs.readFileSync(logPath, "utf8");
    const ready = await waitFor(
      "3 workers to log that they serve",
      () => {
        if (exited) throw new Fatal(`titan-serve exited:\n${log()}`);
        const pids = titanReadyPids(log());
        return Promise.resolve(pids.size === 3 ? pids : undefined);
      },
      { timeoutMs: 60_000, intervalMs: 100, why: log },
    );
    const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).map(Number);
    assert.deepEqual([...ready].sort(), children.sort());
    // gunicorn's own "Booting worker" line comes before the app is loaded: it must not count.
    assert.match(log(), /Booting worker with pid/);
    const bootLines = log()
      .split("\n")
      .filter((l) => l.includes("Booting worker"));
    assert.equal(bootLines.length >= 3, true);
    assert.equal(titanReadyPids(bootLines.join("\n")).size, 0);
  });
});
