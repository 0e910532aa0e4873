/**
 * The fleet on this machine (needs root, systemd-nspawn, debootstrap, apt-cacher-ng): a host
 * booted from the cached image becomes ready (systemd running, cloud-init done, ssh as the
 * login user with the run's key), and nothing the run made survives it, whether it ends by a
 * failure or by SIGINT.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";
import { Cleanup } from "./cleanup";
import { startFleet } from "./fleet";
import { waitFor } from "./exec";
import { announced, leftovers } from "./leftovers";

// The base image may have to be built first (minutes, cold).
const TIMEOUT = 30 * 60_000;

test("a failure after a container booted still removes everything the run made", { timeout: TIMEOUT }, async () => {
  const cleanup = new Cleanup();
  const lines: string[] = [];
  let aliveAtFailure: number[] = [];
  const log = (line: string) => {
    lines.push(line);
    if (/booted \(nspawn pid/.test(line)) {
      const { pids } = announced(lines);
      aliveAtFailure = pids.filter((p) => {
        try {
          process.kill(p, 0);
          return true;
        } catch {
          return false;
        }
      });
      throw new Error("injected: a check failed");
    }
  };
  await assert.rejects(startFleet(cleanup, { hosts: ["prometheus"], log }), /injected: a check failed/);
  const { runDir, pids } = announced(lines);
  assert.ok(runDir, `no run directory announced in:\n${lines.join("\n")}`);
  // Proxy, nspawn and the container's init were all up when the failure struck.
  assert.equal(aliveAtFailure.length, 3, lines.join("\n"));
  assert.ok(leftovers(runDir, pids).length > 0, "the run made nothing to clean up: the test proves nothing");
  assert.deepEqual(await cleanup.run(), []);
  assert.deepEqual(leftovers(runDir, pids), []);
});

test(
  "a host becomes ready, and SIGINT in the middle of the checks removes everything",
  { timeout: TIMEOUT },
  async () => {
    const main = path.join(__dirname, "main.js");
    const child = spawn(process.execPath, [main, "--hosts", "prometheus"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    // The real condition: the harness says the host is provisioned and the checks began, or it ended.
    const checking = new Promise<boolean>((resolve) => {
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes("fleet: checking each host")) resolve(true);
      });
      void exited.then(() => resolve(false));
    });
    assert.ok(await checking, `the fleet ended before it was ready:\n${stderr}\n${stdout}`);
    // The summary goes to stdout, a different pipe from the log line: wait for it too.
    const row = await waitFor(
      "the summary row of prometheus",
      () => stdout.split("\n").find((l) => l.startsWith("prometheus ")),
      {
        timeoutMs: 10_000,
        intervalMs: 50,
      },
    );
    assert.match(row, /10\.42\.0\.10\s+[\d.]+ s\s+[\d.]+ s\s+running\s+done\s+-$/, `${stdout}\n${stderr}`);
    const { runDir, pids } = announced(stderr.split("\n"));
    assert.ok(runDir);
    assert.ok(leftovers(runDir, pids).length > 0);
    child.kill("SIGINT");
    assert.equal(await exited, 130, stderr);
    assert.deepEqual(leftovers(runDir, pids), [], stderr);
  },
);
