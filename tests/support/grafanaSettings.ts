/**
 * How a Grafana started by systemd from its Debian package arrives at its admin login and
 * secret key: a model encoded from the sources, so tests can apply it to the files we render
 * and the files the push writes.
 *
 * - systemd/systemd src/basic/env-file.c (parse_env_file_internal): EnvironmentFile syntax;
 *   no `$` expansion, double quotes take backslash escapes of `"\`$` and newline only.
 * - grafana/grafana conf/defaults.ini [security]: admin_user = admin, admin_password = admin,
 *   secret_key = SW2YcwTIb9zpOOhoPsMm. The package's /etc/grafana/grafana.ini is a copy of
 *   conf/sample.ini (packaging/deb/control/postinst), every line commented out.
 * - pkg/setting/setting.go loadConfiguration: defaults, config file, applyEnvVariableOverrides
 *   (EnvKey: GF_ + section + _ + key, upper case, "." and "-" as "_", non-empty values only,
 *   keys defaults.ini has), command line, then expandConfig.
 * - pkg/setting/expanders.go: regex `\$(|__\w+){([^}]+)}`; the env expander (priority -10,
 *   `${X}` and `$__env{X}`) before the file expander (-5, `$__file{path}`: the file's content,
 *   whitespace trimmed; a missing file is an error and Grafana does not start).
 * - pkg/setting/setting.go DynamicSection.Key and
 *   pkg/services/kmsproviders/defaultprovider/grafana_provider.go: the key that encrypts
 *   stored secrets is read at run time, GF_SECURITY_SECRET_KEY taken raw when set.
 * - pkg/services/sqlstore/sqlstore.go ensureMainOrgAndAdminUser: with no user yet, the admin
 *   is created from admin_user/admin_password (and never again).
 */

export type Settings = Record<string, Record<string, string>>;

/** The [security] keys of conf/defaults.ini this model cares about. */
export const GRAFANA_DEFAULTS: Readonly<Settings> = {
  security: { admin_user: "admin", admin_password: "admin", secret_key: "SW2YcwTIb9zpOOhoPsMm" },
};

/** A systemd EnvironmentFile, as parse_env_file_internal reads it (the forms our files use). */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const eq = line.indexOf("=");
    if (eq < 0) continue; // systemd ignores a line without "="
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if (value.startsWith('"')) {
      if (!value.endsWith('"') || value.length < 2) throw new Error(`model: unterminated quote in ${raw}`);
      value = value.slice(1, -1).replace(/\\(["\\`$])/g, "$1");
    } else if (value.startsWith("'")) {
      if (!value.endsWith("'") || value.length < 2) throw new Error(`model: unterminated quote in ${raw}`);
      value = value.slice(1, -1);
    } else if (value.includes("\\")) {
      throw new Error(`model: unquoted backslashes are outside this model: ${raw}`);
    }
    env[key] = value;
  }
  return env;
}

export const envKey = (section: string, key: string): string =>
  `GF_${section.replace(/[.-]/g, "_").toUpperCase()}_${key.replace(/\./g, "_").toUpperCase()}`;

const EXPANSION = /\$(|__\w+)\{([^}]+)\}/g;

/** What loadConfiguration leaves in the settings, for the modelled keys. */
export function resolveSettings(env: Readonly<Record<string, string>>, readFile: (path: string) => string): Settings {
  const settings: Settings = {};
  for (const [section, keys] of Object.entries(GRAFANA_DEFAULTS)) {
    settings[section] = { ...keys };
    for (const key of Object.keys(keys)) {
      const override = env[envKey(section, key)];
      if (override) settings[section][key] = override;
    }
  }
  for (const kind of ["env", "file"] as const) {
    for (const keys of Object.values(settings)) {
      for (const [key, value] of Object.entries(keys)) {
        keys[key] = value.replace(EXPANSION, (whole, prefix: string, arg: string) => {
          if (kind === "env" && (prefix === "" || prefix === "__env")) return env[arg] ?? "";
          if (kind === "file" && prefix === "__file") return readFile(arg).trim();
          return whole;
        });
      }
    }
  }
  return settings;
}

/** The admin ensureMainOrgAndAdminUser creates on an empty database. */
export const firstAdmin = (settings: Settings) => ({
  login: settings.security.admin_user,
  password: settings.security.admin_password,
});

/** The key the secrets service encrypts with (DynamicSection: the raw environment value wins). */
export function runtimeSecretKey(settings: Settings, env: Readonly<Record<string, string>>): string {
  const raw = env[envKey("security", "secret_key")];
  return raw ? raw : settings.security.secret_key;
}
