/**
 * The commands the documentation gives (README.md and docs/*.md, their sh code blocks) work as
 * written from a fresh shell: every Pulumi command goes through `npm run pulumi -- …`
 * (scripts/pulumi.sh), which talks to the backend, secrets and stack deploy.sh made. Each
 * documented block with such a command runs, after a fake `npm run deploy` in the block's mode,
 * in a fresh environment (its own HOME, no PULUMI_* or TITAN_* variables) against the fake
 * `pulumi` (tests/support/fakeCli.ts), which records what each call would have acted on.
 * A bare `pulumi …` is refused outside a block marked "with your own Pulumi setup": it would
 * talk to the reader's default backend, not the stack they deployed.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { alertDefinitions } from "../templates/alerts";
import { operatorAccess } from "../tools/operatorAccess";
import { FAKE_CURL, FAKE_PULUMI, readSeen, scratchProject, type SeenCall } from "./support/fakeCli";
import { ROOT } from "./support/files";
import { testConfig } from "./support/render";

/** The paragraph right before a block that may use a bare `pulumi` says this. */
const OWN_SETUP = /with your own Pulumi setup/i;
const WRAPPER = /\bnpm run (?:(?:-s|--silent) )?pulumi\b/g;
const OPERATOR_IP = "198.51.100.23";
const KEY_FILE = "~/.ssh/titan-observability-dev";

interface Command {
  readonly file: string;
  readonly line: number;
  /** The logical line: continuations joined, a here-document's body kept, comments cut. */
  readonly text: string;
}

interface Block {
  readonly file: string;
  readonly line: number;
  readonly ownSetup: boolean;
  readonly commands: Command[];
}

function docFiles(root: string = ROOT): string[] {
  const docs = path.join(root, "docs");
  const pages = fs.existsSync(docs)
    ? fs
        .readdirSync(docs, { recursive: true, encoding: "utf8" })
        .filter((f) => f.endsWith(".md"))
        .map((f) => path.join("docs", f))
    : [];
  return ["README.md", ...pages.sort()];
}

/** Cuts an unquoted `#` comment (one preceded by a blank or starting the line). */
function stripComment(line: string): string {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = "";
      else if (c === "\\" && quote === '"') i++;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "\\") i++;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

export function shellBlocks(file: string, text: string): Block[] {
  const lines = text.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(\s*)(```+|~~~+)\s*([\w-]*)/.exec(lines[i]);
    if (!fence) continue;
    const close = lines.findIndex((l, j) => j > i && l.trim().startsWith(fence[2]));
    const end = close < 0 ? lines.length : close;
    if (["sh", "bash", "shell", "console"].includes(fence[3])) {
      // The paragraph before the fence (up to the previous blank line) marks a block as meant
      // for a reader's own Pulumi setup.
      let p = i - 1;
      while (p >= 0 && lines[p].trim() === "") p--;
      const before: string[] = [];
      while (p >= 0 && lines[p].trim() !== "" && !lines[p].startsWith("```")) before.unshift(lines[p--]);
      const commands: Command[] = [];
      for (let j = i + 1; j < end; j++) {
        const start = j;
        let logical = stripComment(lines[j].replace(/^\$ /, ""));
        while (logical.endsWith("\\") && j + 1 < end) logical = `${logical.slice(0, -1)} ${stripComment(lines[++j])}`;
        const heredoc = /<<-?\s*'?"?(\w+)'?"?/.exec(logical);
        if (heredoc) {
          const body: string[] = [];
          while (j + 1 < end && lines[j + 1].trim() !== heredoc[1]) body.push(lines[++j]);
          j++;
          logical = [logical, ...body, heredoc[1]].join("\n");
        }
        if (logical.trim() !== "") commands.push({ file, line: start + 1, text: logical.trim() });
      }
      blocks.push({ file, line: i + 1, ownSetup: OWN_SETUP.test(before.join(" ")), commands });
    }
    i = end;
  }
  return blocks;
}

