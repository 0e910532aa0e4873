/**
 * The facts CI needs to install Grafana's package as the bootstrap does, from the one versions
 * table (facts/versions.ts), as `KEY=value` lines for $GITHUB_ENV:
 *
 *   node build/tools/validate/grafanaApt.js >>"$GITHUB_ENV"
 *
 * The workflow writes no version, key URL or fingerprint of its own.
 */
import {
  acceptedPins,
  checkAptRepository,
  GRAFANA_APT,
  VERSIONS,
  type AptRepository,
  type PinnedPackage,
} from "../../facts/versions";
import { grafanaSourcesLine } from "../../templates/host/aptPins";

export function grafanaAptEnv(repo: AptRepository = GRAFANA_APT): Record<string, string> {
  checkAptRepository(repo);
  const grafana: PinnedPackage = VERSIONS.grafana;
  return {
    GRAFANA_APT_KEY_URL: repo.keyUrl,
    GRAFANA_APT_KEY_FINGERPRINT: repo.keyFingerprint,
    GRAFANA_APT_KEYRING: repo.keyringPath,
    GRAFANA_APT_SOURCE: grafanaSourcesLine(repo).trimEnd(),
    /**
     * What apt-get installs, as the bootstrap asks for it: by name when the apt preferences
     * (written first, from user data) choose among the patch and its security re-issues.
     */
    GRAFANA_PACKAGE_SPEC: grafana.securityReissues ? grafana.package : `${grafana.package}=${grafana.aptPin}`,
    /** The version globs dpkg's version must match one of once installed, space-separated. */
    GRAFANA_PACKAGE_VERSIONS: acceptedPins(grafana).join(" "),
  };
}

/** $GITHUB_ENV's one-line form; a value with a line break would smuggle in another variable. */
export function envLines(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([key, value]) => {
      if (!/^[A-Z][A-Z0-9_]*$/.test(key))
        throw new Error(`environment key ${JSON.stringify(key)}: expected A-Z, 0-9, _`);
      if (/[\r\n]/.test(value)) throw new Error(`${key}=${JSON.stringify(value)}: expected a single line`);
      return `${key}=${value}\n`;
    })
    .join("");
}

if (require.main === module) process.stdout.write(envLines(grafanaAptEnv()));
