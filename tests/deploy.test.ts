/**
 * scripts/deploy.sh, destroy.sh and ci-select-stack.sh against a fake `pulumi` and `curl` that
 * record their calls: the two modes (local, shared), stack creation with the mode's secrets
 * provider, the operator's IP checked against allowedCidrs before `pulumi up`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { ROOT } from "./support/files";

let work: string;
let project: string;

/*
 * The fake plays the parts of the real CLI the scripts depend on:
 * - `stack select --create` creates a missing stack; a cloud secrets provider writes
 *   `secretsprovider` and `encryptedkey` into Pulumi.<stack>.yaml and a passphrase writes
 *   `encryptionsalt` (pulumi/pulumi pkg/cmd/pulumi/stack/stack_select.go, secrets.go,
 *   sdk/pkg/secrets/cloud/manager.go); `stack select` without --create fails on a missing stack.
 * - `config get` of a list prints it as JSON, and fails for an unset key
 *   (pkg/cmd/pulumi/config/config_get.go); `config set` writes into Pulumi.<stack>.yaml.
 */
const FAKE_PULUMI = `#!/usr/bin/env bash
printf 'pulumi %s | backend=%s passfile=%s\\n' "$*" "$PULUMI_BACKEND_URL" "\${PULUMI_CONFIG_PASSPHRASE_FILE:-}" >>"$CALLS"
args=("$@"); stack="\${args[-1]}"; provider=""
for ((i = 0; i < $#; i++)); do
  [[ "\${args[i]}" == --stack ]] && stack="\${args[i+1]}"
  [[ "\${args[i]}" == --secrets-provider ]] && provider="\${args[i+1]}"
done
file="Pulumi.$stack.yaml"
case "$1 $2" in
"stack select")
  [[ -f "$WORK/stacks/$stack" ]] && exit 0
  [[ " $* " == *" --create "* ]] || { echo "error: no stack named '$stack' found" >&2; exit 255; }
  mkdir -p "$WORK/stacks" && touch "$WORK/stacks/$stack"
  if [[ -n "$provider" ]]; then
    grep -q '^encryptedkey:' "$file" 2>/dev/null || printf 'secretsprovider: %s\\nencryptedkey: ZmFrZS1rZXk=\\n' "$provider" >>"$file"
  else
    grep -q '^encryptionsalt:' "$file" 2>/dev/null || printf 'encryptionsalt: v1:ZmFrZQ==:v1:c2FsdA==\\n' >>"$file"
  fi ;;
"config get")
  [[ -f "$WORK/cidrs" ]] || { echo "error: configuration key 'allowedCidrs' not found" >&2; exit 255; }
  cat "$WORK/cidrs" ;;
"config set")
  printf '["%s"]\\n' "\${args[-1]}" >"$WORK/cidrs"
  printf '# allowedCidrs %s\\n' "\${args[-1]}" >>"$file" ;;
esac
exit 0
`;
const FAKE_CURL = `#!/usr/bin/env bash
printf 'curl %s\\n' "$*" >>"$CALLS"
[[ -z "\${CURL_FAIL:-}" ]] || { echo "curl: (6) Could not resolve host" >&2; exit 6; }
printf '%s\\n' "$CURL_ANSWER"
`;

const KMS = "awskms://alias/titan-pulumi?region=us-east-1";
const S3 = "s3://team-state/titan?region=us-east-1";
const SHARED = { TITAN_BACKEND_URL: S3, TITAN_SECRETS_PROVIDER: KMS };

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-deploy-"));
  project = path.join(work, "project");
  for (const entry of ["scripts", "facts", "tools", "tsconfig.json", "Pulumi.dev.yaml"]) {
    fs.cpSync(path.join(ROOT, entry), path.join(project, entry), { recursive: true });
  }
  // The real modules: deploy.sh runs tools/operatorAccess.ts through ts-node.
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(project, "node_modules"));
  fs.mkdirSync(path.join(work, "bin"));
  fs.writeFileSync(path.join(work, "bin/pulumi"), FAKE_PULUMI, { mode: 0o755 });
  fs.writeFileSync(path.join(work, "bin/curl"), FAKE_CURL, { mode: 0o755 });
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