/** The simple commands of a logical line: split at unquoted ; && || | ( $( and backquotes. */
function simpleCommands(text: string): string[] {
  const parts: string[] = [];
  let current = "";
  let quote = "";
  const firstLine = text.split("\n")[0];
  for (let i = 0; i < firstLine.length; i++) {
    const c = firstLine[i];
    if (quote) {
      current += c;
      if (c === quote) quote = "";
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      current += c;
    } else if (";|&()`".includes(c) || (c === "$" && firstLine[i + 1] === "(")) {
      parts.push(current);
      current = "";
      if (c === "$") i++;
    } else current += c;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

/** The command word of a simple command, past leading VAR=value assignments. */
const commandWord = (simple: string) =>
  simple.split(/\s+/).find((word) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(word) && word !== "export" && word !== "env") ??
  "";

/** A line of nothing but (exported) variable assignments, e.g. the shared backend's exports. */
const isAssignment = (text: string) =>
  simpleCommands(text).every((s) => /^(export\s+)?([A-Za-z_]\w*=("[^"]*"|'[^']*'|[^\s"']*)\s*)+$/.test(s));

const programOutputs = () =>
  [...fs.readFileSync(path.join(ROOT, "index.ts"), "utf8").matchAll(/^export const (\w+) =/gm)].map((m) => m[1]);

const packageScripts = () =>
  (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

const allBlocks = (root: string = ROOT) =>
  docFiles(root).flatMap((file) => shellBlocks(file, fs.readFileSync(path.join(root, file), "utf8")));

// ---- a project copy, fresh shells and the fake CLI ----

let work: string;
let project: string;
let home: string;

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "titan-documented-"));
  project = path.join(work, "project");
  home = path.join(work, "home");
  fs.mkdirSync(home);
  scratchProject(work, { pulumi: FAKE_PULUMI, curl: FAKE_CURL }, ["Pulumi.yaml", "package.json"]);
  fs.mkdirSync(path.join(work, "outputs"));
  for (const name of programOutputs()) {
    fs.writeFileSync(path.join(work, "outputs", name), name === "sshKeyFile" ? KEY_FILE : `fake ${name}\n`);
  }
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

/** A new login shell's environment: nothing of this process' PULUMI_*, TITAN_* or STACK. */
function freshEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOME: home,
    PATH: `${path.join(work, "bin")}:${path.dirname(process.execPath)}:/usr/bin:/bin`,
    LANG: "C.UTF-8",
    // The fakes' logs; npm itself offline and quiet about updates.
    WORK: work,
    CALLS: path.join(work, "calls"),
    SEEN: path.join(work, "seen"),
    CURL_ANSWER: OPERATOR_IP,
    npm_config_update_notifier: "false",
    npm_config_fund: "false",
    ...extra,
  };
}

function shell(script: string, env: Record<string, string> = {}) {
  fs.rmSync(path.join(work, "seen"), { force: true });
  const result = spawnSync("bash", ["-c", `set -euo pipefail\n${script}`], {
    cwd: project,
    encoding: "utf8",
    env: freshEnv(env),
  });
  return { ...result, seen: readSeen(path.join(work, "seen")) };
}

/** `npm run deploy` as the quick start runs it, with the block's exports (its mode) first. */
function fakeDeploy(setup: string[]) {
  fs.writeFileSync(path.join(work, "cidrs"), `["${OPERATOR_IP}/32"]\n`);
  const result = shell([...setup, "npm run deploy -- --yes"].join("\n"));
  assert.equal(result.status, 0, `the fake deploy failed:\n${result.stdout}\n${result.stderr}`);
  assert.ok(
    result.seen.some((c) => c.args[0] === "up"),
    "the fake deploy ran pulumi up",
  );
  return result.seen.find((c) => c.args[0] === "up") as SeenCall;
}

/** The arguments a simple `npm run pulumi -- …` line hands on, as bash splits them. */
function argvOf(text: string): string[] {
  const result = spawnSync(
    "bash",
    ["-c", `set -f; npm() { while (($#)) && [[ "$1" != -- ]]; do shift; done; shift; printf '%s\\0' "$@"; }\n${text}`],
    { encoding: "utf8", env: { HOME: home, PATH: "/usr/bin:/bin" } },
  );
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.split("\0").slice(0, -1);
}

const isSimple = (c: Command) => simpleCommands(c.text).length === 1 && !/[<>]/.test(c.text);
/** Placeholders such as <your-ip> would be read as redirections: a value stands in. */
const fillPlaceholders = (text: string) => text.replace(/<[a-z][a-z0-9-]*>/g, "placeholder");

describe("documented commands", () => {
  const blocks = allBlocks();

  it("finds the documentation's commands (README.md and docs/*.md)", () => {
    const wrapped = blocks.flatMap((b) => b.commands).filter((c) => c.text.match(WRAPPER));
    assert.ok(wrapped.length >= 3, `only ${wrapped.length} npm run pulumi commands found`);
    assert.ok(
      blocks.some((b) => b.commands.some((c) => /^npm run deploy\b/.test(c.text))),
      "npm run deploy is documented",
    );
    assert.ok(
      blocks.some((b) => b.commands.some((c) => /^npm run destroy\b/.test(c.text))),
      "npm run destroy is documented",
    );
  });

  it("give no bare `pulumi …` outside a block marked for one's own Pulumi setup", () => {
    const bare: string[] = [];
    for (const block of blocks.filter((b) => !b.ownSetup)) {
      for (const command of block.commands) {
        if (simpleCommands(command.text).some((s) => commandWord(s) === "pulumi")) {
          bare.push(`${command.file}:${command.line}: ${command.text}`);
        }
      }
    }
    // Prose counts too: a paragraph that tells the reader to run one, or names one of the
    // commands a reader runs on a deployed stack (not a description of what deploy.sh does).
    const instruction =
      /\b[Rr]un `(pulumi [^`]*)`|\bwith `(pulumi config set[^`]*)`|`(pulumi (?:refresh|cancel|state|config (?:set|get|refresh|rm)|stack (?:output|export|import|change-secrets-provider|rm))\b[^`]*)`/g;
    for (const file of docFiles()) {
      const lines = fs.readFileSync(path.join(ROOT, file), "utf8").split("\n");
      let start = 0;
      for (let i = 0; i <= lines.length; i++) {
        if (i < lines.length && lines[i].trim() !== "") continue;
        const paragraph = lines.slice(start, i).join("\n");
        if (!OWN_SETUP.test(paragraph) && !paragraph.trimStart().startsWith("```")) {
          for (const m of paragraph.matchAll(instruction)) {
            const line = start + paragraph.slice(0, m.index).split("\n").length;
            bare.push(`${file}:${line}: ${m[1] ?? m[2] ?? m[3]}`);
          }
        }
        start = i + 1;
      }
    }
    assert.deepEqual(
      bare,
      [],
      "these talk to the reader's default Pulumi backend, not the deployed stack: write `npm run pulumi -- …` " +
        "(or `npm run deploy` for `pulumi up`), or mark the block's paragraph 'with your own Pulumi setup'",
    );
  });

  it("name package.json scripts, with their arguments after --, and capture output only with --silent", () => {
    const scripts = packageScripts();
    const problems: string[] = [];
    for (const written of blocks.flatMap((b) => b.commands)) {
      const command = { ...written, text: fillPlaceholders(written.text) };
      for (const simple of simpleCommands(command.text)) {
        const m = /^(?:[A-Za-z_]\w*=\S*\s+)*npm run((?:\s+(?:-s|--silent))?)\s+([\w:-]+)(.*)$/.exec(simple);
        if (!m) continue;
        const where = `${command.file}:${command.line}: ${command.text}`;
        if (!(m[2] in scripts)) problems.push(`${where}: no script ${m[2]} in package.json`);
        const rest = m[3].replace(/\s*[<>].*$/, "").trim();
        if (rest !== "" && !rest.startsWith("--")) {
          problems.push(`${where}: arguments to npm run ${m[2]} go after --, or npm takes them as its own`);
        }
      }
      // npm prints its "> project script" banner on stdout, into whatever captures it.
      for (const m of command.text.matchAll(/(\$\(\s*)?npm run( (?:-s|--silent))? pulumi\b[^|>;)&]*(\||>)?/g)) {
        if ((m[1] || m[3]) && !m[2])
          problems.push(
            `${command.file}:${command.line}: ${command.text}: use npm run --silent pulumi -- … when the output is captured`,
          );
      }
    }
    assert.deepEqual(problems, []);
  });

  const runnable = blocks.filter((b) => !b.ownSetup && b.commands.some((c) => c.text.match(WRAPPER)));
  for (const block of runnable) {
    it(`${block.file}:${block.line}: each npm run pulumi command reaches the deployed stack's backend, secrets and stack`, () => {
      // npm run pulumi never creates a stack: in a block that names a backend and deploys to it
      // (the team's setup), a pulumi command before that first deploy fails on the new backend.
      const firstDeploy = block.commands.findIndex((c) => /^(?:[A-Za-z_]\w*=\S*\s+)*npm run deploy\b/.test(c.text));
      const namesBackend = block.commands.some((c) => /\b(TITAN|PULUMI)_BACKEND_URL=/.test(c.text));
      const early = namesBackend
        ? block.commands.slice(0, Math.max(firstDeploy, 0)).filter((c) => c.text.match(WRAPPER))
        : [];
      assert.deepEqual(
        early.map((c) => `${c.file}:${c.line}: ${c.text}`),
        [],
        "these run before the block's npm run deploy has created the stack: move them after it",
      );
      const setup = block.commands.filter((c) => isAssignment(c.text)).map((c) => fillPlaceholders(c.text));
      const up = fakeDeploy(setup);
      const outputs = new Set(programOutputs());
      // The block as written, minus what the fakes do not play (aws, ssh, git, the deploy
      // itself, done above): its npm run pulumi lines, with the assignments and file steps
      // between them.
      const kept = block.commands.filter(
        (c) =>
          c.text.match(WRAPPER) ||
          isAssignment(c.text) ||
          simpleCommands(c.text).every((s) => ["mkdir", "chmod", "cat", "umask"].includes(commandWord(s))),
      );
      const result = shell(kept.map((c) => fillPlaceholders(c.text)).join("\n"));
      assert.equal(result.status, 0, `${kept.map((c) => c.text).join("\n")}\n${result.stdout}\n${result.stderr}`);
      assert.doesNotMatch(result.stderr, /generated the stack's secrets passphrase/, "no new passphrase");

      const expectedCalls = kept.reduce((n, c) => n + (c.text.match(WRAPPER) ?? []).length, 0);
      const commands = result.seen.filter((_, i) => i % 2 === 1);
      assert.equal(result.seen.length, 2 * expectedCalls, result.seen.map((c) => c.args.join(" ")).join("\n"));
      result.seen.forEach((call, i) => {
        const what = `${block.file}:${block.line}: pulumi ${call.args.join(" ")}`;
        if (i % 2 === 0) assert.deepEqual(call.args, ["stack", "select", "dev"], `${what}: selects the stack first`);
        assert.equal(call.backend, up.backend, `${what}: the backend deploy used`);
        assert.equal(call.passphrase, up.passphrase, `${what}: the passphrase deploy used`);
        assert.equal(call.passfile, up.passfile, `${what}: the passphrase file deploy used`);
        if (up.passfile) assert.ok(fs.statSync(call.passfile).size > 0, `${what}: the passphrase file exists`);
        assert.equal(call.stack, "dev", `${what}: the deployed stack`);
        assert.equal(call.home, home, `${what}: a fresh shell`);
      });
      // A simple line's arguments arrive as the shell split them, and the outputs it names exist.
      const simple = kept.filter((c) => c.text.match(WRAPPER) && isSimple(c));
      const simpleArgs = simple.map((c) => argvOf(c.text));
      for (const args of simpleArgs) {
        assert.ok(
          commands.some((c) => JSON.stringify(c.args) === JSON.stringify(args)),
          `pulumi ${args.join(" ")} was not called as written`,
        );
      }
      for (const call of commands.filter((c) => c.args[0] === "stack" && c.args[1] === "output")) {
        const named = call.args.slice(2).filter((a) => !a.startsWith("-"));
        for (const name of named) assert.ok(outputs.has(name), `stack output ${name}: index.ts exports no such output`);
      }
    });
  }
});

