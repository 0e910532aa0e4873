/**
 * The one table of versions the hosts install (docs/architecture.md decision 4 and 6), the vendor APT
 * repository they come from, and the container tags CI validates the configs with. The apt
 * preferences file that pins them is rendered by templates/host/aptPins.ts.
 *
 * Grafana, Loki and Alloy come from Grafana's APT repository; Prometheus and node_exporter
 * from Debian 12's own archive, the same packages the tests on the build machine run against.
 * Debian replaces package revisions with security updates (`+deb12u1`, ...), so those two
 * are pinned by upstream version with a glob. Grafana's repository keeps every version, so
 * those three are pinned exactly; Grafana itself also takes its security re-issues of the same
 * patch (PinnedPackage.securityReissues).
 *
 * Evidence for each choice (searched public material; re-check before bumping):
 * - Grafana 12.4.15: 12.4 is the last minor of the 12 line (longest support window), and
 *   12.4.15 the newest 12.4.x patch found (searched 2026-11-23): OSV's record CGA-9xcx-c962-m4f3
 *   (Chainguard's grafana-12.4 package, whose versions are upstream's: its 12.4.2 and 12.4.11
 *   match Grafana's own 12.4.2 changelog and a maintainer's 2026-09-15 "upgrade to at least
 *   12.4.11", grafana/grafana#118510) lists 12.4.15 as the fixed version on 2026-11-14; public
 *   projects pin 12.4.12 and earlier. 12.4.3 lacked the fixes of 12.4.4 onwards (e.g.
 *   CVE-2026-41602, GHSA-xmrv-pmrh-hhx2, grafana/grafana#124582). CI installs exactly this
 *   version from apt.grafana.com, so a version the repository lacks fails there.
 * - Loki 3.7.8, the newest 3.7.x patch found (searched 2026-12-06): grafana/loki#24587
 *   "docs: Loki 3.7.8 Release Notes" (merged 2026-09-17), and public projects pin
 *   `grafana/loki:3.7.8` (digest sha256:1107dd5274e0...); no 3.7.9 found. 3.7.7 was in the
 *   CHANGELOG of release-3.7.x on 2026-08-27. 3.7.5 restored the deb/rpm builds that
 *   3.5.4-3.5.x and 3.7.3-3.7.4 first lacked (grafana/loki#19404, #22851, #23341). 3.7.x still
 *   defaults to the legacy object-store clients: Thanos became the default only on main
 *   (grafana/loki#22676, after the 3.7 branch).
 * - Alloy 1.21.2 (package revision -1, as Alloy's debs are versioned: `alloy=1.20.0-1` in
 *   public apt pins), the newest 1.21.x patch found (searched 2026-12-06): GitHub releases
 *   v1.21.1 (2026-10-21, backports and Go 1.27.3) and v1.21.2 (2026-10-22, bug fixes), as
 *   newreleases.io records them. The loki.write drop reasons the alerts read are unchanged from
 *   v1.18.1 to main of 2026-08 (templates/alerts.ts ALLOY_DROP_REASONS). The stored CHANGELOG
 *   ends at 1.18 (breaking changes in otelcol components only, none of those templates/alloy
 *   uses); the 1.20 and 1.21 notes were not found in the searched material, so CI's `alloy
 *   validate` with `grafana/alloy:v1.21.2` on the rendered config is the check that the syntax
 *   still holds.
 */

/**
 * An APT repository serving the vendor packages (origin "grafana" below): Grafana's own
 * (GRAFANA_APT), or a mirror of it the stack is configured with (`vendorAptRepository`).
 */
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
  /**
   * Grafana's security re-issues of this very patch are accepted too (acceptedPins): Grafana
   * re-releases a patch as `X.Y.Z+security-NN` (e.g. 12.0.2+security-01), and its APT repository
   * ships that as Debian version `X.Y.Z-NN` (apt.grafana.com's pool/main/g/grafana/
   * grafana_12.0.2-01_amd64.deb installs as `grafana (12.0.2-01)`; dl.grafana.com names the same
   * build grafana_12.0.2+security~01_amd64.deb, and the enterprise 11.2.2+security-01 package
   * also installs as `11.2.2-01`). An exact pin would never install one.
   */
  readonly securityReissues?: true;
}

/** Two digits, as Grafana numbers its security re-issues (+security-01, -02, ...). */
const REISSUE = "[0-9][0-9]";

/**
 * Every version (apt glob) the package may be installed at: its pin, and for a package taking
 * security re-issues, `X.Y.Z-NN` (how Grafana's repository versions them) and `X.Y.Z+security-NN`
 * (the upstream name, should a package ever carry it). Nothing else: not X.Y.Z-1, not X.Y.Z.1,
 * not the next patch.
 */
