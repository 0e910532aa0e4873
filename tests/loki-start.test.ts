/**
 * Loki's first start belongs to the push: its unit waits for a file only the push writes
 * (templates/host/units.ts), and since a condition-skipped start is silent, the push must see
 * Loki answer /ready or fail. These run the push's own lines against shims of sudo, systemctl,
 * curl, date and sleep.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { LOKI_POST_LINES, LOKI_READY_TIMEOUT_SECONDS } from "../infra/delivery/lokiPush";
import { LOKI_CONFIG_PATH, LOKI_CONFIGURED_PATH } from "../templates/loki/config";
import { one, snapshot, type TimedSnapshot } from "./support/snapshots";

const REMOTE = "command:remote:Command";
let base: TimedSnapshot;
before(async () => {
  base = await snapshot();
  assert.equal(base.error, undefined, base.error);
});

const work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-loki-start-"));
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Runs `lines` with shims; `ready` says whether curl's /ready succeeds. Returns output and the calls made. */
function runPost(lines: readonly string[], ready: boolean) {
  const dir = fs.mkdtempSync(path.join(work, "run-"));
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  const calls = path.join(dir, "calls");
  const clock = path.join(dir, "clock");
  fs.writeFileSync(clock, "1000\n");
  const shim = (name: string, body: string) =>
    fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  shim("sudo", 'exec "$@"');
  shim("systemctl", `echo "systemctl $*" >>${calls}`);
  shim("curl", `echo "curl $*" >>${calls}\n${ready ? "exit 0" : "exit 22"}`);
  // Time moves only when the script sleeps, so the deadline is reached without waiting for it.
  shim("date", `cat ${clock}`);
  shim("sleep", `echo $(($(cat ${clock}) + $1)) >${clock}`);
  const result = spawnSync("sh", ["-c", `set -eu\n${lines.join("\n")}`], {
    encoding: "utf8",
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
  });
  const made = fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").trim().split("\n") : [];
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls: made };
}

describe("Loki's start in the push", () => {
  it("places the configuration, then the mark, restarts Loki on a change, then starts it and waits for /ready", () => {
    const script = String(one(base, REMOTE, "loki-push-install").inputs.create);
    const config = script.indexOf(`place "$staging${LOKI_CONFIG_PATH}"`);
    const mark = script.indexOf(`place "$staging${LOKI_CONFIGURED_PATH}"`);
    const restart = script.indexOf("sudo systemctl restart loki");
    const post = script.indexOf(LOKI_POST_LINES.join("\n"));
    assert.ok(config >= 0 && mark > config, "the mark never exists without the configuration");
    assert.ok(restart > mark, "a changed configuration restarts Loki");
    assert.ok(post > restart, "then Loki must answer");
    for (const other of ["prometheus", "grafana", "web-1"])
      assert.ok(!String(one(base, REMOTE, `${other}-push-install`).inputs.create).includes("/ready"), other);
  });

  it("starts Loki itself and passes once it is ready", () => {
    const r = runPost(LOKI_POST_LINES, true);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.calls[0], "systemctl start loki", "a start of its own: a no-op when running, the first otherwise");
    assert.match(r.calls[1] ?? "", /^curl -fs -o \/dev\/null http:\/\/127\.0\.0\.1:3100\/ready$/);
    assert.match(r.stdout, /^loki ready$/m);
  });

  it("fails with the unit's status when Loki never answers (a skipped start included)", () => {
    const r = runPost(LOKI_POST_LINES, false);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`loki is not ready on :3100 after ${LOKI_READY_TIMEOUT_SECONDS} s:`));
    assert.ok(r.calls.includes("systemctl status --no-pager loki"));
    const polls = r.calls.filter((c) => c.startsWith("curl ")).length;
    assert.equal(polls, LOKI_READY_TIMEOUT_SECONDS / 2, "polled every 2 s until the deadline");
  });
});
