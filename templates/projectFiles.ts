/** Files of this repository that templates ship as they are (the app, its logrotate policy). */
import * as fs from "node:fs";
import * as path from "node:path";

/** The checkout's root: the nearest directory above this module holding Pulumi.yaml. */
export function projectRoot(start: string = __dirname): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "Pulumi.yaml"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no Pulumi.yaml above ${start}`);
  }
}

export const readProjectFile = (relative: string): string =>
  fs.readFileSync(path.join(projectRoot(), relative), "utf8");
