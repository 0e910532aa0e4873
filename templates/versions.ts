/**
 * The one table of versions the hosts install (DESIGN.md decision 4 and 6), plus the apt
 * preferences file that pins them and the container tags CI validates the configs with.
 *
 * Grafana, Loki and Alloy come from Grafana's APT repository; Prometheus and node_exporter
 * from Debian 12's own archive, the same packages the tests on the build machine run against.
 * Debian replaces package revisions with security updates (`+deb12u1`, ...), so those two
 * are pinned by upstream version with a glob; Grafana's repository never re-issues a version,
 * so those three are pinned exactly.
 *
 * Evidence for each choice (searched public material; re-check before bumping):
 * - Grafana 12.4.3: installed as `grafana=12.4.3` from apt.grafana.com in several public
 *   install guides; 12.4 is the last minor of the 12 line (longest support window).
 * - Loki 3.7.7: grafana/loki CHANGELOG (release-3.7.x, 2026-08-27); 3.7.5 restored the
 *   deb/rpm builds that 3.5.4-3.5.x and 3.7.3-3.7.4 first lacked (grafana/loki#19404,
 *   #22851, #23341). 3.7.x still defaults to the legacy object-store clients: Thanos became
 *   the default only on main (grafana/loki#22676, after the 3.7 branch).
 * - Alloy 1.19.2 (package revision -1): GitHub release v1.19.2; `grafana/alloy:v1.19.2`
 *   is used with `alloy validate` in public CI; `alloy validate` exists since before v1.12.
 */

/** Grafana's APT repository (https://apt.grafana.com, suite `stable`, component `main`). */
export interface AptRepository {
  readonly name: string;
  readonly uri: string;
  readonly suite: string;
  readonly components: readonly string[];
  readonly keyUrl: string;
  /** Full OpenPGP fingerprint of the key that signs the repository, 40 hex digits. */
  readonly keyFingerprint: string;
  /** Where the (dearmored) key lands; referenced by `signed-by=` in the source. */
  readonly keyringPath: string;
}

export interface PinnedPackage {
  /** Debian package name. */
  readonly package: string;
  /** Upstream version, as the project tags it (no `v`, no Debian revision). */
  readonly version: string;
  /** What apt preferences pin: an exact package version, or a glob over Debian revisions. */
  readonly aptPin: string;
  readonly origin: "grafana" | "debian";
}

/**
 * Grafana's repository signing key. The key was rotated on 2023-01-12 (after 4E40DDF6...) and
 * again on 2023-08-24 (after 0E22EB88..., exposed in CI logs); the current one is
 * B53AE77BADB630A683046005963FA27710458545. Source: apt.grafana.com's own notice, quoted in
 * voxpupuli/puppet-grafana#336 (2023-08-30); the same fingerprint appears in the EXPKEYSIG
 * reports of August-November 2025 (grafana/grafana#110073), when the key's expiry lapsed and
 * Grafana re-published the same key with a later expiry: fetch the key file afresh, the
 * fingerprint stays.
 */
export const GRAFANA_APT: AptRepository = {
  name: "grafana",
  uri: "https://apt.grafana.com",
  suite: "stable",
  components: ["main"],
  keyUrl: "https://apt.grafana.com/gpg.key",
  keyFingerprint: "B53AE77BADB630A683046005963FA27710458545",
  keyringPath: "/etc/apt/keyrings/grafana.gpg",
};

export const VERSIONS = {
  grafana: { package: "grafana", version: "12.4.3", aptPin: "12.4.3", origin: "grafana" },
  loki: { package: "loki", version: "3.7.7", aptPin: "3.7.7", origin: "grafana" },
  alloy: { package: "alloy", version: "1.19.2", aptPin: "1.19.2-1", origin: "grafana" },
  prometheus: { package: "prometheus", version: "2.42.0+ds", aptPin: "2.42.0+ds-*", origin: "debian" },
  nodeExporter: {
    package: "prometheus-node-exporter",
    version: "1.5.0",
    aptPin: "1.5.0-*",
    origin: "debian",
  },
} as const satisfies Record<string, PinnedPackage>;

export type Component = keyof typeof VERSIONS;

/** Official container images at the pinned versions, for CI (`.github/workflows/validate-configs.yml`). */
export const IMAGES = {
  grafana: `grafana/grafana:${VERSIONS.grafana.version}`,
  loki: `grafana/loki:${VERSIONS.loki.version}`,
  alloy: `grafana/alloy:v${VERSIONS.alloy.version}`,
} as const;

/** Where the preferences file goes; any name under preferences.d works, this one says what it is. */
export const APT_PREFERENCES_PATH = "/etc/apt/preferences.d/titan-pins";

/**
 * apt_preferences(5) stanzas pinning every package of the table. Priority 1001 makes apt
 * install (and downgrade to) exactly the pinned version, and never move past it on upgrade.
 */
export function renderAptPreferences(packages: readonly PinnedPackage[] = Object.values(VERSIONS)): string {
  const stanzas = packages.map((p) => {
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(p.package)) throw new Error(`not a Debian package name: ${p.package}`);
    if (!/^[0-9A-Za-z.+~:*-]+$/.test(p.aptPin)) throw new Error(`not an apt version pin: ${p.aptPin}`);
    const from = p.origin === "grafana" ? `${GRAFANA_APT.uri} (${GRAFANA_APT.suite})` : "Debian 12 (bookworm)";
    return [
      `Explanation: ${p.package} ${p.version} from ${from}`,
      `Package: ${p.package}`,
      `Pin: version ${p.aptPin}`,
      "Pin-Priority: 1001",
    ].join("\n");
  });
  return `${stanzas.join("\n\n")}\n`;
}

/** One-line deb822-free sources entry for Grafana's repository, signed by the pinned key only. */
export function grafanaSourcesLine(repo: AptRepository = GRAFANA_APT): string {
  return `deb [signed-by=${repo.keyringPath}] ${repo.uri} ${repo.suite} ${repo.components.join(" ")}\n`;
}