export function acceptedPins(p: PinnedPackage): string[] {
  if (!p.securityReissues) return [p.aptPin];
  if (!/^\d+\.\d+\.\d+$/.test(p.aptPin))
    throw new Error(`${p.package}: securityReissues needs an exact X.Y.Z aptPin, got ${JSON.stringify(p.aptPin)}`);
  return [p.aptPin, `${p.aptPin}-${REISSUE}`, `${p.aptPin}+security-${REISSUE}`];
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
  grafana: { package: "grafana", version: "12.4.15", aptPin: "12.4.15", origin: "grafana", securityReissues: true },
  loki: { package: "loki", version: "3.7.8", aptPin: "3.7.8", origin: "grafana" },
  alloy: { package: "alloy", version: "1.21.2", aptPin: "1.21.2-1", origin: "grafana" },
  prometheus: { package: "prometheus", version: "2.42.0+ds", aptPin: "2.42.0+ds-*", origin: "debian" },
  nodeExporter: {
    package: "prometheus-node-exporter",
    version: "1.5.0",
    aptPin: "1.5.0-*",
    origin: "debian",
  },
} as const satisfies Record<string, PinnedPackage>;

export type Component = keyof typeof VERSIONS;

/**
 * Official container images at the pinned versions, for CI's loki and alloy checks
 * (`.github/workflows/validate-configs.yml`). Grafana has none: CI installs its package, as the
 * host does (tools/validate/grafanaApt.ts prints what it needs).
 */
export const IMAGES = {
  loki: `grafana/loki:${VERSIONS.loki.version}`,
  alloy: `grafana/alloy:v${VERSIONS.alloy.version}`,
} as const;

/**
 * The OS image every host boots unless `amiId` or `amiSsmParameter` says otherwise: one exact
 * Debian 12 release, looked up by its publisher and exact name (infra/placement.ts), so the
 * same program resolves the same image on every run and a newer Debian build never replaces a
 * host by itself. Bumping `name` is a planned replacement of every host (the preview shows it).
 * Evidence: Debian's cloud team publishes from account 136693071363 (public Terraform and
 * provisioning code filters `owners = ["136693071363"]`); its images are named
 * `debian-12-amd64-YYYYMMDD-BUILD`, and `debian-12-amd64-20260923-2610` was identified with
 * `aws ec2 describe-images` in us-east-1 by a public project (searched 2026-12-06; a
 * 20261006-2623 build appears only in a test fixture, so it is not pinned). The name's date and
 * build are the same in every region; the AMI id is not, hence a lookup instead of an id.
 */
export const DEBIAN_IMAGE = {
  owner: "136693071363",
  name: "debian-12-amd64-20260923-2610",
  architecture: "x86_64",
} as const;

/**
 * What an operator may set to take the vendor packages from a mirror of Grafana's repository
 * (stack key `vendorAptRepository`: Artifactory, Nexus, aptly... for air-gapped or pinned-mirror
 * deploys). The mirror serves the same packages at the same versions; it usually signs with its
 * own key, hence its own fingerprint. Keyring and sources paths stay Grafana's.
 */
export interface VendorRepositorySettings {
  readonly uri: string;
  readonly keyUrl: string;
  readonly keyFingerprint: string;
  /** Default: Grafana's, `stable`. */
  readonly suite?: string;
  /** Default: Grafana's, `main`. */
  readonly components?: readonly string[];
}

const SETTINGS_FIELDS = ["uri", "keyUrl", "keyFingerprint", "suite", "components"] as const;

/*
 * Every character these allow is one templates/shell.ts's shellWord accepts: the values are
 * spliced into the bootstrap script. No `@`: credentials do not belong in user data (apt reads
 * them from /etc/apt/auth.conf.d).
 */
