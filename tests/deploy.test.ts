/**
 * scripts/deploy.sh, destroy.sh and the pull-request preview's scripts (ci-select-stack.sh,
 * ci-preview.sh, ci-pr-comment.sh) against a fake `pulumi`, `curl` and `gh` that record their
 * calls: the two modes (local, shared), stack creation with the mode's secrets provider, the
 * operator's IP checked against allowedCidrs before `pulumi up`, the policy pack on every `up`
 * and preview, the preview's pull-request comment.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { ROOT } from "./support/files";
import { FAKE_CURL, FAKE_PULUMI, runScript, scratchProject } from "./support/fakeCli";

let work: string;
let project: string;

// The fake `pulumi` and `curl`: tests/support/fakeCli.ts, shared with documentedCommands.test.ts.

/*
 * The fake plays `gh api` against the pull request's comments, kept as files in $WORK/comments:
 * GET lists them through the `--jq` filter ci-pr-comment.sh gives, which this fake knows only in
 * the one form that script uses (the id of each comment whose body starts with the marker; a
 * stand-in for gh's jq, it proves the script's flow, not the filter's syntax); POST adds one and
 * PATCH replaces one, the body read from the file named by -F body=@<file> (cli/cli
 * pkg/cmd/api/api.go, -F/--field: a value starting with @ is read from that file).
 */
const FAKE_GH = `#!/usr/bin/env bash
printf 'gh %s | token=%s\\n' "$*" "\${GH_TOKEN:-}" >>"$CALLS"
mkdir -p "$WORK/comments"
method=GET; endpoint=""; body=""; jq=""
while (($#)); do
  case "$1" in
  --method) method=$2; shift ;;
  --jq) jq=$2; shift ;;
  -F) body=\${2#body=@}; shift ;;
  --paginate) ;;
  *) endpoint=$1 ;;
  esac
  shift
done
case "$method" in
GET)
  [[ "$jq" == '.[] | select(.body | startswith("<!-- titan-preview -->")) | .id' ]] || { echo "fake gh: unknown filter $jq" >&2; exit 2; }
  for f in "$WORK"/comments/*; do
    [[ -f "$f" ]] && [[ "$(head -n 1 "$f")" == '<!-- titan-preview -->' ]] && basename "$f"
  done | sort -n ;;
POST) n=$(($(find "$WORK/comments" -type f | wc -l) + 101)); cp "$body" "$WORK/comments/$n" ;;
PATCH) cp "$body" "$WORK/comments/\${endpoint##*/}" ;;
esac
exit 0
`;

const KMS = "awskms://alias/titan-pulumi?region=us-east-1";
const S3 = "s3://team-state/titan?region=us-east-1";
const SHARED = { TITAN_BACKEND_URL: S3, TITAN_SECRETS_PROVIDER: KMS };

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-deploy-"));
  project = scratchProject(work, { pulumi: FAKE_PULUMI, gh: FAKE_GH, curl: FAKE_CURL });
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

/** The operator's own settings that must not reach the scripts under test. */
const OPERATOR_ENV = new Set([
  "PULUMI_BACKEND_URL",
  "PULUMI_CONFIG_PASSPHRASE",
  "PULUMI_CONFIG_PASSPHRASE_FILE",
  "STACK",
  "TITAN_BACKEND_URL",
  "TITAN_SECRETS_PROVIDER",
  "TITAN_OPERATOR_IP",
  "GITHUB_REPOSITORY",
  "GH_TOKEN",
]);

const run = (script: string, env: Record<string, string> = {}, args: string[] = []) =>
  runScript(work, project, script, {
    args,
    env: { CURL_ANSWER: "198.51.100.23", ...env },
    strip: (k) => OPERATOR_ENV.has(k),
  });

