/**
 * docs/team-setup.md against what it sets up: the shared backend's setup block runs in an order
 * that works (the backend variables before any npm run, the stack created before its
 * configuration is set), its bucket is versioned and is the one the backend URL names, and the
 * pull-request preview's section names every setting .github/workflows/pull-request.yml reads,
 * the stack it previews and a role trust that admits the workflow's own events.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { ROOT } from "./support/files";

const doc = fs.readFileSync(path.join(ROOT, "docs/team-setup.md"), "utf8");
const workflow = parse(fs.readFileSync(path.join(ROOT, ".github/workflows/pull-request.yml"), "utf8")) as {
  on: Record<string, unknown>;
  jobs: Record<string, { env?: Record<string, string>; steps: { uses?: string; with?: Record<string, string> }[] }>;
};

/** The fenced blocks of a language, each as its text. */
const blocks = (lang: string) =>
  [...doc.matchAll(new RegExp("^```" + lang + "\\n([\\s\\S]*?)^```$", "gm"))].map((m) => m[1]);

/** The setup block's commands, continuation lines joined. */
function setupCommands(): string[] {
  const block = blocks("sh").find((b) => b.includes("aws s3 mb"));
  assert.ok(block, "no sh block creating the state bucket (aws s3 mb)");
  return block
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l !== "");
}

describe("docs/team-setup.md, the shared backend's setup", () => {
  const commands = setupCommands();
  const index = (re: RegExp) => commands.findIndex((c) => re.test(c));
  const exported = (name: string) => /'([^']+)'/.exec(commands.find((c) => c.startsWith(`export ${name}=`)) ?? "")?.[1];

  it("creates a versioned bucket, the one TITAN_BACKEND_URL names, in its region", () => {
    const backend = new URL(exported("TITAN_BACKEND_URL") ?? "");
    const mb = /^aws s3 mb s3:\/\/(\S+) --region (\S+)$/.exec(commands[index(/^aws s3 mb /)]);
    assert.ok(mb, commands.join("\n"));
    assert.equal(mb[1], backend.host, "the bucket the backend URL names");
    assert.equal(mb[2], backend.searchParams.get("region"), "the region the backend URL names");
    const versioning = index(new RegExp(`^aws s3api put-bucket-versioning --bucket ${mb[1]} .*Status=Enabled`));
    assert.ok(versioning > index(/^aws s3 mb /), "versioning is switched on, after the bucket exists");
    assert.ok(index(new RegExp(`^aws s3api put-public-access-block --bucket ${mb[1]} `)) > 0);
  });

  it("creates the KMS alias TITAN_SECRETS_PROVIDER names, in its region", () => {
    const provider = /^awskms:\/\/(alias\/[^?]+)\?region=(\S+)$/.exec(exported("TITAN_SECRETS_PROVIDER") ?? "");
    assert.ok(provider);
    const alias = commands.find((c) => c.startsWith("aws kms create-alias"));
    assert.ok(alias?.includes(`--alias-name ${provider[1]}`), alias);
    assert.ok(alias?.includes(`--region ${provider[2]}`), alias);
    assert.ok(alias?.includes(`create-key --region ${provider[2]}`), alias);
  });

  it("sets the backend variables before any npm run, and creates the stack before setting its configuration", () => {
    const firstNpm = index(/^npm run /);
    assert.ok(index(/^export TITAN_BACKEND_URL=/) < firstNpm && index(/^export TITAN_BACKEND_URL=/) >= 0);
    assert.ok(index(/^export TITAN_SECRETS_PROVIDER=/) < firstNpm && index(/^export TITAN_SECRETS_PROVIDER=/) >= 0);
    const configSet = index(/^npm run pulumi -- config set /);
    assert.ok(configSet > index(/^npm run deploy\b/) && index(/^npm run deploy\b/) >= 0, commands.join("\n"));
    assert.ok(!commands.some((c) => /^pulumi /.test(c)), "no bare pulumi: it would miss the shared backend");
  });
});

describe("docs/team-setup.md, the pull-request preview", () => {
  const preview = workflow.jobs.preview;
  const text = JSON.stringify(preview);

  it("names the stack the preview always uses", () => {
    const stack = preview.env?.STACK;
    assert.ok(stack, "the workflow's preview job sets STACK");
    assert.ok(doc.includes(`\`STACK: ${stack}\``), `the doc names STACK: ${stack}`);
    assert.ok(doc.includes(`\`Pulumi.${stack}.yaml\``));
  });

  it("lists every variable and secret the preview job reads, and AWS_REGION's default", () => {
    const names = [...text.matchAll(/\b(vars|secrets)\.([A-Z_]+)/g)]
      .map((m) => m[2])
      .filter((n) => n !== "GITHUB_TOKEN");
    assert.ok(names.length >= 4, names.join(", "));
    for (const name of new Set(names)) assert.match(doc, new RegExp(`\\| \`${name}\` +\\| (variable|secret) `), name);
    const fallback = /vars\.AWS_REGION \|\| '([^']+)'/.exec(text)?.[1];
    assert.ok(fallback && doc.includes(`default \`${fallback}\``), `AWS_REGION defaults to ${fallback}`);
  });

  it("gives a role trust that admits the token the workflow's events get, for the action's audience", () => {
    const step = preview.steps.find((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials"));
    assert.ok(step?.with?.["role-to-assume"], "the preview assumes a role");
    // aws-actions/configure-aws-credentials action.yml: audience defaults to sts.amazonaws.com.
    const audience = step.with.audience ?? "sts.amazonaws.com";
    assert.ok(doc.includes("--url https://token.actions.githubusercontent.com"), "how to register the OIDC provider");
    const trust = blocks("json")
      .map(
        (b) => JSON.parse(b) as { Statement: { Action: string; Condition: Record<string, Record<string, unknown>> }[] },
      )
      .find((p) => p.Statement.some((s) => s.Action === "sts:AssumeRoleWithWebIdentity"));
    assert.ok(trust, "a trust policy for sts:AssumeRoleWithWebIdentity");
    const condition = trust.Statement[0].Condition;
    assert.equal(condition.StringEquals["token.actions.githubusercontent.com:aud"], audience);
    const subjects = [condition.StringLike["token.actions.githubusercontent.com:sub"]].flat() as string[];
    // GitHub's subject: repo:<owner>/<repo>:pull_request for a pull request, :ref:refs/heads/<branch> for a manual run.
    if ("pull_request" in workflow.on)
      assert.ok(
        subjects.some((s) => s.endsWith(":pull_request")),
        subjects.join(),
      );
    if ("workflow_dispatch" in workflow.on)
      assert.ok(
        subjects.some((s) => s.includes(":ref:refs/heads/")),
        subjects.join(),
      );
    assert.ok(doc.includes("kms:Decrypt"), "the role decrypts the stack's secrets");
  });
});
