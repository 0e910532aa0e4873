import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";
import { PULUMI_CLI } from "../facts/versions";
import { ROOT, walk } from "./support/files";

const dir = path.join(ROOT, ".github/workflows");
const validator = path.join(ROOT, "node_modules/.bin/action-validator");

interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
  "continue-on-error"?: boolean;
}
interface Workflow {
  on: Record<string, unknown>;
  jobs: Record<
    string,
    { permissions?: Record<string, string>; steps: Step[]; needs?: string; if?: string; env?: Record<string, string> }
  >;
}

/*
 * A stand-in for the runner's step loop, enough for the preview job's control flow (it cannot
 * prove what GitHub's servers do with the job, only what its steps' conditions say):
 * - a step runs when its `if` holds; without a status function (success(), failure(), always(),
 *   cancelled()) the condition is `success() && (<if>)`, and no `if` means `success()`
 *   (actions/runner src/Sdk/DTPipelines/Pipelines/ObjectTemplating/PipelineTemplateConverter.cs,
 *   ConvertToIfResult); success() holds while no step's result is a failure;
 * - a failing step with continue-on-error keeps `outcome: failure` but its result (conclusion)
 *   is success, and only a failed result fails the job (src/Runner.Worker/StepsRunner.cs,
 *   RunStepAsync and RunAsync).
 * The expression grammar covers what the workflow uses (||, &&, !, ==, !=, parentheses, strings,
 * context paths, the status functions) and refuses anything else.
 */
type Value = string | boolean;
function evaluate(expression: string, lookup: (path: string) => Value, jobFailed: boolean): Value {
  const tokens = expression.match(/'[^']*'|&&|\|\||==|!=|!|\(|\)|[A-Za-z_][\w.-]*|\S/g) ?? [];
  let at = 0;
  const next = () => tokens[at++];
  const peek = () => tokens[at];
  const primary = (): Value => {
    const token = next();
    if (token === "(") {
      const value = or();
      assert.equal(next(), ")", `unbalanced parentheses in ${expression}`);
      return value;
    }
    if (token?.startsWith("'")) return token.slice(1, -1);
    if (token && /^[A-Za-z_]/.test(token)) {
      if (peek() === "(") {
        next();
        assert.equal(next(), ")", `${token}() takes no argument here`);
        const status: Record<string, boolean> = {
          success: !jobFailed,
          failure: jobFailed,
          always: true,
          cancelled: false,
        };
        assert.ok(token in status, `function ${token} is not modelled`);
        return status[token];
      }
      return lookup(token);
    }
    throw new Error(`unexpected ${String(token)} in ${expression}`);
  };
  const comparison = (): Value => {
    const left = primary();
    const op = peek();
    if (op !== "==" && op !== "!=") return left;
    next();
    const same = String(left).toLowerCase() === String(primary()).toLowerCase();
    return op === "==" ? same : !same;
  };
  const unary = (): Value => (peek() === "!" ? (next(), !truthy(unary())) : comparison());
  const and = (): Value => {
    let value = unary();
    while (peek() === "&&") {
      next();
      const right = unary();
      value = truthy(value) ? right : value;
    }
    return value;
  };
  const or = (): Value => {
    let value = and();
    while (peek() === "||") {
      next();
      const right = and();
      value = truthy(value) ? value : right;
    }
    return value;
  };
  const value = or();
  assert.equal(at, tokens.length, `could not read ${expression}`);
  return value;
}
const truthy = (v: Value) => v !== false && v !== "";

type Outcome = "success" | "failure" | "skipped";
/** Runs the job's steps in order: the preview's outcome is given, the steps after it that only
 *  run a shell snippet are run for real with bash, every other step succeeds. */
