/**
 * The fleet's Debian 12 base image, close to the AMI the program boots: debootstrap's
 * required+important set, then cloud-init, OpenSSH, sudo and what the bootstrap calls
 * (templates/host/bootstrap.ts: curl, gpg, blkid, mkfs.ext4, systemctl), with login user
 * `admin` made by cloud-init from its NoCloud seed. Built once per distinct input and kept
 * under CACHE_DIR/images/<key>; every download goes through the run's apt-cacher-ng.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { run } from "./exec";
import {
  BRIDGE_ADDRESS,
  APT_PROXY_PORT,
  CACHE_DIR,
  DEBIAN_MIRROR,
  DEBIAN_SECURITY,
  DEBIAN_SUITE,
  LOGIN_USER,
} from "./layout";

/** Bump when the build steps below change in a way the inputs do not show. */
const BUILD_VERSION = 3;

/**
 * Fleet-only (the base image, never production code): a stand-in for systemd-fstab-generator's
 * device entries. The bootstrap writes `UUID=... <mount point> ext4 defaults,nofail 0 2` to
 * /etc/fstab, which on EC2 systemd-fstab-generator turns into a mount unit. In a container it
 * does not: systemd v252's src/fstab-generator/fstab-generator.c parse_fstab() skips every
 * entry whose source is a device path (UUID= becomes /dev/disk/by-uuid/...) when /sys is
 * read-only, which systemd-nspawn makes it (`if (is_device_path(what) &&
 * path_is_read_only_fs("/sys") > 0) { log_info("Running in a container, ignoring fstab device
 * entry for %s.", what); continue; }`; the same string is in Debian 12's 252.39 binary).
 *
 * This generator writes, for each ext4 UUID= entry, the mount unit the real one writes
 * (add_mount: `Before=local-fs.target` and a `local-fs.target.requires/` link, or for
 * `nofail` no ordering at all and a `.wants/` link), so a `nofail` mount here is as weakly
 * ordered as on EC2 and a daemon that does not require its mount can start before it. Device
 * units do not exist in a container (no udev), so where systemd would wait for the device
 * (DefaultDeviceTimeoutSec, 90 s) a oneshot waits for a block device that carries the UUID;
 * the reboot fault (faults.ts) attaches the volume late, as EC2 may, to make the race real.
 */
export const FSTAB_GENERATOR = "/etc/systemd/system-generators/titan-fleet-fstab";
export const DEVICE_WAIT = "/usr/local/lib/titan-fleet/wait-device";

export const fstabGenerator = (): string =>
  [
    "#!/bin/sh",
    "# Fleet stand-in for systemd-fstab-generator's device entries (tests/fleet/baseImage.ts).",
    "set -eu",
    'dest="$1"',
    'fstab="${TITAN_FLEET_FSTAB:-/etc/fstab}"',
    '[ -r "$fstab" ] || exit 0',
    "while read -r what where type opts _; do",
    '  case "$what" in UUID=*) uuid="${what#UUID=}" ;; *) continue ;; esac',
    '  [ "$type" = ext4 ] || continue',
    '  unit=$(/usr/bin/systemd-escape --path --suffix=mount "$where")',
    '  wait="titan-fleet-device-${uuid}.service"',
    '  nofail=""',
    '  case ",$opts," in *,nofail,*) nofail=1 ;; esac',
    "  {",
    '    echo "[Unit]"',
    '    echo "Description=Fleet stand-in for the device of UUID=$uuid (no udev here)"',
    '    echo "DefaultDependencies=no"',
    '    echo "[Service]"',
    '    echo "Type=oneshot"',
    '    echo "RemainAfterExit=yes"',
    '    echo "TimeoutStartSec=90"',
    `    echo "ExecStart=${DEVICE_WAIT} $uuid"`,
    '  } >"$dest/$wait"',
    "  {",
    '    echo "# Written by the fleet stand-in for systemd-fstab-generator"',
    '    echo "[Unit]"',
    '    echo "SourcePath=/etc/fstab"',
    '    if [ -z "$nofail" ]; then echo "Before=local-fs.target"; fi',
    '    echo "Requires=$wait"',
    '    echo "After=$wait"',
    '    echo "[Mount]"',
    '    echo "What=/dev/disk/by-uuid/$uuid"',
    '    echo "Where=$where"',
    '    echo "Type=ext4"',
    '    echo "Options=$opts"',
    '  } >"$dest/$unit"',
    '  if [ -n "$nofail" ]; then link=local-fs.target.wants; else link=local-fs.target.requires; fi',
    '  mkdir -p "$dest/$link"',
    '  ln -sf "../$unit" "$dest/$link/$unit"',
    'done <"$fstab"',
    "",
  ].join("\n");

