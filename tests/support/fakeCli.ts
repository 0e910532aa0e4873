/**
 * Fake `pulumi` and `curl` for the tests of scripts/*.sh (tests/deploy.test.ts) and of the
 * documented commands (tests/documentedCommands.test.ts): each records its calls, so a test
 * sees what the real CLI would have been asked to do and with which backend and secrets.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT } from "./files";

/*
 * The fake plays the parts of the real CLI the scripts depend on:
 * - Each call is logged to $CALLS as `pulumi <args> | backend=… passfile=…`, and with $SEEN set
 *   also as a record readSeen() parses: the exact arguments, the backend, passphrase (or its
 *   file), stack (--stack/-s, else the one `stack select` chose last) and HOME it ran with.
 * - `stack output NAME` prints $WORK/outputs/NAME (a missing one fails as the CLI does); all of
 *   them as JSON (--json) only with --show-secrets, which verify.sh needs.
 * - `stack select --create` creates a missing stack; a cloud secrets provider writes
 *   `secretsprovider` and `encryptedkey` into Pulumi.<stack>.yaml and a passphrase writes
 *   `encryptionsalt` (pulumi/pulumi pkg/cmd/pulumi/stack/stack_select.go, secrets.go,
 *   sdk/pkg/secrets/cloud/manager.go); `stack select` without --create fails on a missing stack.
 * - `config get` of a list prints it as JSON, and fails for an unset key
 *   (pkg/cmd/pulumi/config/config_get.go); `config set` writes into Pulumi.<stack>.yaml.
 * - `up` and `preview` load a `--policy-pack` from the directory holding PulumiPolicy.yaml,
 *   resolved from the working directory, and fail on any other path
 *   (sdk/go/common/resource/plugin/analyzer_plugin.go, NewPolicyAnalyzer); `preview` prints
 *   $WORK/preview-output and exits with $PREVIEW_STATUS (non-zero on a mandatory violation).
 *   With --diff it prints no "Policies:" block: that block is the progress display's
 *   (pkg/backend/display/progress.go); --diff selects the diff display
 *   (pkg/cmd/pulumi/operations/preview.go), which prints each violation inline among the
 *   resources' diffs (pkg/backend/display/diff.go), so the fake drops the block.
 */
export const FAKE_PULUMI = `#!/usr/bin/env bash
printf 'pulumi %s | backend=%s passfile=%s\\n' "$*" "$PULUMI_BACKEND_URL" "\${PULUMI_CONFIG_PASSPHRASE_FILE:-}" >>"$CALLS"
args=("$@"); stack="\${args[-1]}"; provider=""; pack=""; named=""
for ((i = 0; i < $#; i++)); do
  [[ "\${args[i]}" == --stack || "\${args[i]}" == -s ]] && stack="\${args[i+1]}" named="\${args[i+1]}"
  [[ "\${args[i]}" == --stack=* ]] && stack="\${args[i]#--stack=}" named="$stack"
  [[ "\${args[i]}" == --secrets-provider ]] && provider="\${args[i+1]}"
  [[ "\${args[i]}" == --policy-pack ]] && pack="\${args[i+1]}"
done
if [[ -n "\${SEEN:-}" ]]; then
  # One record per call: the arguments (US-separated), then what the CLI would act on.
  printf '%s\\x1f' "$@" >>"$SEEN"
  printf '\\x1dbackend=%s\\x1dpassphrase=%s\\x1dpassfile=%s\\x1dstack=%s\\x1dhome=%s\\x1e' "\${PULUMI_BACKEND_URL:-}" \\
    "\${PULUMI_CONFIG_PASSPHRASE:-}" "\${PULUMI_CONFIG_PASSPHRASE_FILE:-}" \\
    "\${named:-$(cat "$WORK/selected" 2>/dev/null)}" "$HOME" >>"$SEEN"
fi
if [[ -n "$pack" && ! -f "$pack/PulumiPolicy.yaml" ]]; then
  echo "error: failed to load Pulumi policy project located at \\"$pack\\"" >&2; exit 255
fi
if [[ "$1" == preview ]]; then
  if [[ " $* " == *" --diff "* ]]; then
    awk '/^Policies:/ { skip = 1; next } skip && /^[^ \t]/ { skip = 0 } !skip' "$WORK/preview-output" 2>/dev/null
  else
    cat "$WORK/preview-output" 2>/dev/null
  fi
  exit "\${PREVIEW_STATUS:-0}"
fi
file="Pulumi.$stack.yaml"
case "$1 $2" in
"stack select")
  [[ -f "$WORK/stacks/$stack" ]] && { printf '%s' "$stack" >"$WORK/selected"; exit 0; }
  [[ " $* " == *" --create "* ]] || { echo "error: no stack named '$stack' found" >&2; exit 255; }
  mkdir -p "$WORK/stacks" && touch "$WORK/stacks/$stack" && printf '%s' "$stack" >"$WORK/selected"
  if [[ -n "$provider" ]]; then
    grep -q '^encryptedkey:' "$file" 2>/dev/null || printf 'secretsprovider: %s\\nencryptedkey: ZmFrZS1rZXk=\\n' "$provider" >>"$file"
  else
    grep -q '^encryptionsalt:' "$file" 2>/dev/null || printf 'encryptionsalt: v1:ZmFrZQ==:v1:c2FsdA==\\n' >>"$file"
  fi ;;
"config get")
  [[ -f "$WORK/cidrs" ]] || { echo "error: configuration key 'allowedCidrs' not found" >&2; exit 255; }
  cat "$WORK/cidrs" ;;
"stack output")
  name=""
  for ((i = 2; i < $#; i++)); do
    case "\${args[i]}" in --stack | -s) ((i++)) ;; -*) ;; *) name=\${args[i]} ;; esac
  done
  if [[ -n "$name" ]]; then
    [[ -f "$WORK/outputs/$name" ]] || { echo "error: current stack does not have output property '$name'" >&2; exit 255; }
    cat "$WORK/outputs/$name"
  else
    [[ " $* " != *" --json "* || " $* " == *" --show-secrets "* ]] || { echo "fake pulumi: stack output without --show-secrets" >&2; exit 2; }
    cat "$WORK/outputs.json" 2>/dev/null
  fi ;;
"config set")
  [[ " $* " == *" allowedCidrs"* ]] || exit 0
  printf '["%s"]\\n' "\${args[-1]}" >"$WORK/cidrs"
  printf '# allowedCidrs %s\\n' "\${args[-1]}" >>"$file" ;;
esac
exit 0
`;
export const FAKE_CURL = `#!/usr/bin/env bash
printf 'curl %s\\n' "$*" >>"$CALLS"
[[ -z "\${CURL_FAIL:-}" ]] || { echo "curl: (6) Could not resolve host" >&2; exit 6; }
printf '%s\\n' "$CURL_ANSWER"
`;