describe("scripts/pulumi.sh (npm run pulumi)", () => {
  it("refuses before any deploy, naming npm run deploy, and creates no state or passphrase", () => {
    const result = shell("npm run pulumi -- stack output grafanaAdminPassword --show-secrets");
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /no local stack state in .*\.pulumi-state: deploy first \(npm run deploy\)/);
    assert.deepEqual(result.seen, []);
    assert.ok(!fs.existsSync(path.join(project, ".pulumi-state")));
  });

  it("refuses a state directory without its passphrase, and never makes one", () => {
    fs.mkdirSync(path.join(project, ".pulumi-state"));
    const result = shell("npm run pulumi -- stack output");
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /passphrase is missing or empty: .*npm run deploy/);
    assert.deepEqual(result.seen, []);
    assert.ok(!fs.existsSync(path.join(project, ".pulumi-state/passphrase")));
  });

  it("never creates a stack: STACK names one that was not deployed", () => {
    fakeDeploy([]);
    const result = shell("STACK=demo npm run pulumi -- stack output");
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /no stack demo on this backend .*: deploy it first \(npm run deploy\)/);
    assert.deepEqual(
      result.seen.map((c) => c.args),
      [["stack", "select", "demo"]],
    );
  });

  it("hands every argument to pulumi unchanged: quotes, blanks, $, --show-secrets, -s", () => {
    const up = fakeDeploy([]);
    const result = shell(
      `npm run pulumi -- config set --secret slackWebhookUrl 'https://hooks.slack.com/a b?c=$HOME&d' "it's" --show-secrets -s dev ''`,
    );
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(
      result.seen.map((c) => c.args),
      [
        ["stack", "select", "dev"],
        [
          "config",
          "set",
          "--secret",
          "slackWebhookUrl",
          "https://hooks.slack.com/a b?c=$HOME&d",
          "it's",
          "--show-secrets",
          "-s",
          "dev",
          "",
        ],
      ],
    );
    assert.equal(result.seen[1].backend, `file://${path.join(project, ".pulumi-state")}`);
    assert.equal(result.seen[1].passfile, up.passfile);
    assert.equal(up.passfile, path.join(project, ".pulumi-state/passphrase"));
  });

  it("sets the team's first allowedCidrs between the deploy that creates the shared stack and the one that deploys it", () => {
    const shared = [
      "export TITAN_BACKEND_URL='s3://team-state/titan?region=us-east-1'",
      "export TITAN_SECRETS_PROVIDER='awskms://alias/titan-pulumi?region=us-east-1'",
    ].join("\n");
    const before = shell(`${shared}\nnpm run pulumi -- config set --stack dev --path 'allowedCidrs[0]' 192.0.2.0/24`);
    assert.notEqual(before.status, 0, "no stack yet: the wrapper does not create it");
    assert.match(before.stderr, /no stack dev on this backend .*npm run deploy/);
    const first = shell(`${shared}\nnpm run deploy`);
    assert.equal(first.status, 1, "the first deploy creates the stack and stops for the team's CIDR");
    assert.match(
      first.stderr,
      /allowedCidrs is not set .*npm run pulumi -- config set --stack dev --path 'allowedCidrs\[0\]' <team-cidr>/,
    );
    const set = shell(`${shared}\nnpm run pulumi -- config set --stack dev --path 'allowedCidrs[0]' ${OPERATOR_IP}/32`);
    assert.equal(set.status, 0, set.stderr);
    const second = shell(`${shared}\nnpm run deploy`);
    assert.equal(second.status, 0, second.stderr);
    assert.ok(second.seen.some((c) => c.args[0] === "up"));
  });

  it("prints only pulumi's output with npm run --silent, for a file or a variable", () => {
    fakeDeploy([]);
    const result = shell("npm run --silent pulumi -- stack output sshKeyFile");
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, KEY_FILE);
  });

  it("talks to the shared backend with the team's key when TITAN_BACKEND_URL is set, and refuses without it", () => {
    const shared = [
      "export TITAN_BACKEND_URL='s3://team-state/titan?region=us-east-1'",
      "export TITAN_SECRETS_PROVIDER='awskms://alias/titan-pulumi?region=us-east-1'",
    ];
    fakeDeploy(shared);
    const result = shell([...shared, "npm run pulumi -- stack output hosts"].join("\n"));
    assert.equal(result.status, 0, result.stderr);
    for (const call of result.seen) {
      assert.equal(call.backend, "s3://team-state/titan?region=us-east-1");
      assert.equal(call.passfile, "");
      assert.equal(call.passphrase, "");
    }
    const without = shell("npm run pulumi -- stack output hosts");
    assert.notEqual(without.status, 0);
    assert.match(without.stderr, /belongs to a shared stack .*set TITAN_BACKEND_URL/);
  });
});