function simulate(steps: Step[], event: string, previewOutcome: Outcome) {
  const results: Record<string, { outcome: Outcome; conclusion: Outcome }> = {};
  const ran: string[] = [];
  let jobFailed = false;
  const lookup = (p: string): Value => {
    if (p === "github.event_name") return event;
    const m = /^steps\.([\w-]+)\.(outcome|conclusion)$/.exec(p);
    assert.ok(m, `context ${p} is not modelled`);
    return results[m[1]]?.[m[2] as "outcome" | "conclusion"] ?? "";
  };
  const previewIndex = steps.findIndex((s) => s.run?.startsWith("scripts/ci-preview.sh"));
  steps.forEach((step, index) => {
    let condition = step.if?.replace(/^\$\{\{(.*)\}\}$/s, "$1").trim() ?? "success()";
    if (!/\b(success|failure|always|cancelled)\(\)/.test(condition)) condition = `success() && (${condition})`;
    let outcome: Outcome = "skipped";
    if (truthy(evaluate(condition, lookup, jobFailed))) {
      ran.push(step.name ?? step.run ?? step.uses ?? "");
      outcome = "success";
      if (index === previewIndex) outcome = previewOutcome;
      else if (index > previewIndex && step.run && !/scripts\//.test(step.run)) {
        const env = Object.fromEntries(
          Object.entries(step.env ?? {}).map(([k, v]) => [
            k,
            v.replace(/\$\{\{(.*?)\}\}/g, (_, e: string) => String(evaluate(e, lookup, jobFailed))),
          ]),
        );
        const shell = spawnSync("bash", ["-e", "-c", step.run], { encoding: "utf8", env: { ...process.env, ...env } });
        outcome = shell.status === 0 ? "success" : "failure";
      }
    }
    const conclusion = outcome === "failure" && step["continue-on-error"] === true ? "success" : outcome;
    if (step.id) results[step.id] = { outcome, conclusion };
    if (conclusion === "failure") jobFailed = true;
  });
  return { ran, jobFailed };
}

