/**
 * scripts/deploy.sh pins a stack's region before anything is created: a new stack gets
 * aws:region from AWS_REGION (or AWS_DEFAULT_REGION), and with neither nothing is created at all.
 * A fake `pulumi` on PATH records each call and keeps the stack file as the CLI would.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { runScript, scratchProject } from "./support/fakeCli";

/*
 * Just what deploy.sh asks of the CLI: `stack select --create` creates the stack (a passphrase
 * stack's file gains its encryptionsalt), `config get` fails for an unset key, `config set`
 * writes `  key: value` under config: in Pulumi.<stack>.yaml (pulumi/pulumi
 * pkg/cmd/pulumi/config/config_set.go saves the project stack file), `up` succeeds.
 */
const FAKE_PULUMI = `#!/usr/bin/env bash
printf 'pulumi %s\\n' "$*" >>"$CALLS"
args=("$@"); stack=""
for ((i = 0; i < $#; i++)); do [[ "\${args[i]}" == --stack ]] && stack="\${args[i+1]}"; done
[[ -n "$stack" ]] || stack="\${args[-1]}"
file="Pulumi.$stack.yaml"
case "$1 $2" in
"stack select")
  mkdir -p "$WORK/stacks"; touch "$WORK/stacks/$stack"
  grep -q '^encryptionsalt:' "$file" 2>/dev/null || printf 'encryptionsalt: v1:ZmFrZQ==\\n' >>"$file" ;;
"config get") echo "error: configuration key '\${args[-1]}' not found" >&2; exit 255 ;;
"config set")
  key="\${args[-2]}"; value="\${args[-1]}"
  [[ "$key" == *:* ]] || key="titan-observability:$key"
  grep -q '^config:' "$file" 2>/dev/null || printf 'config:\\n' >>"$file"
  printf '  %s: %s\\n' "$key" "$value" >>"$file" ;;
esac
exit 0
`;

let work: string;
let project: string;

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-region-"));
  project = scratchProject(work, { pulumi: FAKE_PULUMI });
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

const deploy = (env: Record<string, string>) =>
  runScript(work, project, "deploy.sh", {
    args: ["--yes"],
    env: { TITAN_OPERATOR_IP: "198.51.100.23", ...env },
    // The region must come from the test alone: none of the operator's AWS settings.
    strip: (k) => /^(PULUMI_|TITAN_|AWS_)/.test(k) || k === "STACK",
  });

const stackFile = (stack: string) => path.join(project, `Pulumi.${stack}.yaml`);

describe("deploy.sh and the stack's region", () => {
  it("sets aws:region on a new stack from AWS_REGION, before pulumi up, and keeps it", () => {
    const result = deploy({ STACK: "demo", AWS_REGION: "eu-west-1" });
    assert.equal(result.status, 0, result.stderr);
    const set = result.calls.indexOf("pulumi config set --stack demo aws:region eu-west-1");
    const up = result.calls.findIndex((c) => c.startsWith("pulumi up"));
    assert.ok(set >= 0 && up > set, result.calls.join("\n"));
    assert.ok(result.calls.findIndex((c) => c.startsWith("pulumi stack select")) < set, "the stack exists first");
    assert.match(fs.readFileSync(stackFile("demo"), "utf8"), /^ {2}aws:region: eu-west-1$/m);
    assert.match(result.stderr, /aws:region was unset for stack demo: set it to eu-west-1 \(from AWS_REGION\)/);

    // The next deploy, from a shell in another region, keeps the stack where it is.
    const again = deploy({ STACK: "demo", AWS_REGION: "ap-south-1" });
    assert.equal(again.status, 0, again.stderr);
    assert.ok(!again.calls.some((c) => c.includes("aws:region")), again.calls.join("\n"));
  });

  it("takes AWS_DEFAULT_REGION when AWS_REGION is unset", () => {
    const result = deploy({ STACK: "demo", AWS_DEFAULT_REGION: "eu-central-1" });
    assert.equal(result.status, 0, result.stderr);
    assert.ok(result.calls.includes("pulumi config set --stack demo aws:region eu-central-1"));
  });

  it("refuses without any region, naming the key and the command, before the stack is created", () => {
    const result = deploy({ STACK: "demo" });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /aws:region is not set in Pulumi\.demo\.yaml/);
    assert.match(result.stderr, /AWS_REGION=us-east-1 STACK=demo npm run deploy/);
    assert.deepEqual(result.calls, [], "no pulumi call at all: no stack, no resource");
    assert.ok(!fs.existsSync(stackFile("demo")));
  });

  it("leaves the committed dev stack's region alone", () => {
    const before = fs.readFileSync(stackFile("dev"), "utf8");
    const result = deploy({ AWS_REGION: "eu-west-1" });
    assert.equal(result.status, 0, result.stderr);
    assert.ok(!result.calls.some((c) => c.includes("aws:region")), result.calls.join("\n"));
    assert.match(before, /^ {2}aws:region: us-east-1$/m);
    assert.match(fs.readFileSync(stackFile("dev"), "utf8"), /^ {2}aws:region: us-east-1$/m);
  });
});
