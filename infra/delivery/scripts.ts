/**
 * The shell the configuration push runs on a host: wait until the host is ready, then install
 * staged files with their owner and mode and restart or reload only the services whose files
 * changed. Rendered here so shellcheck sees exactly what runs (tests/delivery.test.ts).
 */
import { shellWord } from "../../templates/shell";
import type { RenderedFile } from "../../templates/types";
import { BOOTSTRAP_DONE } from "../../templates/host/bootstrap";

/**
 * Staging in the SSH user's home: CopyToRemote writes over SFTP as that user. Each push stages
 * into a fresh subdirectory named by its content digest, because CopyToRemote copies *into* a
 * remote path that already exists rather than over it. The push sends a local directory named
 * STAGING_DIRNAME to stagingParent (infra/delivery/pushTree.ts), so both names live here.
 */
export const STAGING_DIRNAME = "titan-staging";
export const stagingParent = (user: string) => `/home/${user}`;
export const stagingRoot = (user: string) => `${stagingParent(user)}/${STAGING_DIRNAME}`;
/** The staging subdirectory's name for a content digest. */
export const stagingName = (contentDigest: string) => contentDigest.slice(0, 16);
export const stagingDir = (user: string, contentDigest: string) => `${stagingRoot(user)}/${stagingName(contentDigest)}`;

/**
 * Grows the ext4 filesystem mounted at `mountPoint` to its device's size, so a larger data
 * volume is used in full; resize2fs grows a mounted ext4 online and does nothing when the
 * filesystem already fills the device, so this runs on every push.
 */
export function growFilesystemLines(mountPoint: string): string[] {
  return [
    `data_mount=${shellWord(mountPoint)}`,
    'dev=$(findmnt -n -o SOURCE --mountpoint "$data_mount") || { echo "nothing is mounted at $data_mount" >&2; exit 1; }',
    'if ! grown=$(sudo resize2fs "$dev" 2>&1); then echo "$grown" >&2; exit 1; fi',
    'case "$grown" in *"Nothing to do"*) ;; *) echo "grew the filesystem on $dev" ;; esac',
  ];
}

/**
 * Waits for cloud-init and the bootstrap. `cloud-init status --wait` exits 2 for "recoverable
 * errors" (deprecated keys and the like): that is tolerated; anything else fails with the log.
 */
export function waitReadyScript(stagingRootDir: string): string {
  return [
    "set -u",
    `mkdir -p ${shellWord(stagingRootDir)}`,
    "rc=0",
    "cloud-init status --wait >/dev/null || rc=$?",
    'if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then',
    '  echo "cloud-init failed (exit $rc); the end of its log:" >&2',
    "  sudo tail -n 40 /var/log/cloud-init-output.log >&2",
    "  exit 1",
    "fi",
    `if [ ! -f ${shellWord(BOOTSTRAP_DONE)} ]; then`,
    '  echo "the bootstrap did not finish; the end of its log:" >&2',
    "  sudo tail -n 40 /var/log/cloud-init-output.log >&2",
    "  exit 1",
    "fi",
    'echo "ready"',
  ].join("\n");
}

/** What to do with a service after its files change. */
export interface ServiceAction {
  readonly service: string;
  readonly action: "restart" | "reload";
}

export interface InstallPlan {
  readonly staging: string;
  /** Files as rendered: the staged copy is at staging + path. */
  readonly files: readonly RenderedFile[];
  /** Which service each changed file concerns (matched by path prefix). */
  readonly actions: readonly { readonly prefix: string; readonly then: ServiceAction }[];
  /** Directories whose files are exactly the rendered ones: stale files are removed. */
  readonly owned?: readonly string[];
  /** Extra lines run after the files are in place (secrets from stdin, app sync). */
  readonly extra?: readonly string[];
  /** Lines run last, once the services have restarted. */
  readonly post?: readonly string[];
  /** Mount point of the role's data volume: its filesystem is grown to the volume's size first. */
  readonly growMount?: string;
}

export function installScript(plan: InstallPlan): string {
  const lines = [
    "set -eu",
    `staging=${shellWord(plan.staging)}`,
    "changed=''",
    // A push that stopped after placing files (a failed restart, Grafana not answering in time,
    // a dropped session) is run again by the next `up`, but its files then compare equal and
    // nothing would restart: what it had changed is kept beside the staging directories until a
    // run completes, and the next run starts from it.
    'pending="$(dirname "$staging")/.push-pending"',
    'if [ -s "$pending" ]; then changed=$(cat "$pending"); fi',
    'keep_pending() { if [ -n "$changed" ]; then printf \'%s\' "$changed" >"$pending"; fi; }',
    "trap keep_pending EXIT",
    "place() { # staged-path target owner group mode",
    '  if ! sudo cmp -s "$1" "$2"; then',
    '    sudo install -D -o "$3" -g "$4" -m "$5" "$1" "$2"',
    '    changed="$changed $2"',
    "  fi",
    "}",
    ...(plan.growMount ? growFilesystemLines(plan.growMount) : []),
  ];
  for (const f of plan.files) {
    const mode = f.mode.toString(8).padStart(4, "0");
    lines.push(
      `place "$staging${shellWord(f.path)}" ${shellWord(f.path)} ${shellWord(f.owner)} ${shellWord(f.group)} ${mode}`,
    );
  }
  for (const dir of plan.owned ?? []) {
    const keep = plan.files.filter((f) => f.path.startsWith(`${dir}/`)).map((f) => shellWord(f.path));
    lines.push(
      `keep=" ${keep.join(" ")} "`,
      `for old in $(sudo find ${shellWord(dir)} -type f 2>/dev/null); do`,
      '  case "$keep" in *" $old "*) ;; *) sudo rm -f "$old"; changed="$changed $old" ;; esac',
      "done",
    );
  }
  lines.push(...(plan.extra ?? []));
  // Recorded before anything restarts: a session cut short runs no EXIT trap.
  lines.push("keep_pending");
  lines.push('case "$changed" in *" /etc/systemd/"*) sudo systemctl daemon-reload ;; esac');
  for (const { prefix, then } of plan.actions) {
    lines.push(
      `case "$changed" in *" ${shellWord(prefix)}"*) sudo systemctl ${then.action} ${shellWord(then.service)}; echo "${then.action}ed ${shellWord(then.service)}" ;; esac`,
    );
  }
  lines.push(...(plan.post ?? []));
  lines.push("trap - EXIT", 'rm -f "$pending"');
  // Earlier pushes' staging directories are done with.
  lines.push(
    'root=$(dirname "$staging")',
    'case "$root" in */titan-staging) find "$root" -mindepth 1 -maxdepth 1 ! -path "$staging" -exec rm -rf {} + ;; esac',
  );
  lines.push('echo "installed:${changed:- nothing changed}"');
  return lines.join("\n");
}
