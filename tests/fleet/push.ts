/**
 * A host's push, run for real over SSH as pulumi-command v1.2.1 runs it, with the system's
 * OpenSSH client and the run's key, trusting only the host key the fleet read from the host
 * (readiness.ts). What the provider does, read from pulumi/pulumi-command v1.2.1
 * (/work/.mirror/pulumi+pulumi-command/repo, `git show v1.2.1:<path>`):
 *
 * - Command (provider/pkg/provider/remote/commandOutputs.go `run`): one SSH session per run;
 *   each `environment` entry is sent with session.Setenv, whose refusal by sshd fails the
 *   resource ("could not set environment variable"); PULUMI_COMMAND_STDOUT/STDERR (the last
 *   run's output, unless addPreviousOutputInEnv is false) are tried the same way but a refusal
 *   only warns; stdin is attached only when non-empty; then session.Run(cmd): an SSH "exec"
 *   request carrying the script verbatim, no PTY, so sshd runs it with the login user's shell
 *   as `<shell> -c <script>`. A non-zero exit fails the resource with the combined output.
 *   commandController.go: Create runs `create`, Update runs `update` or else `create`,
 *   Delete runs `delete`.
 * - CopyToRemote (remote/copyController.go copyToRemote/sftpCopy/copyDir/copyFile): an SFTP
 *   session over the same SSH connection kind; a directory source is copied into
 *   remotePath/<basename> (no trailing slash) or its entries into remotePath (trailing slash),
 *   missing directories made as the walk meets them, files created or truncated; nothing is
 *   ever removed and no mode is sent (pkg/sftp's Create and Mkdir pass no attributes, so
 *   sftp-server applies 0666/0777 under its umask). tests/support/providerCopy.ts encodes the
 *   same table; copyOperations below computes it against the host's real state.
 * - Connection (remote/connection.go): user defaults to root, port to 22; dials are retried
 *   up to dialErrorLimit times with perDialTimeout each. Without `hostKey` the provider ignores
 *   the host key (ssh.InsecureIgnoreHostKey); the fleet checks it, which is stricter. With
 *   `hostKey` (connectionBase.SSHConfig): ssh.ParseAuthorizedKey of it (an authorized_keys line),
 *   ssh.FixedHostKey (the server's key must be exactly that one) and HostKeyAlgorithms limited to
 *   that key's type; here a known_hosts file holding only that key for the address, with
 *   StrictHostKeyChecking=yes and HostKeyAlgorithms=<its type> (pinHostKey).
 *
 * Differences of the system client, and how they are closed:
 * - OpenSSH sends `SetEnv` without asking for a reply (clientloop.c), so a refusal is silent;
 *   the host's AcceptEnv (from `sshd -T`) is read first and a refused name fails as the
 *   provider would fail.
 * - OpenSSH's sftp `put` sends the local file's permission bits with the open (sftp-client.c
 *   do_upload: `a.perm &= 0777`), where pkg/sftp sends none. The source is therefore mirrored
 *   into a run directory with every file at 0666 and every directory at 0777 (the protocol's
 *   defaults) before the copy, so a new file gets exactly the mode the provider's would.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { waitFor } from "./exec";
import type { PlannedCommand } from "./stackPlan";

export interface SshTarget {
  readonly address: string;
  readonly user: string;
  readonly port?: number;
  readonly privateKeyPath: string;
  /** A known_hosts file holding the host's key (readiness.ts waitForSsh writes it, or pinHostKey). */
  readonly knownHosts: string;
  /** The connection's `hostKey`, pinned as pulumi-command pins it (pinHostKey writes knownHosts from it). */
  readonly hostKey?: string;
  /** Seconds per dial (the connection's perDialTimeout). */
  readonly connectTimeoutSeconds?: number;
  /** Dial attempts before giving up (the connection's dialErrorLimit). */
  readonly dialAttempts?: number;
}

