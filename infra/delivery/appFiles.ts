/** The Titan app as the web hosts receive it: app/ without its tests, benchmark and caches. */
import * as fs from "node:fs";
import * as path from "node:path";
import { projectRoot } from "../../templates/projectFiles";

const EXCLUDED = new Set(["tests", "bench", "__pycache__", ".pytest_cache", "pytest.ini"]);

/** Paths relative to app/, sorted, of every file a web host needs. */
export function appFiles(root: string = path.join(projectRoot(), "app")): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (EXCLUDED.has(entry.name) || entry.name.endsWith(".pyc")) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) found.push(path.relative(root, full));
    }
  };
  walk(root);
  return found.sort();
}