function run(script: string, env: Record<string, string> = {}, args: string[] = []) {
  const base = { ...process.env };
  for (const key of [
    "PULUMI_BACKEND_URL",
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_CONFIG_PASSPHRASE_FILE",
    "STACK",
    "TITAN_BACKEND_URL",
    "TITAN_SECRETS_PROVIDER",
    "TITAN_OPERATOR_IP",
  ]) {
    delete base[key];
  }
  const result = spawnSync("bash", [path.join(project, "scripts", script), ...args], {
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
  fs.rmSync(path.join(work, "calls"), { force: true });
  return { ...result, calls };
}

const setCidrs = (json: string) => fs.writeFileSync(path.join(work, "cidrs"), `${json}\n`);
const stackFile = () => fs.readFileSync(path.join(project, "Pulumi.dev.yaml"), "utf8");
const ups = (calls: string[]) => calls.filter((c) => c.startsWith("pulumi up"));

describe("deploy.sh, local mode", () => {
  it("uses a local backend and a generated passphrase, creates the stack, sets allowedCidrs, runs pulumi up", () => {
    const result = run("deploy.sh", {}, ["--yes"]);
    assert.equal(result.status, 0, result.stderr);
    const state = path.join(project, ".pulumi-state");
    const suffix = ` | backend=file://${state} passfile=${state}/passphrase`;
    assert.deepEqual(result.calls, [
      `pulumi stack select --create dev${suffix}`,
      "curl -fsS --max-time 10 https://checkip.amazonaws.com",
      `pulumi config get --stack dev allowedCidrs${suffix}`,
      `pulumi config set --stack dev --path allowedCidrs[0] 198.51.100.23/32${suffix}`,
      `pulumi up --stack dev --yes${suffix}`,
    ]);
    assert.match(result.stderr, /allowedCidrs was unset: set it to your public IP 198\.51\.100\.23\/32/);
    const passphrase = fs.readFileSync(path.join(state, "passphrase"), "utf8").trim();
    assert.ok(passphrase.length >= 40);
    assert.equal(fs.statSync(path.join(state, "passphrase")).mode & 0o777, 0o600);
    assert.ok(!(result.stdout + result.stderr).includes(passphrase), "the passphrase is never printed");
  });

  it("keeps the passphrase and allowedCidrs on the next run from the same address", () => {
    run("deploy.sh");
    const state = path.join(project, ".pulumi-state/passphrase");
    const first = fs.readFileSync(state, "utf8");
    const again = run("deploy.sh");
    assert.equal(again.status, 0, again.stderr);
    assert.equal(fs.readFileSync(state, "utf8"), first);
    assert.ok(!again.calls.some((c) => c.startsWith("pulumi config set")));
    assert.equal(ups(again.calls).length, 1);
  });

  it("stops before pulumi up when the IP has changed, offering the one command that fixes it", () => {
    run("deploy.sh");
    const moved = run("deploy.sh", { CURL_ANSWER: "203.0.113.9" });
    assert.equal(moved.status, 1);
    assert.deepEqual(ups(moved.calls), []);
    assert.match(moved.stderr, /your public IP 203\.0\.113\.9 .*is not inside allowedCidrs \["198\.51\.100\.23\/32"\]/);
    assert.match(moved.stderr, /pulumi config set --stack dev --path 'allowedCidrs\[0\]' 203\.0\.113\.9\/32/);
  });

  it("appends rather than replaces when the list holds more than the operator's old /32", () => {
    run("deploy.sh");
    setCidrs('["198.51.100.23/32","192.0.2.0/28"]');
    const moved = run("deploy.sh", { CURL_ANSWER: "203.0.113.9" });
    assert.equal(moved.status, 1);
    assert.match(moved.stderr, /--path 'allowedCidrs\[2\]' 203\.0\.113\.9\/32/);
  });

  it("proceeds when the IP lies inside a wider CIDR, in the JSON list or the comma form", () => {
    run("deploy.sh");
    for (const cidrs of ['["192.0.2.0/28","203.0.112.0/23"]', "192.0.2.0/28, 203.0.112.0/23"]) {
      setCidrs(cidrs);
      const result = run("deploy.sh", { CURL_ANSWER: "203.0.113.9" });
      assert.equal(result.status, 0, `${cidrs}: ${result.stderr}`);
      assert.equal(ups(result.calls).length, 1, cidrs);
      assert.ok(result.calls.includes("curl -fsS --max-time 10 https://checkip.amazonaws.com"), "the IP was checked");
    }
  });

  it("stops with the override when the IP cannot be looked up, and the override works", () => {
    run("deploy.sh");
    const failed = run("deploy.sh", { CURL_FAIL: "1" });
    assert.equal(failed.status, 1);
    assert.deepEqual(ups(failed.calls), []);
    assert.match(failed.stderr, /could not be looked up .*TITAN_OPERATOR_IP=<your-ip> npm run deploy/);
    const given = run("deploy.sh", { CURL_FAIL: "1", TITAN_OPERATOR_IP: "198.51.100.23" });
    assert.equal(given.status, 0, given.stderr);
    assert.ok(!given.calls.some((c) => c.startsWith("curl")), "no lookup when the IP is given");
  });

  it("refuses to guess when the IP lookup answers nonsense", () => {
    const result = run("deploy.sh", { CURL_ANSWER: "<html>rate limited</html>" });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /checkip\.amazonaws\.com gave "<html>ratelimited<\/html>": expected an IPv4 address/);
    assert.ok(!result.calls.some((c) => c.startsWith("pulumi up") || c.startsWith("pulumi config set")));
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
    assert.ok(!fs.existsSync(path.join(project, ".pulumi-state/passphrase")));
  });

  it("refuses a stack file that belongs to a shared stack", () => {
    fs.appendFileSync(path.join(project, "Pulumi.dev.yaml"), `secretsprovider: ${KMS}\nencryptedkey: ZmFrZS1rZXk=\n`);
    const result = run("deploy.sh");
    assert.equal(result.status, 1);
    assert.deepEqual(result.calls, []);
    assert.match(result.stderr, /belongs to a shared stack .*set TITAN_BACKEND_URL and TITAN_SECRETS_PROVIDER=awskms/);
  });

  it("explains a missing Pulumi CLI", () => {
    fs.rmSync(path.join(work, "bin/pulumi"));
    const result = run("deploy.sh", { PATH: `${path.join(work, "bin")}:/usr/bin:/bin` });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /the Pulumi CLI is not installed/);
  });
});