describe("commands the stack itself prints", () => {
  it("deploy.sh's fix for a changed IP works as printed from a fresh shell, and the next deploy proceeds", () => {
    fakeDeploy([]);
    const moved = shell("npm run deploy", { CURL_ANSWER: "203.0.113.9" });
    assert.equal(moved.status, 1);
    const fix = /Fix: (.*)$/m.exec(moved.stderr)?.[1];
    assert.ok(fix, moved.stderr);
    assert.match(fix, /^npm run pulumi -- /);
    const fixed = shell(fix, { CURL_ANSWER: "203.0.113.9" });
    assert.equal(fixed.status, 0, fixed.stderr);
    assert.deepEqual(fixed.seen[1].args, [
      "config",
      "set",
      "--stack",
      "dev",
      "--path",
      "allowedCidrs[0]",
      "203.0.113.9/32",
    ]);
    assert.equal(fixed.seen[1].backend, `file://${path.join(project, ".pulumi-state")}`);
    const again = shell("npm run deploy", { CURL_ANSWER: "203.0.113.9" });
    assert.equal(again.status, 0, again.stderr);
    assert.ok(again.seen.some((c) => c.args[0] === "up"));
  });

  it("the repair the shared-stack check names (config refresh) runs through npm run pulumi as printed", () => {
    const shared = {
      TITAN_BACKEND_URL: "s3://team-state/titan?region=us-east-1",
      TITAN_SECRETS_PROVIDER: "awskms://alias/titan-pulumi?region=us-east-1",
    };
    fs.mkdirSync(path.join(work, "stacks"));
    fs.writeFileSync(path.join(work, "stacks/dev"), ""); // the team's stack, but not its file
    const refused = shell("npm run pulumi -- stack output hosts", shared);
    assert.equal(refused.status, 1);
    const repair = /lacks the shared stack's secretsprovider.*: (npm run pulumi -- .*)$/m.exec(refused.stderr)?.[1];
    assert.equal(repair, "npm run pulumi -- config refresh --stack dev");
    const repaired = shell(repair, shared);
    assert.equal(repaired.status, 0, repaired.stderr);
    assert.deepEqual(repaired.seen[1].args, ["config", "refresh", "--stack", "dev"]);
    assert.equal(repaired.seen[1].backend, shared.TITAN_BACKEND_URL);
  });

  it("a fix for another stack selects it with STACK", () => {
    const v = operatorAccess({
      ip: "203.0.113.9",
      ipSource: "test",
      allowedCidrs: '["198.51.100.23/32"]',
      stack: "demo",
      mode: "local",
    });
    assert.match(
      v.action === "refuse" ? v.message : "",
      /Fix: STACK=demo npm run pulumi -- config set --stack demo --path 'allowedCidrs\[0\]' 203\.0\.113\.9\/32$/,
    );
  });

  it("the runbooks in every alert give no bare pulumi command, and refresh before replacing a terminated host", () => {
    const defs = alertDefinitions(testConfig());
    for (const def of defs) {
      for (const m of def.runbookSteps.matchAll(/`([^`]*)`/g)) {
        assert.doesNotMatch(m[1], /^pulumi /, `${def.name}: \`${m[1]}\` talks to the reader's default backend`);
      }
    }
    const missing = defs.find((d) => d.name === "HostMissing");
    assert.ok(missing);
    // Until a refresh, the state still holds the terminated instance and a deploy changes nothing.
    assert.match(missing.runbookSteps, /Terminated: run `npm run pulumi -- refresh` first .*then `npm run deploy`/);
  });
});
