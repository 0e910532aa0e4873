import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ROOT, shellScripts } from "./support/files";

describe("shell scripts", () => {
  const scripts = shellScripts();

  it("finds the project's scripts", () => {
    const names = scripts.map((s) => path.relative(ROOT, s));
    for (const expected of [
      ".ci/run",
      "scripts/deploy.sh",
      "scripts/destroy.sh",
      "scripts/install-deps.sh",
      "scripts/test.sh",
    ]) {
      assert.ok(names.includes(expected), `${expected} not found among ${names.join(", ")}`);
    }
  });

  it("pass shellcheck", () => {
    const result = spawnSync("shellcheck", ["--external-sources", "--severity=style", ...scripts], {
      cwd: ROOT,
      encoding: "utf8",
    });
    assert.equal(result.error, undefined, "shellcheck must be installed (scripts/install-deps.sh installs it)");
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });
});