describe("deploy.sh, shared mode", () => {
  it("creates the stack on the shared backend with the KMS secrets provider, no passphrase", () => {
    setCidrs('["198.51.100.0/24"]');
    const result = run("deploy.sh", SHARED, ["--yes"]);
    assert.equal(result.status, 0, result.stderr);
    const suffix = ` | backend=${S3} passfile=`;
    assert.deepEqual(result.calls, [
      `pulumi stack select --create --secrets-provider ${KMS} dev${suffix}`,
      "curl -fsS --max-time 10 https://checkip.amazonaws.com",
      `pulumi config get --stack dev allowedCidrs${suffix}`,
      `pulumi up --stack dev --yes${suffix}`,
    ]);
    assert.match(stackFile(), new RegExp(`^secretsprovider: ${KMS.replace(/[?]/g, "\\?")}$`, "m"));
    assert.doesNotMatch(stackFile(), /encryptionsalt/);
    assert.match(result.stderr, /created the shared stack dev: commit Pulumi\.dev\.yaml/);
    assert.ok(!fs.existsSync(path.join(project, ".pulumi-state")), "no local state, no passphrase");
  });

  it("never writes the operator's IP into the committed stack file: it refuses with the command to add a team CIDR", () => {
    run("deploy.sh", { ...SHARED, TITAN_OPERATOR_IP: "198.51.100.23" }); // creates the stack
    const committed = stackFile();
    for (const cidrs of [undefined, '["192.0.2.0/24"]']) {
      if (cidrs) setCidrs(cidrs);
      const result = run("deploy.sh", SHARED);
      assert.equal(result.status, 1, cidrs);
      assert.deepEqual(ups(result.calls), [], cidrs);
      assert.ok(!result.calls.some((c) => c.startsWith("pulumi config set")), cidrs);
      assert.match(result.stderr, /shared stack/);
      assert.match(result.stderr, /pulumi config set --stack dev --path 'allowedCidrs\[\d\]' <team-cidr>/);
      assert.equal(stackFile(), committed, "Pulumi.dev.yaml is byte for byte what was committed");
    }
  });

  it("refuses a passphrase salt or another key in the committed stack file, and half a configuration", () => {
    const salted = path.join(project, "Pulumi.dev.yaml");
    fs.appendFileSync(salted, "encryptionsalt: v1:ZmFrZQ==:v1:c2FsdA==\n");
    let result = run("deploy.sh", SHARED);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /has an encryptionsalt/);
    fs.copyFileSync(path.join(ROOT, "Pulumi.dev.yaml"), salted);
    fs.appendFileSync(salted, "secretsprovider: awskms://alias/other?region=us-east-1\n");
    result = run("deploy.sh", SHARED);
    assert.match(result.stderr, /expected the same key; set TITAN_SECRETS_PROVIDER=awskms:\/\/alias\/other/);
    result = run("deploy.sh", { TITAN_BACKEND_URL: S3 });
    assert.match(result.stderr, /TITAN_BACKEND_URL is set but TITAN_SECRETS_PROVIDER is empty/);
    result = run("deploy.sh", { ...SHARED, TITAN_BACKEND_URL: "file:///tmp/state" });
    assert.match(result.stderr, /TITAN_BACKEND_URL=file:\/\/\/tmp\/state: expected an s3:\/\/ URL/);
    result = run("deploy.sh", { ...SHARED, PULUMI_BACKEND_URL: "s3://elsewhere" });
    assert.match(result.stderr, /disagree: expected one backend/);
  });

  it("names the missing secrets settings when the stack exists but the file lacks them", () => {
    fs.mkdirSync(path.join(work, "stacks"));
    fs.writeFileSync(path.join(work, "stacks/dev"), "");
    const result = run("deploy.sh", SHARED);
    assert.equal(result.status, 1);
    assert.deepEqual(ups(result.calls), []);
    assert.match(
      result.stderr,
      /lacks the shared stack's secretsprovider and encryptedkey: .*pulumi config refresh --stack dev/,
    );
  });
});