/** Waits until a block device carries the filesystem UUID $1 (probing, not trusting links). */
export const deviceWait = (): string =>
  [
    "#!/bin/sh",
    "# Fleet stand-in for waiting on a device unit (tests/fleet/baseImage.ts).",
    "set -u",
    "while :; do",
    "  for dev in /dev/loop*; do",
    '    [ -b "$dev" ] || continue',
    '    if [ "$(blkid -p -s UUID -o value "$dev" 2>/dev/null)" = "$1" ]; then exit 0; fi',
    "  done",
    "  sleep 0.2",
    "done",
    "",
  ].join("\n");

/** The system locale, as Debian's cloud images set it. */
export const LOCALE_FILE = "/etc/default/locale";

/** Image files that must be executable. */
const EXECUTABLES = new Set([FSTAB_GENERATOR, DEVICE_WAIT]);

/** Installed with apt after debootstrap (its own resolver cannot handle virtual packages). */
export const IMAGE_PACKAGES: readonly string[] = [
  "systemd",
  "systemd-sysv",
  "dbus",
  "cloud-init",
  "openssh-server",
  "sudo",
  "iproute2",
  "ca-certificates",
  "curl",
  "gnupg",
  // Called by the bootstrap; listed although debootstrap's base already has them.
  "util-linux",
  "e2fsprogs",
  "procps",
];

/** Configuration files written into the image: path inside the image -> content. */
export function imageFiles(): Record<string, string> {
  const proxy = `http://${BRIDGE_ADDRESS}:${APT_PROXY_PORT}`;
  return {
    "/etc/apt/sources.list": [
      `deb ${DEBIAN_MIRROR} ${DEBIAN_SUITE} main`,
      `deb ${DEBIAN_MIRROR} ${DEBIAN_SUITE}-updates main`,
      `deb ${DEBIAN_SECURITY} ${DEBIAN_SUITE}-security main`,
      "",
    ].join("\n"),
    // The one difference from the AMI apt sees: Debian's archive through the fleet's cache.
    "/etc/apt/apt.conf.d/00titan-fleet-proxy": `Acquire::http::Proxy "${proxy}";\n`,
    // Like the AMI (which lists Ec2): one datasource, so ds-identify needs no probing.
    "/etc/cloud/cloud.cfg.d/01_titan_fleet.cfg": [
      "datasource_list: [ NoCloud, None ]",
      // The hostname resolves (sudo asks for it); EC2 gets the same from its VPC resolver.
      "manage_etc_hosts: true",
      "system_info:",
      "  default_user:",
      `    name: ${LOGIN_USER}`,
      "    lock_passwd: true",
      "    gecos: Debian",
      "    groups: [adm, sudo]",
      '    sudo: ["ALL=(ALL) NOPASSWD:ALL"]',
      "    shell: /bin/bash",
      "",
    ].join("\n"),
    // As the Debian 12 AMI ships it: debian-cloud-images writes this file into every image
    // (config_space/12/files/etc/default/locale/DEBIAN, checked by its
    // system_tests/image/test_etc.py) and sets no `locale` for cloud-init. cloud-init 22.4's
    // cc_locale then takes the system's locale (distros/debian.py get_locale reads this file)
    // and, as it equals what is set, changes nothing; no locale override here.
    [LOCALE_FILE]: "LANG=C.UTF-8\n",
    [FSTAB_GENERATOR]: fstabGenerator(),
    [DEVICE_WAIT]: deviceWait(),
    // Empty: systemd makes a new id at each container's first boot.
    "/etc/machine-id": "",
  };
}

