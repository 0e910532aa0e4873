/** The apt preferences file that pins every package of the versions table, and the vendor source line. */
import {
  acceptedPins,
  checkAptRepository,
  GRAFANA_APT,
  VERSIONS,
  type AptRepository,
  type PinnedPackage,
} from "../../facts/versions";

/** Where the preferences file goes; any name under preferences.d works, this one says what it is. */
export const APT_PREFERENCES_PATH = "/etc/apt/preferences.d/titan-pins";

/**
 * apt_preferences(5) stanzas pinning every package of the table. Priority 1001 makes apt
 * install (and downgrade to) exactly the pinned version, and never move past it on upgrade.
 */
export function renderAptPreferences(
  packages: readonly PinnedPackage[] = Object.values(VERSIONS),
  vendor: AptRepository = GRAFANA_APT,
): string {
  checkAptRepository(vendor);
  // One stanza per accepted version glob (facts/versions.ts acceptedPins), all at 1001: among
  // the versions they match apt installs the highest, so a security re-issue wins over the
  // plain patch. A glob with `*?[` is matched with fnmatch(3) (apt-pkg/versionmatch.cc).
  const stanzas = packages.flatMap((p) => {
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(p.package)) throw new Error(`not a Debian package name: ${p.package}`);
    const from = p.origin === "grafana" ? `${vendor.uri} (${vendor.suite})` : "Debian 12 (bookworm)";
    return acceptedPins(p).map((pin, i) => {
      if (!/^[0-9A-Za-z.+~:*[\]-]+$/.test(pin)) throw new Error(`not an apt version pin: ${pin}`);
      return [
        `Explanation: ${p.package} ${p.version}${i > 0 ? " (security re-issue)" : ""} from ${from}`,
        `Package: ${p.package}`,
        `Pin: version ${pin}`,
        "Pin-Priority: 1001",
      ].join("\n");
    });
  });
  return `${stanzas.join("\n\n")}\n`;
}

/** One-line deb822-free sources entry for the vendor repository, signed by the pinned key only. */
export function grafanaSourcesLine(repo: AptRepository = GRAFANA_APT): string {
  checkAptRepository(repo);
  return `deb [signed-by=${repo.keyringPath}] ${repo.uri} ${repo.suite} ${repo.components.join(" ")}\n`;
}