const setCidrs = (json: string) => fs.writeFileSync(path.join(work, "cidrs"), `${json}\n`);
const stackFile = () => fs.readFileSync(path.join(project, "Pulumi.dev.yaml"), "utf8");
const ups = (calls: string[]) => calls.filter((c) => c.startsWith("pulumi up"));
const pack = () => path.join(project, "policy");

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
      `pulumi up --stack dev --policy-pack ${pack()} --yes${suffix}`,
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
    assert.match(
      moved.stderr,
      /Fix: npm run pulumi -- config set --stack dev --path 'allowedCidrs\[0\]' 203\.0\.113\.9\/32/,
    );
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
      AWS_REGION: "us-east-1",
    });
    assert.equal(result.status, 0, result.stderr);
    assert.ok(
      result.calls.every((c) => !c.startsWith("pulumi") || c.endsWith("| backend=s3://team-state/titan passfile=")),
    );
    assert.ok(
      result.calls.includes(`pulumi up --stack demo --policy-pack ${pack()} | backend=s3://team-state/titan passfile=`),
    );
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
      `pulumi up --stack dev --policy-pack ${pack()} --yes${suffix}`,
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
      assert.match(result.stderr, /: npm run pulumi -- config set --stack dev --path 'allowedCidrs\[\d\]' <team-cidr>/);
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
      /lacks the shared stack's secretsprovider and encryptedkey: .*: npm run pulumi -- config refresh --stack dev$/m,
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

describe("deploy.sh and the policy pack", () => {
  it("runs pulumi up with --policy-pack naming the pack's directory by absolute path", () => {
    const result = run("deploy.sh", { TITAN_OPERATOR_IP: "198.51.100.23" });
    assert.equal(result.status, 0, result.stderr);
    const [up] = ups(result.calls);
    assert.match(up, new RegExp(`^pulumi up --stack dev --policy-pack ${pack()} \\|`));
    assert.ok(path.isAbsolute(pack()) && fs.existsSync(path.join(pack(), "PulumiPolicy.yaml")));
  });

  it("stops before calling pulumi when the pack's PulumiPolicy.yaml is missing", () => {
    fs.rmSync(path.join(pack(), "PulumiPolicy.yaml"));
    const result = run("deploy.sh", { TITAN_OPERATOR_IP: "198.51.100.23" });
    assert.equal(result.status, 1);
    assert.deepEqual(result.calls, []);
    assert.match(result.stderr, new RegExp(`the policy pack is missing: expected ${pack()}/PulumiPolicy\\.yaml`));
  });

  it("refuses to skip up's preview, where a mandatory violation stops the update before any change", () => {
    // pulumi up's flags (pulumi/pulumi pkg/cmd/pulumi/operations/up.go): -f is --skip-preview;
    // -y, -j, -d and the global -e, -Q are booleans and -r has an optional value, so an f after
    // them in one group is --skip-preview too (spf13/pflag parseSingleShortArg).
    const skipping = [
      ["--skip-preview"],
      ["--skip-preview=true"],
      ["-f"],
      ["-yf"],
      ["-fy"],
      ["-jf"],
      ["-df"],
      ["-rf"],
      ["-yjdf"],
      ["-f=true"],
      ["-s", "dev", "-yf"],
      ["--message", "fix", "-yf"],
    ];
    for (const args of skipping) {
      const flag = args[args.length - 1];
      const result = run("deploy.sh", { TITAN_OPERATOR_IP: "198.51.100.23" }, args);
      assert.equal(result.status, 1, args.join(" "));
      assert.deepEqual(result.calls, [], args.join(" "));
      assert.match(result.stderr, new RegExp(`pulumi up argument '${flag}': deploy.sh does not skip the preview`));
    }
    // A value is not a flag: -m takes the next argument, -s the rest of its group.
    for (const args of [["-y"], ["-yr"], ["-m", "-f"], ["--message", "-f"], ["-ym", "-f"], ["-p", "-f"], ["-ysf"]]) {
      const result = run("deploy.sh", { TITAN_OPERATOR_IP: "198.51.100.23" }, args);
      assert.equal(result.status, 0, `${args.join(" ")}: ${result.stderr}`);
    }
  });
});

