/**
 * The bootstrap script each host runs once from its user data: verified package sources,
 * pinned packages, users and directories, then the services enabled. It is idempotent, logs
 * every step to the console, and stops at the first error with the line that failed.
 * No secret and no other host's address ever appears here (docs/architecture.md decision 1).
 */
import { hasDataVolume, type DataVolumeRole, type Role } from "../../facts/topology";
import { LOKI_DATA_DIR, LOKI_SERVICE } from "../loki/config";
import { shellGlob, shellWord } from "../shell";
import {
  acceptedPins,
  checkAptRepository,
  GRAFANA_APT,
  VERSIONS,
  type AptRepository,
  type PinnedPackage,
} from "../../facts/versions";
import { TIMESYNCD_SERVICE } from "./baseline";
import { GRAFANA_SERVICE } from "./grafanaServer";
import { renderUnit } from "./systemd";
import { REMEDIATION_ETC_DIR, REMEDIATION_USER, servicesFor, TITAN_APP_DIR, TITAN_USER } from "./units";

export const BOOTSTRAP_PATH = "/usr/local/sbin/titan-bootstrap";
/** Written last: the configuration push waits for it (and for cloud-init) before copying files. */
export const BOOTSTRAP_DONE = "/var/lib/titan/bootstrap.done";

/** An EBS volume that outlives the host, mounted where the role keeps its state. */
export interface DataVolume {
  readonly volumeId: string;
  readonly mountPoint: string;
  /** Owner of the mounted tree once the package has created its user. */
  readonly owner: string;
}

/**
 * Where each stateful role keeps its data (the package's own state directory). Loki's is its
 * `common.path_prefix` (templates/loki/config.ts): WAL, TSDB index cache, compactor state.
 */
export const DATA_MOUNTS: Readonly<Record<DataVolumeRole, { mountPoint: string; owner: string }>> = {
  prometheus: { mountPoint: "/var/lib/prometheus", owner: "prometheus" },
  loki: { mountPoint: LOKI_DATA_DIR, owner: "loki" },
  grafana: { mountPoint: "/var/lib/grafana", owner: "grafana" },
};

/** The daemon that keeps its state on each role's data volume. */
export const DATA_DAEMONS: Readonly<Record<DataVolumeRole, string>> = {
  prometheus: "prometheus",
  loki: LOKI_SERVICE,
  grafana: GRAFANA_SERVICE,
};

export const dataMountDropInPath = (role: DataVolumeRole): string =>
  `/etc/systemd/system/${DATA_DAEMONS[role]}.service.d/data-volume.conf`;

/**
 * The data daemon needs its mount, and starts after it. The fstab line says `nofail` (a host
 * whose volume is late or lost must still boot and be reachable), and for such an entry
 * systemd's fstab generator neither orders the mount before local-fs.target nor makes it
 * required (systemd src/fstab-generator/fstab-generator.c add_mount: `Before=` only without
 * nofail, and a `.wants/` link instead of `.requires/`): on its own the daemon could start on the
 * root disk, and the mount would then hide what it wrote. RequiresMountsFor= adds After= and,
 * since the generated mount unit has a fragment, Requires= (src/core/unit.c
 * unit_add_mount_dependencies). Carried in user data, so it holds from the package's first start.
 */
export function renderDataMountDropIn(role: DataVolumeRole): string {
  return renderUnit({ Unit: { RequiresMountsFor: DATA_MOUNTS[role].mountPoint } });
}

/** Device names the attachment can show up as when there is no NVMe serial link (Xen). */
const FALLBACK_DEVICES = ["/dev/xvdf", "/dev/sdf"];

export interface BootstrapPlan {
  readonly role: Role;
  readonly dataVolume?: DataVolume;
  /** Pinned packages: installed at exactly their pinned version, then checked. */
  readonly pinned: readonly PinnedPackage[];
  /** Unpinned Debian packages the role needs (libraries, tools). */
  readonly extras: readonly string[];
  readonly services: readonly string[];
  /**
   * Where the vendor-origin pinned packages come from; present exactly when the role installs
   * one, so a role with Debian packages only never depends on it.
   */
  readonly vendorRepository?: AptRepository;
}

