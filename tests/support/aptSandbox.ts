/**
 * A private apt root under `dir`: its own state, cache, sources and preferences, an empty
 * dpkg status, so real apt-get and apt-cache can be asked what they would install without
 * touching the machine's apt. `opts` are the `-o` arguments that point apt at it.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export interface AptSandbox {
  readonly root: string;
  readonly opts: readonly string[];
}

export function aptSandbox(dir: string): AptSandbox {
  const root = path.join(dir, "apt");
  for (const d of [
    "state/lists/partial",
    "cache/archives/partial",
    "etc/apt.conf.d",
    "etc/preferences.d",
    "etc/sources.list.d",
  ])
    fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.writeFileSync(path.join(root, "status"), "");
  const opts = [
    `Dir::State=${root}/state`,
    `Dir::State::status=${root}/status`,
    `Dir::Cache=${root}/cache`,
    `Dir::Etc=${root}/etc`,
    `Dir::Etc::SourceList=${root}/etc/sources.list`,
    `Dir::Etc::SourceParts=${root}/etc/sources.list.d`,
    `Dir::Etc::Parts=${root}/etc/apt.conf.d`,
    `Dir::Etc::PreferencesParts=${root}/etc/preferences.d`,
    "APT::Sandbox::User=root",
  ].flatMap((o) => ["-o", o]);
  return { root, opts };
}
