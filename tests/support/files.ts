/** Finding the project's own files, the same on a developer's tree and in CI's fresh clone. */
import * as fs from "node:fs";
import * as path from "node:path";
import { projectRoot } from "../../templates/projectFiles";

export const ROOT = projectRoot();
const SKIP = new Set(["node_modules", "build", ".git", ".pulumi-state", ".titan-push", "__pycache__", ".pytest_cache"]);

export function walk(dir: string = ROOT): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...walk(full));
    else if (entry.isFile()) found.push(full);
  }
  return found;
}

/** Shell scripts by extension or by a sh/bash shebang. */
export function shellScripts(): string[] {
  return walk().filter((file) => {
    if (file.endsWith(".sh")) return true;
    const head = fs.readFileSync(file, { encoding: "utf8", flag: "r" }).slice(0, 64);
    return /^#!\s*(\/usr\/bin\/env\s+)?(\/bin\/|\/usr\/bin\/)?(ba)?sh\b/.test(head);
  });
}