// systemd-timesyncd is the Debian 12 EC2 image's own time daemon (templates/host/baseline.ts):
// listed so a host keeps time even on an image built without it.
const BASE_EXTRAS = ["ca-certificates", "curl", "gnupg", TIMESYNCD_SERVICE];

export function bootstrapPlan(
  role: Role,
  dataVolumeId?: string,
  vendorRepository: AptRepository = GRAFANA_APT,
): BootstrapPlan {
  const mount = hasDataVolume(role) ? DATA_MOUNTS[role] : undefined;
  if (mount && !dataVolumeId) throw new Error(`the ${role} role keeps its data on a volume: pass its id`);
  if (!mount && dataVolumeId) throw new Error(`the ${role} role has no data volume`);
  const pinned: Record<Role, PinnedPackage[]> = {
    web: [VERSIONS.alloy, VERSIONS.nodeExporter],
    prometheus: [VERSIONS.prometheus, VERSIONS.nodeExporter],
    loki: [VERSIONS.loki, VERSIONS.nodeExporter],
    grafana: [VERSIONS.grafana, VERSIONS.nodeExporter],
  };
  const extras: Record<Role, string[]> = {
    // The same Debian packages the app's tests run against on the build machine.
    // polkitd and dbus: the remediation agent restarts the app through systemd's D-Bus API, which
    // asks polkit (templates/host/remediation.ts holds the rule).
    web: ["python3-flask", "python3-prometheus-client", "gunicorn", "logrotate", "polkitd", "dbus"],
    prometheus: [],
    loki: [],
    grafana: [],
  };
  const needsVendor = pinned[role].some((p) => p.origin === "grafana");
  if (needsVendor) checkAptRepository(vendorRepository);
  return {
    role,
    dataVolume: mount && dataVolumeId ? { volumeId: dataVolumeId, ...mount } : undefined,
    pinned: pinned[role],
    extras: [...BASE_EXTRAS, ...extras[role]],
    services: servicesFor(role),
    ...(needsVendor ? { vendorRepository } : {}),
  };
}

function installSpec(p: PinnedPackage): string {
  // Grafana's repository keeps every version: ask for it exactly. Debian's archive keeps only
  // the current revision, which the preferences glob selects; so do the preferences for a
  // package that takes security re-issues (the highest of the versions they accept).
  return p.origin === "grafana" && !p.securityReissues
    ? `${shellWord(p.package)}=${shellWord(p.aptPin)}`
    : shellWord(p.package);
}

/**
 * Services enabled here but started only by the configuration push, once their settings and
 * secrets exist: Grafana creates its admin from whatever settings it sees first, and Loki would
 * otherwise run on the package's example config (units.ts, LOKI_DROP_IN). Both units carry a
 * condition only the push satisfies; the push checks that each one answers after its start.
 */
export const STARTED_BY_PUSH: readonly string[] = [GRAFANA_SERVICE, LOKI_SERVICE];

function startLines(services: readonly string[]): string[] {
  const now = services.filter((s) => !STARTED_BY_PUSH.includes(s));
  const later = services.filter((s) => STARTED_BY_PUSH.includes(s));
  return [
    ...(now.length > 0 ? [`systemctl restart ${now.map(shellWord).join(" ")}`] : []),
    ...(later.length > 0
      ? [`log "${later.map(shellWord).join(" ")}: enabled, started by the configuration push"`]
      : []),
  ];
}