export interface ImageInputs {
  readonly suite: string;
  readonly mirror: string;
  readonly packages: readonly string[];
  readonly files: Record<string, string>;
  readonly buildVersion: number;
}

export const imageInputs = (): ImageInputs => ({
  suite: DEBIAN_SUITE,
  mirror: DEBIAN_MIRROR,
  packages: IMAGE_PACKAGES,
  files: imageFiles(),
  buildVersion: BUILD_VERSION,
});

/** The cache key: any change of package list, configuration or build steps makes a new image. */
export const imageKey = (inputs: ImageInputs): string =>
  createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 16);

export interface BaseImage {
  readonly key: string;
  readonly rootfs: string;
  /** True when this call built it, false when it came from the cache. */
  readonly built: boolean;
}

const COMPLETE = "complete";

/** Returns the cached image for these inputs, building it (through `proxyUrl`) if absent. */
export function ensureBaseImage(proxyUrl: string, log: (line: string) => void, inputs = imageInputs()): BaseImage {
  const key = imageKey(inputs);
  const dir = path.join(CACHE_DIR, "images", key);
  const rootfs = path.join(dir, "rootfs");
  if (fs.existsSync(path.join(dir, COMPLETE))) return { key, rootfs, built: false };
  const work = path.join(CACHE_DIR, "images", `.build-${key}-${process.pid}`);
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  try {
    build(path.join(work, "rootfs"), proxyUrl, inputs, log);
    fs.writeFileSync(path.join(work, "inputs.json"), `${JSON.stringify(inputs, null, 2)}\n`);
    fs.writeFileSync(path.join(work, COMPLETE), `${new Date().toISOString()}\n`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(work, dir);
  } catch (err) {
    fs.rmSync(work, { recursive: true, force: true });
    throw err;
  }
  return { key, rootfs, built: true };
}

function build(rootfs: string, proxyUrl: string, inputs: ImageInputs, log: (line: string) => void): void {
  const env = { ...process.env, http_proxy: proxyUrl, DEBIAN_FRONTEND: "noninteractive" };
  log(`image: debootstrap ${inputs.suite} into ${rootfs}`);
  run("/usr/sbin/debootstrap", [inputs.suite, rootfs, inputs.mirror], { env, timeoutMs: 30 * 60_000 });
  for (const [file, content] of Object.entries(inputs.files)) {
    const target = path.join(rootfs, file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, content, { mode: EXECUTABLES.has(file) ? 0o755 : 0o644 });
  }
  // No daemon may start inside the build chroot (invoke-rc.d honours policy-rc.d's 101).
  const policy = path.join(rootfs, "usr/sbin/policy-rc.d");
  fs.writeFileSync(policy, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  const apt = `apt-get -q -o Acquire::http::Proxy=${proxyUrl}`;
  const script = [
    "set -eu",
    `mount -t proc proc ${rootfs}/proc`,
    `chroot ${rootfs} ${apt} update`,
    `chroot ${rootfs} ${apt} install -y --no-install-recommends ${inputs.packages.join(" ")}`,
    `chroot ${rootfs} systemctl enable systemd-networkd`,
    `chroot ${rootfs} apt-get clean`,
    `umount ${rootfs}/proc`,
  ].join("\n");
  log("image: installing packages");
  // A private mount namespace: /proc goes away with the shell even if a step fails.
  run("/usr/bin/unshare", ["--mount", "--propagation", "private", "--fork", "/bin/sh", "-c", script], {
    env,
    timeoutMs: 30 * 60_000,
  });
  fs.rmSync(policy);
  // Per-instance state the AMI does not carry either: cloud-init makes host keys at first boot.
  for (const f of fs.readdirSync(path.join(rootfs, "etc/ssh"))) {
    if (f.startsWith("ssh_host_")) fs.rmSync(path.join(rootfs, "etc/ssh", f));
  }
  fs.rmSync(path.join(rootfs, "etc/hostname"), { force: true });
  fs.rmSync(path.join(rootfs, "var/lib/dbus/machine-id"), { force: true });
  fs.rmSync(path.join(rootfs, "var/lib/apt/lists"), { recursive: true, force: true });
  fs.mkdirSync(path.join(rootfs, "var/lib/apt/lists/partial"), { recursive: true });
}