const HTTP_URI = /^https?:\/\/[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(\/[A-Za-z0-9%+=:,./_-]*)?$/;
const FILE_URI = /^file:\/\/\/[A-Za-z0-9%+=:,./_-]+$/;
const URI_SHAPE = "an http://, https:// (host[:port][/path], no user@) or file:///absolute/path URI";
const FINGERPRINT = /^[0-9A-F]{40}$/;
/** Suites and components as Debian names them: `stable`, `bookworm-updates`, `non-free-firmware`. */
const APT_WORD = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const isUri = (v: string) => HTTP_URI.test(v) || FILE_URI.test(v);

/** The first thing wrong with a repository's fields, as "what was expected"; undefined when none is. */
function repositoryProblem(r: {
  uri: unknown;
  keyUrl: unknown;
  keyFingerprint: unknown;
  suite: unknown;
  components: unknown;
}): string | undefined {
  const shown = (v: unknown) => JSON.stringify(v) ?? String(v);
  if (typeof r.uri !== "string" || !isUri(r.uri)) return `uri to be ${URI_SHAPE}; got ${shown(r.uri)}`;
  if (typeof r.keyUrl !== "string" || !isUri(r.keyUrl))
    return `keyUrl (the ASCII-armored signing key) to be ${URI_SHAPE}; got ${shown(r.keyUrl)}`;
  if (typeof r.keyFingerprint !== "string" || !FINGERPRINT.test(r.keyFingerprint)) {
    const compact = typeof r.keyFingerprint === "string" ? r.keyFingerprint.replace(/\s+/g, "").toUpperCase() : "";
    const hint = FINGERPRINT.test(compact) ? ` (did you mean ${compact}?)` : "";
    return `keyFingerprint to be the signing key's full fingerprint, 40 upper-case hex digits without spaces; got ${shown(r.keyFingerprint)}${hint}`;
  }
  if (typeof r.suite !== "string" || !APT_WORD.test(r.suite))
    return `suite to be one APT suite name such as "stable" (letters, digits, '.', '_', '-'; flat repositories are not supported); got ${shown(r.suite)}`;
  if (
    !Array.isArray(r.components) ||
    r.components.length === 0 ||
    !r.components.every((c) => typeof c === "string" && APT_WORD.test(c))
  )
    return `components to be a non-empty list of APT component names such as ["main"]; got ${shown(r.components)}`;
  return undefined;
}

/** Refuses a repository the renderer cannot put in user data (a mirror given through the API, say). */
export function checkAptRepository(repo: AptRepository): void {
  const problem = repositoryProblem(repo);
  if (problem) throw new Error(`vendor APT repository ${repo.name}: expected ${problem}`);
}

/**
 * The vendor repository for the given settings: Grafana's own when there are none. Returns
 * what was expected, as text, when the settings are malformed (facts/config.ts names the key).
 */
export function vendorRepository(settings?: unknown): AptRepository | { readonly expected: string } {
  if (settings === undefined) return GRAFANA_APT;
  const shape = `an object {uri, keyUrl, keyFingerprint, suite?, components?} (a mirror of Grafana's APT repository)`;
  if (typeof settings !== "object" || settings === null || Array.isArray(settings)) return { expected: shape };
  const unknown = Object.keys(settings).filter((k) => !(SETTINGS_FIELDS as readonly string[]).includes(k));
  if (unknown.length > 0)
    return { expected: `${shape}; ${unknown.map((k) => JSON.stringify(k)).join(", ")} is not one of its fields` };
  const s = settings as Partial<Record<(typeof SETTINGS_FIELDS)[number], unknown>>;
  const fields = {
    uri: s.uri,
    keyUrl: s.keyUrl,
    keyFingerprint: s.keyFingerprint,
    suite: s.suite ?? GRAFANA_APT.suite,
    components: s.components ?? GRAFANA_APT.components,
  };
  const problem = repositoryProblem(fields);
  if (problem) return { expected: problem };
  return Object.freeze({
    name: GRAFANA_APT.name,
    uri: fields.uri as string,
    suite: fields.suite as string,
    components: Object.freeze([...(fields.components as string[])]),
    keyUrl: fields.keyUrl as string,
    keyFingerprint: fields.keyFingerprint as string,
    keyringPath: GRAFANA_APT.keyringPath,
  });
}

/**
 * The Pulumi CLI the pull-request preview installs: pulumi/actions' `pulumi-version` input
 * (action.yml), a semver range its src/libs/pulumi-cli.ts downloadCli resolves, so an exact
 * version installs exactly that release. pulumi/pulumi releases the CLI and the Node.js SDK
 * together under one version, so the pin is the @pulumi/pulumi version package-lock.json holds
 * (tests/workflow.test.ts checks the workflow and the lock against it).
 *
 * `minimum` is what the program needs of any operator's CLI: from 3.115.0 (pulumi/pulumi#16100)
 * the engine hashes a relative FileArchive path against the project's directory
 * (pkg/resource/deploy/source_eval.go, WorkingDirectory: runinfo.Pwd), where pulumi-command
 * opens it too (providers start there: sdk/go/common/resource/plugin/plugin.go), so the push
 * archive is found whichever directory `pulumi up` is started from; before, the engine read it
 * against its own working directory.
 */
export const PULUMI_CLI = { version: "3.270.0", minimum: "3.115.0" } as const;
