/**
 * What pulumi-command's CopyToRemote does with a path-based source, replayed on the local
 * filesystem (a temp directory stands in for the host). Encoded from pulumi/pulumi-command
 * v1.2.1 provider/pkg/provider/remote/copyController.go (sftpCopy, copyDir, copyFile):
 *
 * - A directory source: a missing remotePath is created with its parents. Without a trailing
 *   slash the directory itself is copied into remotePath/<basename> (created if missing, an
 *   error if it exists as a file); with one, its entries are copied into remotePath.
 * - The walk creates each missing directory and overwrites each file; it never removes what
 *   is already there, and keeps no mode (SFTP creates files with the server's defaults).
 * - A file source: into remotePath/<basename> when remotePath is a directory; otherwise to
 *   remotePath itself, parents created.
 */
import * as fs from "node:fs";
import * as path from "node:path";

const statOrUndefined = (p: string) => (fs.existsSync(p) ? fs.statSync(p) : undefined);

function copyDir(src: string, dst: string): void {
  const walk = (rel: string) => {
    const target = path.join(dst, rel);
    const existing = statOrUndefined(target);
    if (!existing) fs.mkdirSync(target);
    else if (!existing.isDirectory()) throw new Error(`remote path ${target} exists but is not a directory`);
    for (const entry of fs.readdirSync(path.join(src, rel), { withFileTypes: true })) {
      const child = path.join(rel, entry.name);
      if (entry.isDirectory()) walk(child);
      else fs.copyFileSync(path.join(src, child), path.join(dst, child));
    }
  };
  walk("");
}

/** Copies `source` (a path as the archive holds it, relative to `cwd`) to `remotePath` on the "host". */
export function providerCopy(source: string, remotePath: string, cwd: string): void {
  const src = path.resolve(cwd, source);
  const info = fs.statSync(src);
  const destStat = statOrUndefined(remotePath);
  if (info.isDirectory()) {
    if (!destStat) fs.mkdirSync(remotePath, { recursive: true });
    let dest = remotePath;
    if (!source.endsWith("/")) {
      dest = path.join(remotePath, path.basename(source));
      const inner = statOrUndefined(dest);
      if (inner && !inner.isDirectory()) throw new Error(`remote path ${dest} exists but is not a directory`);
      if (!inner) fs.mkdirSync(dest);
    }
    copyDir(src, dest);
    return;
  }
  let dest = remotePath;
  if (destStat?.isDirectory()) dest = path.join(remotePath, path.basename(source));
  else if (!destStat) fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(src, dest);
}