export interface SshResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface SshOptions {
  /** Attached as the session's standard input when non-empty; otherwise stdin is empty. */
  readonly stdin?: string;
  /** Sent with SetEnv (the caller checks they are accepted: see acceptEnv). */
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

export class PushError extends Error {}

/**
 * The key of an authorized_keys line as golang.org/x/crypto/ssh ParseAuthorizedKey reads it for
 * pulumi-command's `hostKey`: `<type> <base64 blob> [comment]`, the blob's own leading string
 * being the type. Throws, naming the value, on anything else (the provider fails the resource:
 * "failed to parse host key").
 */
export function parseAuthorizedKey(hostKey: string): { type: string; blob: string } {
  const [type, blob] = hostKey.trim().split(/\s+/);
  const bad = (why: string) =>
    new PushError(`hostKey ${JSON.stringify(hostKey)}: expected an authorized_keys line "<type> <base64>" (${why})`);
  if (!type || !blob || !/^[A-Za-z0-9+/]+={0,3}$/.test(blob)) throw bad("two fields, the second base64");
  const raw = Buffer.from(blob, "base64");
  const length = raw.length >= 4 ? raw.readUInt32BE(0) : -1;
  if (length < 1 || raw.length < 4 + length || raw.subarray(4, 4 + length).toString("latin1") !== type) {
    throw bad(`the key inside is not a ${type} key`);
  }
  return { type, blob };
}

/**
 * `t` connecting only to the host holding `hostKey`: known_hosts (written to `file`) lists just
 * that key for the address, and HostKeyAlgorithms (baseArgs) offers just its type.
 */
export function pinHostKey(t: SshTarget, hostKey: string, file: string): SshTarget {
  const { type, blob } = parseAuthorizedKey(hostKey);
  const host = (t.port ?? 22) === 22 ? t.address : `[${t.address}]:${t.port}`;
  fs.writeFileSync(file, `${host} ${type} ${blob}\n`);
  return { ...t, hostKey: `${type} ${blob}`, knownHosts: file };
}

/**
 * Options common to ssh and sftp (whose port flags differ: -p and -P): only the run's key, and
 * only the host key read from the container itself.
 */
export function baseArgs(t: SshTarget, portFlag: "-p" | "-P"): string[] {
  return [
    "-i",
    t.privateKeyPath,
    portFlag,
    String(t.port ?? 22),
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${t.knownHosts}`,
    ...(t.hostKey === undefined ? [] : ["-o", `HostKeyAlgorithms=${parseAuthorizedKey(t.hostKey).type}`]),
    "-o",
    `ConnectTimeout=${t.connectTimeoutSeconds ?? 15}`,
    "-o",
    "LogLevel=ERROR",
  ];
}

function spawnCollect(
  command: string,
  args: readonly string[],
  stdin: string | undefined,
  timeoutMs: number,
): Promise<SshResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], timeout: timeoutMs, killSignal: "SIGTERM" });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => err.push(Buffer.from(e.message)));
    child.on("close", (code, signal) =>
      resolve({
        status: code ?? -1,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8") + (signal ? `\n(ssh ended by ${signal})` : ""),
      }),
    );
    child.stdin.on("error", () => undefined);
    child.stdin.end(stdin ?? "");
  });
}

/** ssh's own failures (exit 255 before the session ran): worth another dial, as the provider retries. */
const DIAL_ERROR =
  /Connection refused|Connection timed out|No route to host|Connection reset|kex_exchange_identification|Network is unreachable/;

async function withDialRetry(t: SshTarget, what: string, once: () => Promise<SshResult>): Promise<SshResult> {
  const attempts = t.dialAttempts ?? 10;
  let tries = 0;
  return waitFor(
    `${what} (${t.user}@${t.address})`,
    async () => {
      tries += 1;
      const r = await once();
      if (r.status === 255 && DIAL_ERROR.test(r.stderr) && tries < attempts) throw new Error(r.stderr.trim());
      return r;
    },
    { timeoutMs: attempts * ((t.connectTimeoutSeconds ?? 15) + 2) * 1000, intervalMs: 1000 },
  );
}

/** Runs `command` verbatim as the session's exec request (no PTY), as session.Run does. */
export function sshExec(t: SshTarget, command: string, options: SshOptions = {}): Promise<SshResult> {
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || /["\\\n]/.test(v)) {
      throw new PushError(
        `environment ${k}: the fleet passes only plain names and values without quotes, backslashes or newlines`,
      );
    }
  }
  const env = Object.entries(options.env ?? {}).flatMap(([k, v]) => ["-o", `SetEnv=${k}=${JSON.stringify(v)}`]);
  const stdin = options.stdin !== undefined && options.stdin.length > 0 ? options.stdin : undefined;
  const args = [
    ...baseArgs(t, "-p"),
    "-T",
    ...(stdin === undefined ? ["-n"] : []),
    ...env,
    `${t.user}@${t.address}`,
    command,
  ];
  return withDialRetry(t, "ssh", () => spawnCollect("/usr/bin/ssh", args, stdin, options.timeoutMs ?? 900_000));
}

/** Runs an sftp batch (each line one command; a failing line ends the batch with an error). */
export function sftpBatch(t: SshTarget, lines: readonly string[], timeoutMs = 600_000): Promise<SshResult> {
  const args = [...baseArgs(t, "-P"), "-b", "-", `${t.user}@${t.address}`];
  return withDialRetry(t, "sftp", () => spawnCollect("/usr/bin/sftp", args, `${lines.join("\n")}\n`, timeoutMs));
}

/** The host's sshd AcceptEnv patterns (`sshd -T` prints the effective configuration). */
export async function acceptEnv(t: SshTarget): Promise<string[]> {
  const r = await sshExec(t, "sudo -n /usr/sbin/sshd -T");
  if (r.status !== 0) throw new PushError(`sshd -T on ${t.address} failed (exit ${r.status}): ${r.stderr.trim()}`);
  return r.stdout
    .split("\n")
    .filter((l) => l.toLowerCase().startsWith("acceptenv "))
    .flatMap((l) => l.split(/\s+/).slice(1));
}

/** Whether sshd accepts `name`: its match_pattern (`*` and `?` globs), as AcceptEnv applies it. */
export function acceptedBy(patterns: readonly string[], name: string): boolean {
  return patterns.some((p) => {
    const re = new RegExp(
      `^${p
        .replace(/[.+^${}()|[\]\\]/g, "\\$&")
        .replace(/\*/g, ".*")
        .replace(/\?/g, ".")}$`,
    );
    return re.test(name);
  });
}

export const PULUMI_COMMAND_STDOUT = "PULUMI_COMMAND_STDOUT";
export const PULUMI_COMMAND_STDERR = "PULUMI_COMMAND_STDERR";

export interface CommandRun {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
  /** What the provider would have logged as warnings (refused PULUMI_COMMAND_* variables). */
  readonly warnings: readonly string[];
}

/**
 * Runs one of a Command's scripts as commandOutputs.go `run` does; throws PushError, as the
 * provider fails the resource, on a refused environment variable or a non-zero exit.
 * `previous` is the last run's output (what the provider keeps in state).
 */
export async function runCommand(
  t: SshTarget,
  push: PlannedCommand,
  which: "create" | "update" | "delete",
  previous?: { stdout: string; stderr: string },
  accepted?: readonly string[],
): Promise<CommandRun> {
  const script = push[which];
  if (script === undefined) throw new PushError(`${push.resource}: has no ${which} command`);
  const started = Date.now();
  const env: Record<string, string> = {};
  const warnings: string[] = [];
  const previousSent = push.addPreviousOutputInEnv !== false && previous !== undefined;
  const needEnv =
    Object.keys(push.environment ?? {}).length > 0 || (previousSent && `${previous.stdout}${previous.stderr}` !== "");
  const patterns = accepted ?? (needEnv ? await acceptEnv(t) : []);
  for (const [k, v] of Object.entries(push.environment ?? {})) {
    if (!acceptedBy(patterns, k)) {
      throw new PushError(
        `${push.resource}: could not set environment variable "${k}": sshd on ${t.address} accepts only AcceptEnv ${patterns.join(" ") || "(none)"}`,
      );
    }
    env[k] = v;
  }
  if (previousSent) {
    for (const [k, v] of [
      [PULUMI_COMMAND_STDOUT, previous.stdout],
      [PULUMI_COMMAND_STDERR, previous.stderr],
    ] as const) {
      if (v === "") continue;
      if (acceptedBy(patterns, k)) env[k] = v;
      else warnings.push(`Unable to set '${k}' (sshd on ${t.address} does not AcceptEnv it)`);
    }
  }
  const r = await sshExec(t, script, { stdin: push.stdin, env });
  const seconds = (Date.now() - started) / 1000;
  if (r.status !== 0) {
    throw new PushError(
      `${push.resource} (${which}) on ${t.address}: exit ${r.status}:\n${`${r.stdout}${r.stderr}`.trim().split("\n").slice(-30).join("\n")}`,
    );
  }
  // The provider keeps both outputs without their last newline (commandOutputs.go).
  return {
    status: r.status,
    stdout: r.stdout.replace(/\n$/, ""),
    stderr: r.stderr.replace(/\n$/, ""),
    seconds,
    warnings,
  };
}

/** One SFTP step of a copy. */
export type CopyOp =
  | { readonly op: "mkdir"; readonly remote: string }
  | { readonly op: "put"; readonly local: string; readonly remote: string };

export type RemoteKind = "dir" | "file" | "none";

/** Every path a copy of `source` to `remotePath` may stat on the host (for copyOperations). */
export function pathsToStat(source: string, remotePath: string): string[] {
  const out = new Set<string>();
  for (let p = remotePath; ; p = path.posix.dirname(p)) {
    out.add(p);
    if (p === "/" || p === ".") break;
  }
  const st = fs.statSync(source);
  if (!st.isDirectory()) {
    out.add(path.posix.join(remotePath, path.basename(source)));
    return [...out];
  }
  const dests = [remotePath, path.posix.join(remotePath, path.basename(source))];
  const walk = (abs: string, rel: string) => {
    for (const d of dests) out.add(path.posix.join(d, rel));
    if (!fs.statSync(abs).isDirectory()) return;
    for (const e of fs.readdirSync(abs)) walk(path.join(abs, e), rel ? `${rel}/${e}` : e);
  };
  walk(source, "");
  return [...out];
}

/**
 * The SFTP steps copyController.go sftpCopy takes for `source` (a local path; `given` is the
 * path as the program gave it, whose trailing slash matters) to `remotePath`, given what each
 * remote path is now. Throws the provider's errors where it would fail.
 */
export function copyOperations(
  source: string,
  given: string,
  remotePath: string,
  kinds: ReadonlyMap<string, RemoteKind>,
): CopyOp[] {
  const state = new Map(kinds);
  const kind = (p: string): RemoteKind => state.get(p) ?? "none";
  const ops: CopyOp[] = [];
  const mkdir = (p: string) => {
    ops.push({ op: "mkdir", remote: p });
    state.set(p, "dir");
  };
  // pkg/sftp MkdirAll: every missing ancestor, an error where one is a file.
  const mkdirAll = (p: string) => {
    const chain: string[] = [];
    for (let q = p; q !== "/" && q !== "."; q = path.posix.dirname(q)) chain.unshift(q);
    for (const q of chain) {
      if (kind(q) === "file") throw new PushError(`failed to create remote directory ${p}: ${q} is a file`);
      if (kind(q) === "none") mkdir(q);
    }
  };
  const put = (local: string, remote: string) => {
    ops.push({ op: "put", local, remote });
    state.set(remote, "file");
  };
  const st = fs.statSync(source);
  let dest = remotePath;
  if (st.isDirectory()) {
    if (kind(dest) === "none") mkdirAll(dest);
    if (!given.endsWith("/")) {
      dest = path.posix.join(dest, path.basename(source));
      if (kind(dest) === "file") throw new PushError(`remote path ${dest} exists but is not a directory`);
      if (kind(dest) === "none") mkdir(dest);
    }
    // fs.WalkDir: lexical order, each directory before its entries.
    const walk = (abs: string, rel: string) => {
      const target = rel ? path.posix.join(dest, rel) : dest;
      if (!fs.statSync(abs).isDirectory()) return put(abs, target);
      if (kind(target) === "file") throw new PushError(`remote path ${target} exists but is not a directory`);
      if (kind(target) === "none") mkdir(target);
      for (const e of fs.readdirSync(abs).sort()) walk(path.join(abs, e), rel ? `${rel}/${e}` : e);
    };
    walk(source, "");
    return ops;
  }
  if (kind(dest) === "dir") dest = path.posix.join(dest, path.basename(source));
  else if (kind(dest) === "none") mkdirAll(path.posix.dirname(dest));
  put(source, dest);
  return ops;
}

/** A copy of `source` whose files are 0666 and directories 0777: what pkg/sftp's open and mkdir ask for. */
export function protocolDefaultMirror(source: string, into: string): string {
  fs.rmSync(into, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(into), { recursive: true });
  const copy = (from: string, to: string) => {
    if (fs.statSync(from).isDirectory()) {
      fs.mkdirSync(to);
      fs.chmodSync(to, 0o777);
      for (const e of fs.readdirSync(from)) copy(path.join(from, e), path.join(to, e));
    } else {
      fs.copyFileSync(from, to);
      fs.chmodSync(to, 0o666);
    }
  };
  copy(source, into);
  return into;
}

const SAFE_PATH = /^[A-Za-z0-9@%+=:,./_-]+$/;

/** sftp's batch syntax quotes with double quotes; the fleet's paths need none, and others are refused. */
function batchPath(p: string): string {
  if (!SAFE_PATH.test(p)) throw new PushError(`path ${JSON.stringify(p)}: not one the fleet's sftp batch quotes`);
  return `"${p}"`;
}

/** Reads what each path is on the host, through the exec channel (sftp's batch cannot stat quietly). */
export async function remoteKinds(t: SshTarget, paths: readonly string[]): Promise<Map<string, RemoteKind>> {
  for (const p of paths) batchPath(p);
  const script =
    'while IFS= read -r p; do if [ -d "$p" ]; then echo dir; elif [ -e "$p" ]; then echo file; else echo none; fi; done';
  const r = await sshExec(t, script, { stdin: `${paths.join("\n")}\n` });
  const lines = r.stdout.trim().split("\n");
  if (r.status !== 0 || lines.length !== paths.length) {
    throw new PushError(`stat of ${paths.length} paths on ${t.address} failed (exit ${r.status}): ${r.stderr.trim()}`);
  }
  return new Map(paths.map((p, i) => [p, lines[i] as RemoteKind]));
}

export interface CopyRun {
  readonly ops: readonly CopyOp[];
  readonly seconds: number;
}

/**
 * CopyToRemote's copy of `source` (local; `given` as the program named it) to `remotePath`:
 * the provider's steps (copyOperations) against the host's state, run as one sftp batch
 * from a protocol-default mirror made under `mirrorDir`.
 */
export async function copyToRemote(
  t: SshTarget,
  source: string,
  given: string,
  remotePath: string,
  mirrorDir: string,
  /** Changes the mirror before it is sent (the fleet's one override). */
  prepare?: (mirror: string) => void,
): Promise<CopyRun> {
  const started = Date.now();
  const mirror = protocolDefaultMirror(source, path.join(mirrorDir, path.basename(source)));
  prepare?.(mirror);
  const kinds = await remoteKinds(t, pathsToStat(mirror, remotePath));
  const ops = copyOperations(mirror, given.endsWith("/") ? `${mirror}/` : mirror, remotePath, kinds);
  const lines = ops.map((o) =>
    o.op === "mkdir" ? `mkdir ${batchPath(o.remote)}` : `put ${batchPath(o.local)} ${batchPath(o.remote)}`,
  );
  const r = await sftpBatch(t, lines);
  if (r.status !== 0) {
    throw new PushError(`copy of ${given} to ${t.address}:${remotePath} failed (exit ${r.status}): ${r.stderr.trim()}`);
  }
  return { ops, seconds: (Date.now() - started) / 1000 };
}