export function renderBootstrapScript(plan: BootstrapPlan): string {
  const needsGrafanaRepo = plan.pinned.some((p) => p.origin === "grafana");
  const repo = plan.vendorRepository;
  if (needsGrafanaRepo && !repo) throw new Error(`the ${plan.role} plan pins vendor packages but names no repository`);
  const volume = plan.dataVolume;
  if (volume && !/^vol-[0-9a-f]{8,17}$/.test(volume.volumeId))
    throw new Error(`not an EBS volume id: ${volume.volumeId}`);
  const lines: string[] = [
    "#!/bin/bash",
    `# Bootstrap of a ${plan.role} host, rendered by templates/host/bootstrap.ts.`,
    "set -Eeuo pipefail",
    "export DEBIAN_FRONTEND=noninteractive",
    "",
    'log() { printf "titan-bootstrap: %s\\n" "$*"; }',
    "trap 'log \"FAILED at line ${LINENO} (exit $?)\"' ERR",
    "",
    "# apt may race unattended-upgrades on a fresh boot: retry with backoff.",
    "retry() {",
    "  local attempt",
    "  for attempt in 1 2 3 4 5; do",
    '    "$@" && return 0',
    '    log "attempt ${attempt} of: $* failed; retrying"',
    "    sleep $((attempt * 10))",
    "  done",
    "  return 1",
    "}",
    "",
    ...(volume ? dataVolumeLines(volume) : []),
    'log "refreshing Debian package lists"',
    "retry apt-get update -q",
    `retry apt-get install -y -q --no-install-recommends ${plan.extras.map(shellWord).join(" ")}`,
  ];
  if (needsGrafanaRepo && repo) {
    checkAptRepository(repo);
    // Grafana's own keeps the words it always had (the default user data must not change).
    const own = repo.uri === GRAFANA_APT.uri;
    lines.push(
      "",
      own
        ? "# Grafana's APT key, accepted only with the pinned fingerprint."
        : `# The APT key of ${shellWord(repo.uri)} (a mirror of Grafana's repository), accepted only with the configured fingerprint.`,
      `keyring=${shellWord(repo.keyringPath)}`,
      'if [[ ! -s "$keyring" ]]; then',
      own ? '  log "fetching Grafana\'s APT signing key"' : `  log "fetching the vendor mirror's APT signing key"`,
      "  key=$(mktemp)",
      `  retry curl -fsSL --max-time 60 -o "$key" ${shellWord(repo.keyUrl)}`,
      '  fingerprint=$(gpg --batch --show-keys --with-colons "$key" | awk -F: \'$1 == "fpr" { print $10; exit }\')',
      `  if [[ "$fingerprint" != "${shellWord(repo.keyFingerprint)}" ]]; then`,
      `    log "${own ? "Grafana" : "vendor mirror"} APT key has fingerprint '\${fingerprint}', expected ${shellWord(repo.keyFingerprint)}: refusing it"`,
      "    exit 1",
      "  fi",
      `  install -d -m 0755 "$(dirname "$keyring")"`,
      '  gpg --batch --yes --dearmor -o "$keyring" "$key"',
      '  chmod 0644 "$keyring"',
      '  rm -f "$key"',
      "fi",
      `echo "deb [signed-by=$keyring] ${shellWord(repo.uri)} ${shellWord(repo.suite)} ${repo.components.map(shellWord).join(" ")}" >/etc/apt/sources.list.d/grafana.list`,
      "retry apt-get update -q",
    );
  }
  lines.push(
    "",
    'log "installing pinned packages"',
    `retry apt-get install -y -q --no-install-recommends ${plan.pinned.map(installSpec).join(" ")}`,
    "# The pins in /etc/apt/preferences.d must have won: check every installed version.",
    "check_version() { # package, then every version glob it may be at",
    "  local installed pin",
    "  installed=$(dpkg-query -W -f='${Version}' \"$1\")",
    '  for pin in "${@:2}"; do',
    "    # shellcheck disable=SC2053 # the pin is a glob on purpose",
    '    if [[ "$installed" == $pin ]]; then log "$1 $installed"; return 0; fi',
    "  done",
    '  log "$1 is $installed, pinned ${*:2}"',
    "  exit 1",
    "}",
    ...plan.pinned.map(
      (p) =>
        `check_version ${shellWord(p.package)} ${acceptedPins(p)
          .map((g) => `'${shellGlob(g)}'`)
          .join(" ")}`,
    ),
  );
  if (plan.role === "web") {
    lines.push(
      "",
      "# The app's user; Alloy joins its group to read /var/log/titan and nothing else.",
      `id -u ${TITAN_USER} >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/titan --shell /usr/sbin/nologin ${TITAN_USER}`,
      `usermod -a -G ${TITAN_USER} alloy`,
      `install -d -m 0755 -o root -g root ${shellWord(TITAN_APP_DIR)}`,
      "# The remediation agent's user: no login, no home; polkit lets it restart the app, nothing more.",
      `id -u ${REMEDIATION_USER} >/dev/null 2>&1 || useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ${REMEDIATION_USER}`,
      // Its settings and secret arrive with the push; only root reads the secret.
      `install -d -m 0755 -o root -g root ${shellWord(REMEDIATION_ETC_DIR)}`,
    );
  }
  if (plan.role === "loki") {
    lines.push(
      "",
      "# Loki's package makes a system user in nogroup: give it a group for its config, and its data dir.",
      "getent group loki >/dev/null || groupadd --system loki",
      "usermod -g loki loki",
      "install -d -m 0750 -o loki -g loki /var/lib/loki",
    );
  }
  if (volume) {
    lines.push(
      "",
      "# The package created its user now: hand it the volume (uids differ between hosts).",
      `chown -R ${shellWord(volume.owner)}:${shellWord(volume.owner)} ${shellWord(volume.mountPoint)}`,
    );
  }
  lines.push(
    "",
    'log "enabling services"',
    "systemctl daemon-reload",
    `systemctl enable ${plan.services.map(shellWord).join(" ")}`,
    ...startLines(plan.services),
    "",
    "# Time from the Amazon Time Sync Service, and sshd's drop-in (both written by cloud-init) in force.",
    `systemctl enable ${TIMESYNCD_SERVICE}`,
    `systemctl restart ${TIMESYNCD_SERVICE}`,
    "sshd -t",
    "systemctl try-reload-or-restart ssh",
    "",
    `install -d -m 0755 "$(dirname ${shellWord(BOOTSTRAP_DONE)})"`,
    `date --utc +%FT%TZ >${shellWord(BOOTSTRAP_DONE)}`,
    'log "done"',
  );
  return `${lines.join("\n")}\n`;
}