describe("verify.sh (npm run verify)", () => {
  beforeEach(() => {
    // tools/verifyStack.ts runs the program's own checks (infra/verify) through ts-node.
    for (const entry of ["infra", "templates"]) {
      fs.cpSync(path.join(ROOT, entry), path.join(project, entry), { recursive: true });
    }
  });

  it("needs a deployed stack, and never creates one, nor a state directory or passphrase", () => {
    const result = run("verify.sh");
    assert.equal(result.status, 1);
    assert.match(result.stderr, /no local stack state in .*: deploy first \(npm run deploy\)/);
    assert.ok(!result.calls.some((c) => c.includes("--create")), result.calls.join("\n"));
    assert.ok(!fs.existsSync(path.join(project, ".pulumi-state")), "verify made a state directory");
    // Deployed elsewhere, state here but no stack on it: the stack is named.
    fs.mkdirSync(path.join(project, ".pulumi-state"));
    fs.writeFileSync(path.join(project, ".pulumi-state", "passphrase"), "p\n");
    const none = run("verify.sh");
    assert.equal(none.status, 1);
    assert.match(none.stderr, /no stack dev on this backend: deploy it first \(npm run deploy\)/);
  });

  it("reads the stack's outputs with their secrets on deploy.sh's backend, and hands them to the checks", () => {
    run("deploy.sh", { TITAN_OPERATOR_IP: "198.51.100.23" });
    fs.writeFileSync(path.join(work, "outputs.json"), JSON.stringify({ grafanaAdminPassword: "pw" }));
    const tmp = path.join(work, "tmp");
    fs.mkdirSync(tmp);
    const result = run("verify.sh", { TMPDIR: tmp });
    const state = path.join(project, ".pulumi-state");
    const suffix = ` | backend=file://${state} passfile=${state}/passphrase`;
    assert.deepEqual(result.calls, [
      `pulumi stack select dev${suffix}`,
      `pulumi stack output --stack dev --json --show-secrets${suffix}`,
    ]);
    // A stack deployed before the output existed: the tool says what is missing and what to do.
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /verify: stack output verificationSpec is missing: .*run npm run deploy first/);
    // (ts-node leaves its compile cache there.)
    assert.deepEqual(
      fs.readdirSync(tmp).filter((f) => !f.startsWith("v8-compile-cache")),
      [],
      "the outputs (secrets) are not left behind",
    );
  });
});

describe("ci-preview.sh (the pull-request preview with the policy pack)", () => {
  // The shape of pulumi's summary: a "Policies:" headline, the pack, its violations indented,
  // then the next headline (pulumi/pulumi pkg/backend/display/progress.go, printPolicies).
  const VIOLATION = [
    "Previewing update (dev):",
    "    + aws:vpc:SecurityGroupIngressRule web-ssh create",
    "",
    "Policies:",
    "    ❌ titan-guardrails@v0.1.0 (local: policy)",
    "        - [mandatory]  no-world-ingress  (aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule: web-ssh)",
    "          ingress from 0.0.0.0/0: list the operator's addresses in allowedCidrs",
    "",
    "Resources:",
    "    + 1 to create",
  ].join("\n");

  function preview(output: string, status: number) {
    fs.appendFileSync(path.join(project, "Pulumi.dev.yaml"), `secretsprovider: ${KMS}\nencryptedkey: ZmFrZS1rZXk=\n`);
    fs.writeFileSync(path.join(work, "preview-output"), `${output}\n`);
    const comment = path.join(work, "preview.md");
    const result = run("ci-preview.sh", { ...SHARED, PREVIEW_STATUS: String(status) }, [comment]);
    return { ...result, comment: fs.existsSync(comment) ? fs.readFileSync(comment, "utf8") : "" };
  }

  it("previews the shared stack with the pack and fails with pulumi's status, the violation in the comment", () => {
    const result = preview(VIOLATION, 255);
    assert.equal(result.status, 255, "a mandatory violation fails the step");
    assert.deepEqual(result.calls, [
      `pulumi preview --stack dev --non-interactive --color never --policy-pack ${pack()} | backend=${S3} passfile=`,
    ]);
    assert.match(result.stdout, /no-world-ingress/, "the log shows the output too");
    assert.match(result.comment, /^#### `pulumi preview` of dev with the policy pack: \*\*failed\*\* \(exit 255\)/);
    const summary = result.comment.slice(0, result.comment.indexOf("<details>"));
    assert.match(summary, /~~~~text\nPolicies:\n {4}❌ titan-guardrails@v0\.1\.0 \(local: policy\)\n/);
    assert.match(summary, /\[mandatory\] {2}no-world-ingress .*web-ssh\)\n {10}ingress from 0\.0\.0\.0\/0: list/);
    assert.doesNotMatch(summary, /Resources:/, "only the Policies block above the details");
    assert.ok(result.comment.includes(VIOLATION), "the whole output inside the details");
  });

  it("passes with pulumi's zero status and says so", () => {
    const result = preview(VIOLATION.replace("❌", "✅").replace(/ {8}- \[mandatory\].*\n.*\n/, ""), 0);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.comment, /^#### `pulumi preview` of dev with the policy pack: passed\n/);
    assert.match(result.comment, /Policies:\n {4}✅ titan-guardrails/);
  });

  it("keeps the end of an output too long for a comment, where the policies and the summary are", () => {
    const long = `${"    ~ aws:ec2:Instance web-1 update\n".repeat(4000)}${VIOLATION}`;
    const result = preview(long, 255);
    assert.ok(result.comment.length < 65536, `comment of ${result.comment.length} characters`);
    assert.match(result.comment, /its start is cut/);
    assert.ok(result.comment.includes(VIOLATION));
  });

  it("stops before pulumi outside shared mode, without a comment file or without the pack", () => {
    const local = run("ci-preview.sh", {}, [path.join(work, "preview.md")]);
    assert.equal(local.status, 1);
    assert.match(local.stderr, /the preview needs the shared backend/);
    const usage = run("ci-preview.sh", SHARED);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /usage: ci-preview\.sh <comment-file>/);
    fs.rmSync(path.join(pack(), "PulumiPolicy.yaml"));
    const missing = preview("", 0);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /the policy pack is missing/);
    for (const result of [local, usage, missing]) assert.deepEqual(result.calls, []);
  });
});

