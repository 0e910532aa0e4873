/**
 * What reached each host is what the program declares: its NoCloud seed holds, byte for byte,
 * the user data of an independent run of the program (snapshotCli.ts) with the same
 * configuration; its push staged exactly the rendered tree, as pulumi-command's copy leaves it
 * (tests/support/providerCopy.ts replays it), with sftp-server's default modes.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { projectRoot } from "../../../templates/projectFiles";
import { providerCopy } from "../../support/providerCopy";
import { one, snapshot } from "../../support/snapshots";
import { sshRun, stagedOverride, type ProvisionedFleet, type ProvisionedHost } from "../provision";
import { SEED_DIR } from "../seed";
import { COPY_TO_REMOTE, FLEET_SECRET_KEYS, INSTANCE } from "../stackPlan";
import { checked, fail, type CheckResult } from "./result";

/** Each file of a tree as "relative-path sha256", sorted; directories as "relative-path/". */
export function localTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    for (const e of fs.readdirSync(abs)) {
      const p = path.join(abs, e);
      const r = rel ? `${rel}/${e}` : e;
      if (fs.statSync(p).isDirectory()) {
        out.push(`${r}/`);
        walk(p, r);
      } else out.push(`${r} ${createHash("sha256").update(fs.readFileSync(p)).digest("hex")}`);
    }
  };
  walk(dir, "");
  return out.sort();
}

/** Every host's seed user data against an independent run of the program. */
export async function userDataAsDeclared(pf: ProvisionedFleet): Promise<CheckResult[]> {
  const snap = await snapshot(pf.config, { replaceBase: true, stack: pf.plan.stack, secretKeys: FLEET_SECRET_KEYS });
  if (snap.error) return [fail("user data as the program declares", "fleet", snap.error)];
  return pf.hosts.map((h) => {
    const name = "boots with the stack's user data, byte for byte";
    const seeded = fs.readFileSync(path.join(h.container.root, SEED_DIR, "user-data"), "utf8");
    const declared = one(snap, INSTANCE, h.planned.name).inputs.userData;
    const ok = typeof declared === "string" && seeded === declared && h.planned.userData === declared;
    return {
      name,
      host: h.slot.name,
      ok,
      detail: ok ? `${seeded.length} bytes` : "the seed differs from the declared userData",
    };
  });
}

/** The staged tree on the host equals the rendered one as the provider copies it. */
export function stagedAsRendered(pf: ProvisionedFleet, h: ProvisionedHost): Promise<CheckResult> {
  return checked("its push staged exactly the rendered tree, as the provider copies it", h.slot.name, async () => {
    const copy = h.planned.pushes.find((p) => p.type === COPY_TO_REMOTE);
    if (copy?.type !== COPY_TO_REMOTE) return { ok: false, detail: "no copy in its push" };
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-staged-"));
    try {
      const remoteHome = path.join(home, "host", copy.remotePath);
      fs.mkdirSync(remoteHome, { recursive: true });
      providerCopy(copy.source.path, remoteHome, projectRoot());
      const staged = path.join(remoteHome, "titan-staging");
      // What the fleet changes in Prometheus' copy (provision.ts): the EC2 endpoint, and with
      // metricsStore=amp the relay's workspace URL.
      stagedOverride(pf, h.slot.role)?.(staged);
      const expected = localTree(staged);
      const listing = await sshRun(
        h,
        'cd ~/titan-staging && find . -mindepth 1 -type d -printf "%P/\\n" && find . -type f -printf "%P\\n" | while IFS= read -r f; do printf "%s %s\\n" "$f" "$(sha256sum < "$f" | cut -d" " -f1)"; done',
      );
      const got = listing.stdout.trim().split("\n").sort();
      // pkg/sftp sends no mode: files and directories get sftp-server's defaults under its umask.
      const modes = await sshRun(h, 'cd ~/titan-staging && find . -mindepth 1 -printf "%y %m\\n" | sort -u');
      const modeList = modes.stdout.trim().split("\n");
      const missing = expected.filter((e) => !got.includes(e));
      const extra = got.filter((g) => !expected.includes(g));
      const ok =
        listing.status === 0 &&
        missing.length === 0 &&
        extra.length === 0 &&
        JSON.stringify(modeList) === JSON.stringify(["d 755", "f 644"]);
      return {
        ok,
        detail: ok
          ? `${expected.length} entries, modes ${modeList.join(", ")}`
          : `missing: ${missing.slice(0, 3).join(" ") || "-"}; extra: ${extra.slice(0, 3).join(" ") || "-"}; modes ${modeList.join(", ")}`,
      };
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
}