/**
 * Waits for the data volume (attached after the instance starts), formats it only when it has
 * no filesystem, and mounts it by UUID before any package writes to the mount point.
 */
function dataVolumeLines(volume: DataVolume): string[] {
  // On Nitro instances the NVMe serial is the volume id without its dash.
  const byId = `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${shellWord(volume.volumeId.replace("-", ""))}`;
  return [
    `log "waiting for data volume ${shellWord(volume.volumeId)}"`,
    "device=",
    "for _ in $(seq 1 90); do",
    `  for candidate in ${byId} ${FALLBACK_DEVICES.join(" ")}; do`,
    '    if [[ -b "$candidate" ]]; then device=$(readlink -f "$candidate"); break 2; fi',
    "  done",
    "  sleep 2",
    "done",
    `if [[ -z "$device" ]]; then log "data volume ${shellWord(volume.volumeId)} never appeared"; exit 1; fi`,
    'if ! blkid "$device" >/dev/null 2>&1; then',
    '  log "formatting blank data volume $device"',
    '  mkfs.ext4 -q -L titan-data "$device"',
    "fi",
    'uuid=$(blkid -s UUID -o value "$device")',
    `install -d -m 0755 ${shellWord(volume.mountPoint)}`,
    `grep -q "^UUID=$uuid " /etc/fstab || echo "UUID=$uuid ${shellWord(volume.mountPoint)} ext4 defaults,nofail 0 2" >>/etc/fstab`,
    `mountpoint -q ${shellWord(volume.mountPoint)} || mount ${shellWord(volume.mountPoint)}`,
    `log "data volume $device mounted on ${shellWord(volume.mountPoint)}"`,
    "",
  ];
}