/** One call the fake `pulumi` saw (with $SEEN set). */
export interface SeenCall {
  readonly args: string[];
  readonly backend: string;
  readonly passphrase: string;
  readonly passfile: string;
  readonly stack: string;
  readonly home: string;
}

export function readSeen(file: string): SeenCall[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\x1e")
    .filter((record) => record !== "")
    .map((record) => {
      const [argv, ...fields] = record.split("\x1d");
      const value = (key: string) => (fields.find((f) => f.startsWith(`${key}=`)) ?? "").slice(key.length + 1);
      return {
        args: argv.split("\x1f").slice(0, -1),
        backend: value("backend"),
        passphrase: value("passphrase"),
        passfile: value("passfile"),
        stack: value("stack"),
        home: value("home"),
      };
    });
}

/**
 * A scratch copy of the project for the deploy scripts' tests: what scripts/deploy.sh and its
 * siblings read (scripts, facts, tools, the stack and pack descriptors, `extra` entries), the
 * real node_modules (deploy.sh runs tools/operatorAccess.ts through ts-node), and `fakes` as
 * executables in <work>/bin, to put first on PATH. Returns the project directory.
 */
export function scratchProject(
  work: string,
  fakes: Readonly<Record<string, string>>,
  extra: readonly string[] = [],
): string {
  const project = path.join(work, "project");
  for (const entry of ["scripts", "facts", "tools", "tsconfig.json", "Pulumi.dev.yaml", ...extra]) {
    fs.cpSync(path.join(ROOT, entry), path.join(project, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(project, "node_modules"));
  // The pack's own descriptor, where deploy.sh and ci-preview.sh expect it.
  fs.mkdirSync(path.join(project, "policy"));
  fs.copyFileSync(path.join(ROOT, "policy/PulumiPolicy.yaml"), path.join(project, "policy/PulumiPolicy.yaml"));
  fs.mkdirSync(path.join(work, "bin"));
  for (const [name, script] of Object.entries(fakes)) {
    fs.writeFileSync(path.join(work, "bin", name), script, { mode: 0o755 });
  }
  return project;
}

/**
 * Runs scripts/<script> of a scratch project with the fakes of <work>/bin first on PATH and the
 * caller's environment minus what `strip` names (the operator's own Pulumi, AWS or CI settings
 * must not leak in); returns the result and the calls the fakes recorded (then forgotten).
 */
export function runScript(
  work: string,
  project: string,
  script: string,
  options: { args?: readonly string[]; env?: Record<string, string>; strip: (key: string) => boolean },
): SpawnSyncReturns<string> & { calls: string[] } {
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (options.strip(k)) delete base[k];
  const callsFile = path.join(work, "calls");
  const result = spawnSync("bash", [path.join(project, "scripts", script), ...(options.args ?? [])], {
    encoding: "utf8",
    env: {
      ...base,
      PATH: `${path.join(work, "bin")}:${process.env.PATH ?? ""}`,
      CALLS: callsFile,
      WORK: work,
      ...options.env,
    },
  });
  const calls = fs.existsSync(callsFile) ? fs.readFileSync(callsFile, "utf8").trim().split("\n") : [];
  fs.rmSync(callsFile, { force: true });
  return { ...result, calls };
}
