/**
 * `npm run verify` (scripts/verify.sh): the post-deploy verification again, on demand, against
 * the running stack, without `pulumi up`. It reads the stack's outputs (`pulumi stack output
 * --json --show-secrets`, in the file given as the only argument), has each web host log a
 * marker line over SSH as the deploy's marker command does, and runs the same checks
 * (infra/verify/checks.ts). Its marker is random, so Loki must return lines written now; it is
 * never stored in state, so a later `pulumi up` still has nothing to do.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { formatReport, verify, type Fetch, type VerificationReport } from "../infra/verify/checks";
import { markerFor, markerLineCommand } from "../infra/verify/marker";
import type { StackVerification } from "../infra/delivery/pipeline";

/** One SSH command: `args` as given to ssh(1), the remote command last. */
export type RunSsh = (args: readonly string[]) => { status: number | null; stderr: string };

export interface VerifyStackDeps {
  readonly fetch: Fetch;
  readonly ssh: RunSsh;
  /** 12 or more hex digits for the marker. */
  readonly nonce: () => string;
  readonly home: string;
  /** TITAN_SSH_KEY_FILE: the operator's own private key, for a stack deployed with sshPublicKey. */
  readonly operatorKeyFile?: string;
  readonly log: (line: string) => void;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;

function output(outputs: Record<string, unknown>, key: string, expected: string): unknown {
  if (!(key in outputs)) {
    throw new Error(
      `stack output ${key} is missing: expected ${expected}; run npm run deploy first (a stack deployed before this output existed needs one more deploy)`,
    );
  }
  return outputs[key];
}

function stackVerification(outputs: Record<string, unknown>): StackVerification {
  const v = output(outputs, "verificationSpec", "the verification spec the program exports");
  if (!isObject(v) || !isObject(v.spec) || !isObject(v.markers) || !Array.isArray(v.markers.hosts)) {
    throw new Error(
      `stack output verificationSpec: expected { spec, markers: { job, hosts } }, got ${JSON.stringify(v)}`,
    );
  }
  return v as unknown as StackVerification;
}

/**
 * The SSH private key: the stack's generated one; for a stack deployed with the operator's own key
 * (no sshPrivateKey output, and no sshKeyFile either: the program names no file it never wrote),
 * TITAN_SSH_KEY_FILE, else none, and ssh offers what it would anyway (agent, ~/.ssh/config).
 */
function privateKeyFile(
  outputs: Record<string, unknown>,
  dir: string,
  deps: Pick<VerifyStackDeps, "home" | "operatorKeyFile">,
): string | undefined {
  const generated = outputs.sshPrivateKey;
  if (typeof generated === "string" && generated.length > 0) {
    const file = path.join(dir, "key");
    fs.writeFileSync(file, generated.endsWith("\n") ? generated : `${generated}\n`, { mode: 0o600 });
    return file;
  }
  // A stack deployed before sshKeyFile was left out for an operator's key still exports it.
  const named = deps.operatorKeyFile ?? outputs.sshKeyFile;
  const what = deps.operatorKeyFile === undefined ? "stack output sshKeyFile" : "TITAN_SSH_KEY_FILE";
  if (named === undefined) return undefined;
  if (typeof named !== "string") throw new Error(`${what}: expected a path, got ${JSON.stringify(named)}`);
  const file = named.replace(/^~(?=\/)/, deps.home);
  if (!fs.existsSync(file))
    throw new Error(`${what} names ${file}, which does not exist: expected the stack's SSH private key there`);
  return file;
}

export async function verifyStack(
  outputs: Record<string, unknown>,
  deps: VerifyStackDeps,
): Promise<VerificationReport> {
  const { spec, markers } = stackVerification(outputs);
  const password = output(outputs, "grafanaAdminPassword", "Grafana's admin password (a secret: --show-secrets)");
  if (typeof password !== "string" || password.length === 0 || password === "[secret]") {
    throw new Error(
      "stack output grafanaAdminPassword: expected the password itself; read the outputs with --show-secrets",
    );
  }
  const marker = markerFor(deps.nonce());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "titan-verify-"));
  try {
    const key = privateKeyFile(outputs, dir, deps);
    // Without a key file ssh offers its own identities (agent, ~/.ssh/config), so not IdentitiesOnly.
    const identity = key === undefined ? [] : ["-i", key];
    const onlyThat = key === undefined ? [] : ["-o", "IdentitiesOnly=yes"];
    // The host keys the deploy pinned, when the stack knows them; otherwise the first key a
    // host shows is taken for this run only (the line written carries no secret).
    const knownHosts = path.join(dir, "known_hosts");
    const pinned = markers.hosts.filter((h) => h.hostKey);
    fs.writeFileSync(knownHosts, pinned.map((h) => `${h.address} ${h.hostKey}\n`).join(""), { mode: 0o600 });
    for (const host of markers.hosts) {
      const result = deps.ssh([
        ...identity,
        "-o",
        "BatchMode=yes",
        ...onlyThat,
        "-o",
        "ConnectTimeout=10",
        "-o",
        `UserKnownHostsFile=${knownHosts}`,
        "-o",
        `StrictHostKeyChecking=${host.hostKey ? "yes" : "accept-new"}`,
        `${host.user}@${host.address}`,
        markerLineCommand(marker),
      ]);
      if (result.status !== 0) {
        const hint =
          key === undefined
            ? " (the stack uses your own key, sshPublicKey: load it into ssh-agent or set TITAN_SSH_KEY_FILE=<its private key file>)"
            : "";
        throw new Error(
          `logging the marker on ${host.name} (${host.user}@${host.address}) failed: ${result.stderr.trim()}${hint}`,
        );
      }
      deps.log(`verify: ${host.name} logged ${marker}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return verify(
    { ...spec, logMarker: { marker, job: markers.job, hosts: markers.hosts.map((h) => h.name) } },
    password,
    deps.fetch,
  );
}

async function main(): Promise<number> {
  const file = process.argv[2];
  if (!file) throw new Error("usage: verifyStack.ts <file with `pulumi stack output --json --show-secrets`>");
  const outputs = JSON.parse(fs.readFileSync(file, "utf8")) as unknown;
  if (!isObject(outputs)) throw new Error(`${file}: expected the stack's outputs as a JSON object`);
  const report = await verifyStack(outputs, {
    fetch,
    ssh: (args) => {
      const r = spawnSync("ssh", [...args], { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
      return { status: r.status, stderr: r.error ? r.error.message : r.stderr };
    },
    nonce: () => randomBytes(6).toString("hex"),
    home: os.homedir(),
    operatorKeyFile: process.env.TITAN_SSH_KEY_FILE || undefined,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stderr.write(`${formatReport(report)}\n`);
  return report.ok ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`verify: ${(err as Error).message}\n`);
      process.exit(2);
    },
  );
}