describe("ci-pr-comment.sh (the preview's pull-request comment)", () => {
  const REPO = { GITHUB_REPOSITORY: "team/titan", GH_TOKEN: "ghs_fake" };
  const comments = () => {
    const dir = path.join(work, "comments");
    return fs.existsSync(dir)
      ? Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f), "utf8")]))
      : {};
  };

  it("posts the comment once, then edits it on the next run", () => {
    const file = path.join(work, "preview.md");
    fs.mkdirSync(path.join(work, "comments"));
    fs.writeFileSync(path.join(work, "comments/100"), "LGTM\n");
    fs.writeFileSync(file, "#### first\n");
    const first = run("ci-pr-comment.sh", REPO, ["7", file]);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.calls.length, 2);
    assert.match(
      first.calls[0],
      /^gh api --paginate repos\/team\/titan\/issues\/7\/comments --jq .* \| token=ghs_fake$/,
    );
    assert.match(first.calls[1], /^gh api --method POST repos\/team\/titan\/issues\/7\/comments -F body=@/);
    assert.deepEqual(comments(), { "100": "LGTM\n", "102": "<!-- titan-preview -->\n#### first\n" });
    fs.writeFileSync(file, "#### second\n");
    const second = run("ci-pr-comment.sh", REPO, ["7", file]);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.calls[1], /^gh api --method PATCH repos\/team\/titan\/issues\/comments\/102 -F body=@/);
    assert.deepEqual(comments(), { "100": "LGTM\n", "102": "<!-- titan-preview -->\n#### second\n" });
  });

  it("refuses a bad pull-request number, a missing comment file or repository", () => {
    const file = path.join(work, "preview.md");
    fs.writeFileSync(file, "#### x\n");
    let result = run("ci-pr-comment.sh", REPO, ["", file]);
    assert.match(result.stderr, /pull request number '': expected a positive integer/);
    result = run("ci-pr-comment.sh", REPO, ["7", path.join(work, "none.md")]);
    assert.match(result.stderr, /comment file '.*none\.md': expected the non-empty file ci-preview\.sh writes/);
    result = run("ci-pr-comment.sh", { GH_TOKEN: "x" }, ["7", file]);
    assert.match(result.stderr, /GITHUB_REPOSITORY='': expected owner\/name/);
    assert.equal(result.status, 1);
    assert.ok(!result.calls.some((c) => c.startsWith("gh")));
  });
});
