/**
 * scripts/deploy.sh and destroy.sh against a fake `pulumi` and `curl` that record their calls:
 * the local backend, the generated passphrase, stack creation and the first-use allowedCidrs.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { ROOT } from "./support/files";

let work: string;

const FAKE_PULUMI = `#!/usr/bin/env bash
printf 'pulumi %s | backend=%s passfile=%s\\n' "$*" "$PULUMI_BACKEND_URL" "\${PULUMI_CONFIG_PASSPHRASE_FILE:-}" >>"$CALLS"
if [[ "$1 $2" == "config get" ]]; then [[ -f "$WORK/cidrs" ]] && cat "$WORK/cidrs" && exit 0; exit 255; fi
if [[ "$1 $2" == "config set" ]]; then echo "\${*: -1}" >"$WORK/cidrs"; fi
exit 0
`;
const FAKE_CURL = `#!/usr/bin/env bash
printf 'curl %s\\n' "$*" >>"$CALLS"
printf '%s\\n' "$CURL_ANSWER"
`;

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-deploy-"));
  fs.cpSync(path.join(ROOT, "scripts"), path.join(work, "project/scripts"), { recursive: true });
  fs.mkdirSync(path.join(work, "project/node_modules/@pulumi/pulumi"), { recursive: true });
  fs.mkdirSync(path.join(work, "bin"));
  fs.writeFileSync(path.join(work, "bin/pulumi"), FAKE_PULUMI, { mode: 0o755 });
  fs.writeFileSync(path.join(work, "bin/curl"), FAKE_CURL, { mode: 0o755 });
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

function run(script: string, env: Record<string, string> = {}, args: string[] = []) {
  const base = { ...process.env };
  delete base.PULUMI_BACKEND_URL;
  delete base.PULUMI_CONFIG_PASSPHRASE;
  delete base.PULUMI_CONFIG_PASSPHRASE_FILE;
  delete base.STACK;
  const result = spawnSync("bash", [path.join(work, "project/scripts", script), ...args], {
    encoding: "utf8",
    env: {
      ...base,
      PATH: `${path.join(work, "bin")}:${process.env.PATH ?? ""}`,
      CALLS: path.join(work, "calls"),
      WORK: work,
      CURL_ANSWER: "198.51.100.23",
      ...env,
    },
  });
  const calls = fs.existsSync(path.join(work, "calls"))
    ? fs.readFileSync(path.join(work, "calls"), "utf8").trim().split("\n")
    : [];
  return { ...result, calls };
}

describe("deploy.sh", () => {
  it("uses a local backend and a generated passphrase, creates the stack, sets allowedCidrs, runs pulumi up", () => {
    const result = run("deploy.sh", {}, ["--yes"]);
    assert.equal(result.status, 0, result.stderr);
    const state = path.join(work, "project/.pulumi-state");
    const suffix = ` | backend=file://${state} passfile=${state}/passphrase`;
    assert.deepEqual(result.calls, [
      `pulumi stack select --create dev${suffix}`,
      `pulumi config get --stack dev allowedCidrs${suffix}`,
      "curl -fsS --max-time 10 https://checkip.amazonaws.com",
      `pulumi config set --stack dev --path allowedCidrs[0] 198.51.100.23/32${suffix}`,
      `pulumi up --stack dev --yes${suffix}`,
    ]);
    assert.match(result.stderr, /allowedCidrs was unset: set it to your public IP 198\.51\.100\.23\/32/);
    const passphrase = fs.readFileSync(path.join(state, "passphrase"), "utf8").trim();
    assert.ok(passphrase.length >= 40);
    assert.equal(fs.statSync(path.join(state, "passphrase")).mode & 0o777, 0o600);
    assert.ok(!(result.stdout + result.stderr).includes(passphrase), "the passphrase is never printed");
  });

  it("keeps the passphrase and allowedCidrs on the next run", () => {
    run("deploy.sh");
    const state = path.join(work, "project/.pulumi-state/passphrase");
    const first = fs.readFileSync(state, "utf8");
    fs.rmSync(path.join(work, "calls"));
    const again = run("deploy.sh");
    assert.equal(again.status, 0, again.stderr);
    assert.equal(fs.readFileSync(state, "utf8"), first);
    assert.ok(!again.calls.some((c) => c.startsWith("curl")), "no IP lookup once allowedCidrs is set");
    assert.ok(!again.calls.some((c) => c.startsWith("pulumi config set")));
  });

  it("respects a backend and passphrase the operator chose", () => {
    const result = run("deploy.sh", {
      PULUMI_BACKEND_URL: "s3://team-state/titan",
      PULUMI_CONFIG_PASSPHRASE: "team",
      STACK: "demo",
    });
    assert.equal(result.status, 0, result.stderr);
    assert.ok(
      result.calls.every((c) => !c.startsWith("pulumi") || c.endsWith("| backend=s3://team-state/titan passfile=")),
    );
    assert.ok(result.calls.includes("pulumi up --stack demo | backend=s3://team-state/titan passfile="));
    assert.ok(!fs.existsSync(path.join(work, "project/.pulumi-state/passphrase")));
  });

  it("refuses to guess when the IP lookup answers nonsense", () => {
    const result = run("deploy.sh", { CURL_ANSWER: "<html>rate limited</html>" });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /not an IPv4 address; set allowedCidrs yourself/);
    assert.ok(!result.calls.some((c) => c.startsWith("pulumi up")));
  });

  it("explains a missing Pulumi CLI", () => {
    fs.rmSync(path.join(work, "bin/pulumi"));
    const result = run("deploy.sh", { PATH: `${path.join(work, "bin")}:/usr/bin:/bin` });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /the Pulumi CLI is not installed/);
  });
});

describe("destroy.sh", () => {
  it("destroys the same stack on the same backend", () => {
    const result = run("destroy.sh", {}, ["--yes"]);
    assert.equal(result.status, 0, result.stderr);
    const state = path.join(work, "project/.pulumi-state");
    assert.deepEqual(result.calls, [
      `pulumi destroy --stack dev --yes | backend=file://${state} passfile=${state}/passphrase`,
    ]);
  });
});