describe("GitHub workflows", () => {
  const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));

  it("pass action-validator", () => {
    assert.ok(files.length > 0);
    for (const file of files) {
      const result = spawnSync(validator, [path.join(dir, file)], { encoding: "utf8" });
      assert.equal(result.status, 0, `${file}: ${result.stdout}${result.stderr}`);
    }
  });

  it("test every pull request with the documented test command and comment a pulumi preview", () => {
    const wf = YAML.parse(fs.readFileSync(path.join(dir, "pull-request.yml"), "utf8")) as Workflow;
    assert.ok("pull_request" in wf.on);
    assert.ok(wf.jobs.test.steps.some((s) => s.run === "npm test"));
    const preview = wf.jobs.preview;
    assert.equal(preview.needs, "test");
    assert.equal(preview.permissions?.["id-token"], "write", "AWS credentials come from OIDC");
    assert.equal(preview.permissions?.["pull-requests"], "write");
    const aws = preview.steps.find((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@"));
    assert.match(String(aws?.with?.["role-to-assume"]), /secrets\./);
    assert.equal(aws?.with?.["aws-access-key-id"], undefined, "no long-lived keys");
    const steps = preview.steps.map((s) => s.run ?? "");
    assert.ok(
      steps.some((r) => r.startsWith("scripts/ci-preview.sh ")),
      "the preview runs through ci-preview.sh",
    );
    assert.ok(
      steps.some((r) => r.startsWith("scripts/ci-pr-comment.sh ")),
      "and its comment through ci-pr-comment.sh",
    );
  });

  it("tests what can pass on GitHub's runners: all but the fleet, privileged, and says what it leaves out", () => {
    const wf = YAML.parse(fs.readFileSync(path.join(dir, "pull-request.yml"), "utf8")) as Workflow;
    const test = wf.jobs.test as Workflow["jobs"][string] & {
      container?: string | { image: string; options?: string };
      "runs-on": string;
    };
    assert.equal(test["runs-on"], "ubuntu-latest");
    // The hosts' OS, as the tests' Debian packages assume.
    const container = typeof test.container === "string" ? { image: test.container } : test.container;
    assert.equal(container?.image, "debian:12");
    // scripts/test.sh leaves out exactly its FLEET_BOOT_TESTS and the fleet under TITAN_SKIP_FLEET=1.
    assert.equal(test.env?.TITAN_SKIP_FLEET, "1", "the fleet cannot boot in a GitHub container: skip it, loudly");
    assert.ok(test.steps.some((s) => s.run === "npm test"));
    const script = fs.readFileSync(path.join(ROOT, "scripts/test.sh"), "utf8");
    assert.match(script, /TITAN_SKIP_FLEET:-\}" == 1/);
    const boot = /FLEET_BOOT_TESTS=\(([^)]*)\)/.exec(script)?.[1].trim().split(/\s+/) ?? [];
    assert.ok(boot.length > 0);
    for (const file of boot) {
      const source = file.replace(/^build\//, "").replace(/\.js$/, ".ts");
      assert.ok(fs.existsSync(path.join(ROOT, source)), `FLEET_BOOT_TESTS names ${file}, which has no source`);
    }
    assert.ok(
      test.steps.some((s) => /^echo "::warning .*\.ci\/run/.test(s.run ?? "")),
      "a warning on the run's page says the fleet was left out and where it runs",
    );
    // Every other test file runs. Those that create namespaces or mount (ip netns, losetup,
    // mount, unshare) need CAP_SYS_ADMIN, which Docker's default seccomp profile requires for
    // mount/unshare/setns (moby profiles/seccomp/default.json): the container must be privileged.
    const privileged = walk(path.join(ROOT, "tests"))
      .filter((f) => /\.ts$/.test(f) && !f.endsWith("workflow.test.ts"))
      // The fleet's own modules serve FLEET_BOOT_TESTS and the fleet run alone.
      .filter((f) => !f.includes(`${path.sep}fleet${path.sep}`) || f.endsWith(".test.ts"))
      .filter((f) => !boot.some((b) => f.endsWith(b.replace(/^build\//, "").replace(/\.js$/, ".ts"))))
      .filter((f) => /"netns"|\blosetup\b|"mount"|"unshare"/.test(fs.readFileSync(f, "utf8")))
      .map((f) => path.relative(ROOT, f));
    assert.ok(
      privileged.includes("tests/e2e/netns.ts"),
      `the scan finds the end-to-end run's namespace: ${privileged.join(", ")}`,
    );
    assert.match(String(container?.options), /(^|\s)--privileged(\s|$)/, `needed by ${privileged.join(", ")}`);
    // The fleet is not dropped: .ci/run is the full test command, fleet included.
    const ci = fs.readFileSync(path.join(ROOT, ".ci/run"), "utf8");
    assert.match(ci, /^npm test$/m);
    assert.doesNotMatch(ci, /TITAN_SKIP_FLEET/);
  });

  it("installs the pinned Pulumi CLI for the preview: the SDK's version, new enough for the push archive", () => {
    const preview = (YAML.parse(fs.readFileSync(path.join(dir, "pull-request.yml"), "utf8")) as Workflow).jobs.preview;
    const install = preview.steps.filter((s) => s.uses?.startsWith("pulumi/actions@"));
    assert.equal(install.length, 1);
    // pulumi/actions action.yml: `pulumi-version`; without it the action installs the latest CLI.
    assert.equal(install[0].with?.["pulumi-version"], PULUMI_CLI.version);
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as {
      packages: Record<string, { version: string }>;
    };
    assert.equal(
      lock.packages["node_modules/@pulumi/pulumi"].version,
      PULUMI_CLI.version,
      "CLI and SDK share a release",
    );
    const numbers = (v: string) => v.split(".").map(Number);
    const [pin, min] = [numbers(PULUMI_CLI.version), numbers(PULUMI_CLI.minimum)];
    const cmp = pin.map((n, i) => n - min[i]).find((d) => d !== 0) ?? 0;
    assert.ok(cmp >= 0, `${PULUMI_CLI.version} is older than ${PULUMI_CLI.minimum}`);
  });

  it("previews with the policy pack: a failed preview still reaches the comment, then fails the job", () => {
    const preview = (YAML.parse(fs.readFileSync(path.join(dir, "pull-request.yml"), "utf8")) as Workflow).jobs.preview;
    // pulumi/actions@v7 comments only after a successful command (src/main.ts), so its preview
    // cannot show a violation in the comment; the workflow must not go back to it.
    assert.ok(!preview.steps.some((s) => s.with?.command === "preview"), "no pulumi/actions preview step");
    const run = preview.steps.find((s) => s.run?.startsWith("scripts/ci-preview.sh"));
    const comment = preview.steps.find((s) => s.run?.startsWith("scripts/ci-pr-comment.sh"));
    assert.ok(run?.id && comment, "an identified preview step and a comment step");
    // The comment posts the file the preview wrote.
    const written = /^scripts\/ci-preview\.sh (\S+)$/.exec(String(run.run))?.[1];
    assert.ok(written, `ci-preview.sh takes the comment file: ${run.run}`);
    assert.match(
      String(comment.run),
      new RegExp(`^scripts/ci-pr-comment\\.sh \\S+ ${written.replace(/[$"]/g, "\\$&")}$`),
    );
    assert.equal(comment.env?.GH_TOKEN, "${{ secrets.GITHUB_TOKEN }}");
    assert.equal(comment.env?.PR_NUMBER, "${{ github.event.pull_request.number }}");
    // ci-preview.sh's own preview passes the pack (tests/deploy.test.ts runs it).
    const script = fs.readFileSync(path.join(ROOT, "scripts/ci-preview.sh"), "utf8");
    assert.match(script, /^pulumi preview .*--policy-pack "\$policy_pack"/m);
    assert.ok(fs.existsSync(path.join(ROOT, "policy/PulumiPolicy.yaml")), "the pack the preview runs exists");

    const failed = simulate(preview.steps, "pull_request", "failure");
    assert.ok(failed.ran.includes(String(comment.name)), `a failed preview is commented: ran ${failed.ran.join(", ")}`);
    assert.equal(failed.jobFailed, true, "a failed preview (a mandatory violation) fails the check");
    const passed = simulate(preview.steps, "pull_request", "success");
    assert.ok(passed.ran.includes(String(comment.name)));
    assert.equal(passed.jobFailed, false, "a passing preview passes the check");
    const dispatched = simulate(preview.steps, "workflow_dispatch", "failure");
    assert.equal(dispatched.jobFailed, true, "a manual run fails too");
    assert.ok(!dispatched.ran.includes(String(comment.name)), "no pull request, no comment");
  });

  it("previews against the shared backend and KMS key that deploy.sh uses, with the committed stack file", () => {
    const text = fs.readFileSync(path.join(dir, "pull-request.yml"), "utf8");
    const preview = (YAML.parse(text) as Workflow).jobs.preview;
    // The same variable names deploy.sh reads (scripts/pulumi-env.sh), from repository variables.
    assert.equal(preview.env?.TITAN_BACKEND_URL, "${{ vars.TITAN_BACKEND_URL }}");
    assert.equal(preview.env?.TITAN_SECRETS_PROVIDER, "${{ vars.TITAN_SECRETS_PROVIDER }}");
    assert.match(String(preview.if), /vars\.TITAN_BACKEND_URL != ''/, "skipped where no shared backend exists");
    const env = fs.readFileSync(path.join(ROOT, "scripts/pulumi-env.sh"), "utf8");
    for (const name of ["TITAN_BACKEND_URL", "TITAN_SECRETS_PROVIDER"]) assert.match(env, new RegExp(`\\$\\{${name}`));
    // deploy.sh's own checks select the stack, which must already exist.
    const steps = preview.steps.map((s) => s.run ?? s.uses ?? "");
    const select = steps.indexOf("scripts/ci-select-stack.sh");
    const run = steps.findIndex((s) => s.startsWith("scripts/ci-preview.sh"));
    assert.ok(select >= 0 && select < run, "ci-select-stack.sh runs before the preview");
    // ci-preview.sh reads the same variables through pulumi-env.sh, in shared mode only, and
    // previews the selected stack without creating one (tests/deploy.test.ts).
    const script = fs.readFileSync(path.join(ROOT, "scripts/ci-preview.sh"), "utf8");
    assert.match(script, /source .*pulumi-env\.sh/);
    assert.match(script, /\[\[ "\$TITAN_MODE" == shared \]\]/);
    // No passphrase, no second backend, no config written in CI: the stack file is the committed one.
    assert.doesNotMatch(text, /PULUMI_CONFIG_PASSPHRASE|PULUMI_BACKEND_URL|config set|config-map/);
  });
});
