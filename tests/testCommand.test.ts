/**
 * The test command's preflight (scripts/test.sh): what it needs is said at once, before anything
 * is installed or built. As any user but root it stops, TITAN_SKIP_FLEET=1 or not, because the
 * end-to-end run, the sandbox proof and the data-volume test need root as much as the fleet does;
 * and a Node older than 20 (Debian 12's own nodejs is 18) is refused by name. The script runs
 * from a scratch copy of scripts/ holding nothing else, so a preflight that let it through would
 * fail on the missing install-deps.sh, never touch this checkout's build/ or packages.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { ROOT } from "./support/files";

let work: string;
let bin: string;

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-test-command-"));
  bin = path.join(work, "bin");
  fs.mkdirSync(bin);
  fs.mkdirSync(path.join(work, "scripts"));
  fs.copyFileSync(path.join(ROOT, "scripts/test.sh"), path.join(work, "scripts/test.sh"));
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

/** A stand-in for a command on PATH: prints `out` and exits 0. */
const fake = (name: string, out: string) =>
  fs.writeFileSync(path.join(bin, name), `#!/bin/sh\nprintf '%s\\n' '${out}'\n`, { mode: 0o755 });

function run(env: Record<string, string>) {
  return spawnSync("bash", [path.join(work, "scripts/test.sh")], {
    encoding: "utf8",
    env: { PATH: `${bin}:${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: work, ...env },
  });
}

describe("npm test's preflight (scripts/test.sh)", () => {
  for (const skip of ["1", ""]) {
    it(`refuses to run as a user other than root${skip ? " even with TITAN_SKIP_FLEET=1" : ""}, before installing anything`, () => {
      fake("id", "1000");
      const result = run({ TITAN_SKIP_FLEET: skip });
      assert.equal(result.status, 1, result.stdout + result.stderr);
      assert.match(result.stderr, /needs root, and this is uid 1000/);
      assert.match(result.stderr, /end-to-end run, the sandbox proof and the data-volume test/);
      assert.match(result.stderr, /TITAN_SKIP_FLEET=1 leaves out the fleet alone/);
      assert.doesNotMatch(result.stdout, /== dependencies/, "it stopped before the first step");
    });
  }

  it("refuses a Node older than 20 by its version, before installing anything", () => {
    fake("id", "0");
    fake("node", "18.19.0");
    const result = run({ TITAN_SKIP_FLEET: "1" });
    assert.equal(result.status, 1, result.stdout + result.stderr);
    assert.match(
      result.stderr,
      /needs Node\.js 20 or newer .* node here is 18\.19\.0; Debian 12's nodejs package is 18/,
    );
    assert.doesNotMatch(result.stdout, /== dependencies/);
  });

  it("lets root with Node 20 or newer through to its first step", () => {
    fake("id", "0");
    fake("node", "20.19.2");
    const result = run({ TITAN_SKIP_FLEET: "1" });
    // The scratch copy has no install-deps.sh: the first step fails, which proves the preflight passed.
    assert.match(result.stdout, /== dependencies/, result.stderr);
    assert.match(result.stderr, /install-deps\.sh/);
  });
});
