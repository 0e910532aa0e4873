/**
 * The local copy of what one push stages on a host. pulumi-command's CopyToRemote accepts only
 * path-based sources (a FileAsset, or a FileArchive of a file or a directory), so each host's
 * rendered tree is written under the project root and sent from there:
 *
 *   .titan-push/<stack>/<host>/titan-staging/<name>/<file paths>
 *
 * The archive is the `titan-staging` directory (always holding exactly one `<name>`), copied
 * without a trailing slash to the SSH user's home: the provider copies a directory into
 * `remotePath/<basename>`, so the files land in `~/titan-staging/<name>/`, which is
 * stagingDir(user, digest). The archive's path never depends on the content, so a preview
 * that cannot know the content yet still hands the provider a path (see configPush.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { STAGING_DIRNAME } from "./scripts";

export const PUSH_DIR = ".titan-push";

/** One file of the tree: its path inside the tree and either its content or a local file to copy. */
export type PushEntry =
  { readonly path: string; readonly content: string } | { readonly path: string; readonly from: string };

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function segment(key: string, value: string): string {
  if (!SEGMENT.test(value) || value.includes("..")) {
    throw new Error(`push tree: ${key} ${JSON.stringify(value)} must be one path segment of letters, digits, . _ -`);
  }
  return value;
}

/** The archive's directory, relative to the project root (as state records it) and absolute. */
export function pushArchiveDir(root: string, stack: string, host: string): { relative: string; absolute: string } {
  const relative = path.posix.join(PUSH_DIR, segment("stack", stack), segment("host", host), STAGING_DIRNAME);
  return { relative, absolute: path.join(root, relative) };
}

/** An entry's path inside the tree: relative, normalised, never escaping it. */
function entryPath(p: string): string {
  const relative = path.posix.normalize(p.replace(/^\/+/, ""));
  if (relative === "." || relative.startsWith("../") || relative === ".." || p.includes("\0")) {
    throw new Error(`push tree: file path ${JSON.stringify(p)} must name a file inside the tree`);
  }
  return relative;
}

const PARTIAL = ".partial-";

/** Whether process `pid` is still running (a signal 0 tests without sending anything). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A half-written tree whose writer has gone; one still being written (another run) is left alone. */
function abandoned(entry: string): boolean {
  const pid = Number(/^\.partial-(\d+)-/.exec(entry)?.[1]);
  return !Number.isInteger(pid) || (pid !== process.pid && !alive(pid));
}

/**
 * Writes `entries` as `<archive>/<name>/` unless that tree is already there, then removes every
 * other tree in the archive (earlier digests, abandoned attempts). The tree appears by one
 * rename, so a `<name>` directory that exists is complete. Returns the archive's directory.
 */
export function writePushTree(args: {
  readonly root: string;
  readonly stack: string;
  readonly host: string;
  readonly name: string;
  readonly entries: readonly PushEntry[];
}): { relative: string; absolute: string } {
  const archive = pushArchiveDir(args.root, args.stack, args.host);
  const name = segment("name", args.name);
  const target = path.join(archive.absolute, name);
  fs.mkdirSync(archive.absolute, { recursive: true });
  if (!fs.existsSync(target)) {
    const seen = new Set<string>();
    const tmp = fs.mkdtempSync(path.join(archive.absolute, `${PARTIAL}${process.pid}-`));
    try {
      for (const entry of args.entries) {
        const relative = entryPath(entry.path);
        if (seen.has(relative)) throw new Error(`push tree: file path ${JSON.stringify(entry.path)} given twice`);
        seen.add(relative);
        const file = path.join(tmp, relative);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        if ("content" in entry) fs.writeFileSync(file, entry.content);
        else fs.copyFileSync(entry.from, file);
      }
      fs.renameSync(tmp, target);
    } catch (err) {
      fs.rmSync(tmp, { recursive: true, force: true });
      // Another run of the same content got there first: its tree is the same.
      if (!fs.existsSync(target)) throw err;
    }
  }
  for (const other of fs.readdirSync(archive.absolute)) {
    if (other === name || (other.startsWith(PARTIAL) && !abandoned(other))) continue;
    fs.rmSync(path.join(archive.absolute, other), { recursive: true, force: true });
  }
  return archive;
}