describe("destroy.sh", () => {
  it("destroys the same stack on the same backend", () => {
    const result = run("destroy.sh", {}, ["--yes"]);
    assert.equal(result.status, 0, result.stderr);
    const state = path.join(project, ".pulumi-state");
    assert.deepEqual(result.calls, [
      `pulumi destroy --stack dev --yes | backend=file://${state} passfile=${state}/passphrase`,
    ]);
  });

  it("destroys the shared stack on the shared backend", () => {
    fs.appendFileSync(path.join(project, "Pulumi.dev.yaml"), `secretsprovider: ${KMS}\nencryptedkey: ZmFrZS1rZXk=\n`);
    const result = run("destroy.sh", SHARED);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.calls, [`pulumi destroy --stack dev | backend=${S3} passfile=`]);
  });
});

describe("ci-select-stack.sh (the pull-request preview's first step)", () => {
  it("selects the existing shared stack and never creates one", () => {
    fs.appendFileSync(path.join(project, "Pulumi.dev.yaml"), `secretsprovider: ${KMS}\nencryptedkey: ZmFrZS1rZXk=\n`);
    const missing = run("ci-select-stack.sh", SHARED);
    assert.equal(missing.status, 1);
    assert.deepEqual(missing.calls, [`pulumi stack select dev | backend=${S3} passfile=`]);
    assert.match(missing.stderr, /no stack dev in s3:\/\/team-state/);
    fs.mkdirSync(path.join(work, "stacks"));
    fs.writeFileSync(path.join(work, "stacks/dev"), "");
    assert.equal(run("ci-select-stack.sh", SHARED).status, 0);
  });

  it("refuses to run outside shared mode", () => {
    const result = run("ci-select-stack.sh");
    assert.equal(result.status, 1);
    assert.deepEqual(result.calls, []);
    assert.match(result.stderr, /the preview needs the shared backend/);
  });
});
