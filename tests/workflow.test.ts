import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";
import { ROOT } from "./support/files";

const dir = path.join(ROOT, ".github/workflows");
const validator = path.join(ROOT, "node_modules/.bin/action-validator");

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Workflow {
  on: Record<string, unknown>;
  jobs: Record<
    string,
    { permissions?: Record<string, string>; steps: Step[]; needs?: string; if?: string; env?: Record<string, string> }
  >;
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

  it("test every pull request with the README's test command and comment a pulumi preview", () => {
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
    const run = preview.steps.find((s) => s.with?.command === "preview");
    assert.match(String(run?.uses), /^pulumi\/actions@v7$/);
    assert.equal(run?.with?.["comment-on-pr"], true);
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
    const run = preview.steps.findIndex((s) => s.with?.command === "preview");
    assert.ok(select >= 0 && select < run, "ci-select-stack.sh runs before the preview");
    assert.equal(preview.steps[run].with?.["cloud-url"], "${{ env.TITAN_BACKEND_URL }}");
    assert.equal(preview.steps[run].with?.["secrets-provider"], "${{ env.TITAN_SECRETS_PROVIDER }}");
    assert.notEqual(preview.steps[run].with?.upsert, true, "a preview never creates the stack");
    // No passphrase, no second backend, no config written in CI: the stack file is the committed one.
    assert.doesNotMatch(text, /PULUMI_CONFIG_PASSPHRASE|PULUMI_BACKEND_URL|config set|config-map/);
  });
});
