/**
 * The Grafana host's secrets in the configuration push: what goes on the install command's
 * standard input, the lines that write it into root-owned files, and the lines run after the
 * services have (re)started. Secrets never appear on a command line, in a rendered file or in
 * the logs.
 *
 * The unit cannot start before these files exist (templates/host/grafanaServer.ts, drop-in
 * conditions), and the bootstrap never starts it: the push's restart is its first start, so
 * Grafana creates its admin with the configured user and the generated password.
 */
import * as pulumi from "@pulumi/pulumi";
import { SERVICES } from "../../facts/topology";
import { REMEDIATION_HMAC_SECRET_ENV, SLACK_WEBHOOK_ENV } from "../../templates/grafana";
import {
  GRAFANA_ADMIN_PASSWORD_PATH,
  GRAFANA_ENV_PATH,
  GRAFANA_METRICS_PASSWORD_PATH,
  GRAFANA_PACKAGE_PATHS,
  GRAFANA_SECRETS_DIR,
  GRAFANA_SECRETS_ENV_PATH,
  GRAFANA_SERVICE,
} from "../../templates/host/grafanaServer";

/** Read by systemd (as root) from GRAFANA_SECRETS_ENV_PATH; see grafanaServer.ts for why not `$__file{}`. */
export const SECRET_KEY_ENV = "GF_SECURITY_SECRET_KEY";

/** The order GRAFANA_SECRET_LINES reads standard input in, one value a line. */
export const GRAFANA_STDIN_ORDER = [
  "adminPassword",
  "secretKey",
  "slackWebhookUrl",
  "metricsPassword",
  "remediationHmacSecret",
] as const;

/**
 * Where the push records the admin login Grafana's database was created with, beside the
 * database (the data volume): it outlives a replaced host exactly as the database does.
 */
export const GRAFANA_ADMIN_USER_RECORD = `${GRAFANA_PACKAGE_PATHS.data}/titan-admin-user`;

/**
 * Refuses a changed grafanaAdminUser on a running stack, before anything restarts: Grafana
 * applies admin_user only when it creates its database (pkg/services/sqlstore/sqlstore.go
 * `ensureMainOrgAndAdminUser` returns early once a user exists), so the new login would never
 * exist while the verification and the outputs name it. Reads the login from the settings file
 * this push has just placed.
 */
export const GRAFANA_ADMIN_USER_CHECK: readonly string[] = [
  `admin_user=$(sudo sed -n 's/^GF_SECURITY_ADMIN_USER="\\(.*\\)"$/\\1/p' ${GRAFANA_ENV_PATH})`,
  `if sudo test -f ${GRAFANA_ADMIN_USER_RECORD}; then`,
  `  created_with=$(sudo cat ${GRAFANA_ADMIN_USER_RECORD})`,
  '  if [ "$created_with" != "$admin_user" ]; then',
  `    echo "grafanaAdminUser = \\"$admin_user\\": expected \\"$created_with\\", the admin Grafana's database was created with. Grafana applies admin_user only to a new database, so a rename on a running stack would never take effect: set grafanaAdminUser back to \\"$created_with\\" (to rename, change the login in Grafana first, then write the new name to ${GRAFANA_ADMIN_USER_RECORD} on the host)." >&2`,
  "    exit 1",
  "  fi",
  "fi",
];

/** Reads the secrets from stdin into root-owned files; refuses to go on without the three that are required. */
export const GRAFANA_SECRET_LINES: readonly string[] = [
  "IFS= read -r admin_password || true",
  "IFS= read -r secret_key || true",
  "IFS= read -r slack_webhook || true",
  "IFS= read -r metrics_password || true",
  "IFS= read -r remediation_hmac_secret || true",
  'if [ -z "$admin_password" ] || [ -z "$secret_key" ] || [ -z "$metrics_password" ]; then',
  '  echo "the Grafana admin password, secret key and metrics password must arrive on stdin" >&2',
  "  exit 1",
  "fi",
  `sudo install -d -m 0750 -o root -g grafana ${GRAFANA_SECRETS_DIR}`,
  // The content is the fifth argument, and each call is a plain command: a function at the end
  // of a pipeline (`printf … | secret …`) runs in a subshell in bash and dash, and the
  // `changed` it sets is lost, so nothing restarted and no reset ran. A shell function's
  // arguments stay inside this shell (no process's argv), and printf is a builtin in both.
  "secret() { # target owner group mode content",
  `  tmp=$(sudo mktemp -p ${GRAFANA_SECRETS_DIR})`,
  '  printf \'%s\' "$5" | sudo tee "$tmp" >/dev/null',
  '  if sudo cmp -s "$tmp" "$1"; then sudo rm -f "$tmp"; return 0; fi',
  '  sudo chown "$2:$3" "$tmp"',
  '  sudo chmod "$4" "$tmp"',
  '  sudo mv "$tmp" "$1"',
  '  changed="$changed $1"',
  "}",
  // Grafana (user grafana) reads the password itself; root owns it.
  `secret ${GRAFANA_ADMIN_PASSWORD_PATH} root grafana 0440 "$admin_password"`,
  `secret ${GRAFANA_METRICS_PASSWORD_PATH} root grafana 0440 "$metrics_password"`,
  "nl='",
  "'",
  `secret_env="${SECRET_KEY_ENV}=$secret_key$nl"`,
  `if [ -n "$slack_webhook" ]; then secret_env="\${secret_env}${SLACK_WEBHOOK_ENV}=$slack_webhook$nl"; fi`,
  // Only while remediation is not off: the webhook contact points' hmacConfig reads it.
  `if [ -n "$remediation_hmac_secret" ]; then secret_env="\${secret_env}${REMEDIATION_HMAC_SECRET_ENV}=$remediation_hmac_secret$nl"; fi`,
  `secret ${GRAFANA_SECRETS_ENV_PATH} root root 0600 "$secret_env"`,
];

/**
 * `grafana cli`, as the deb package runs it (grafana/grafana 12.x): /usr/sbin/grafana is
 * packaging/wrappers/grafana, which execs /usr/share/grafana/bin/grafana and, for `cli`, adds
 * the package's paths itself; older wrappers did not, so they are given here too (urfave/cli
 * keeps the last value of a repeated flag). The global flags are the `cli` command's own
 * (pkg/cmd/grafana-cli/commands/cli.go: --homepath, --config, --configOverrides), and
 * commands.go `initializeRunner` splits --configOverrides on spaces into cfg: arguments.
 * `grafana-cli` is the older wrapper for the same `grafana cli`.
 */
const GRAFANA_CLI = [
  "sudo -u grafana grafana cli",
  `--homepath ${GRAFANA_PACKAGE_PATHS.home}`,
  `--config ${GRAFANA_PACKAGE_PATHS.config}`,
  // The CLI sees no unit environment: point it at the database the service uses, not <homepath>/data.
  `--configOverrides 'cfg:default.paths.data=${GRAFANA_PACKAGE_PATHS.data} cfg:default.paths.logs=${GRAFANA_PACKAGE_PATHS.logs} cfg:default.paths.plugins=${GRAFANA_PACKAGE_PATHS.plugins}'`,
].join(" ");

/**
 * How long Grafana may take to start and answer, the first start included (database migrations
 * come first): the push waits this long for /api/health, and CI's boot check
 * (tools/validate/checkGrafana.ts) this long for the provisioned resources. One deadline.
 */
export const GRAFANA_FIRST_START = { timeoutSeconds: 180, intervalSeconds: 2 } as const;

/** Sets user 1's password to the line on standard input (see below). */
export const GRAFANA_RESET_PASSWORD = `${GRAFANA_CLI} admin reset-admin-password --password-from-stdin`;

/**
 * After the restart: Grafana must answer (a unit condition skips a start silently, so a missing
 * file shows up here, not as a quiet success). A changed password file is applied with the CLI,
 * because admin_password only counts when the database is created; on a first start it sets the
 * password the database already has. pkg/cmd/grafana-cli/commands/commands.go declares
 * `admin reset-admin-password` with --password-from-stdin and --user-id (default 1, the first
 * admin); reset_password_command.go reads one line from stdin and exits non-zero (1, from
 * pkg/cmd/grafana/main.go) on a failure, which fails the push.
 */
export const GRAFANA_POST_LINES: readonly string[] = [
  "healthy=''",
  `for _ in $(seq 1 ${GRAFANA_FIRST_START.timeoutSeconds / GRAFANA_FIRST_START.intervalSeconds}); do`,
  `  if curl -fsS -o /dev/null http://127.0.0.1:${SERVICES.grafana.port}/api/health; then healthy=1; break; fi`,
  `  sleep ${GRAFANA_FIRST_START.intervalSeconds}`,
  "done",
  'if [ -z "$healthy" ]; then',
  `  echo "${GRAFANA_SERVICE} is not answering on :${SERVICES.grafana.port}:" >&2`,
  `  sudo systemctl status --no-pager ${GRAFANA_SERVICE} >&2 || true`,
  "  exit 1",
  "fi",
  // Grafana answers, so its database exists: record whose admin it holds (once).
  `sudo test -f ${GRAFANA_ADMIN_USER_RECORD} || printf '%s' "$admin_user" | sudo tee ${GRAFANA_ADMIN_USER_RECORD} >/dev/null`,
  `case "$changed" in *" ${GRAFANA_ADMIN_PASSWORD_PATH}"*)`,
  `  sudo cat ${GRAFANA_ADMIN_PASSWORD_PATH} | ${GRAFANA_RESET_PASSWORD} >/dev/null`,
  '  echo "grafana admin password set" ;;',
  "esac",
];

export interface GrafanaSecretInputs {
  readonly adminPassword: pulumi.Output<string>;
  readonly secretKey: pulumi.Output<string>;
  readonly slackWebhookUrl?: pulumi.Output<string>;
  readonly metricsPassword: pulumi.Output<string>;
  /** The remediation agents' HMAC key; absent while `remediation` is off (no contact point uses it). */
  readonly remediationHmacSecret?: pulumi.Output<string>;
}

/** A value that would break the line-per-secret protocol or the environment file. */
export function checkLine(name: string, value: string, required: boolean): string {
  if (required && value === "") throw new Error(`${name}: expected a value, got an empty string`);
  if (/[\n\r]/.test(value)) throw new Error(`${name}: expected a single line (the value contains a line break)`);
  return value;
}

/** The install command's standard input, as a Pulumi secret, in GRAFANA_STDIN_ORDER. */
export function grafanaStdin(inputs: GrafanaSecretInputs): pulumi.Output<string> {
  return pulumi.secret(
    pulumi
      .all([
        inputs.adminPassword,
        inputs.secretKey,
        inputs.slackWebhookUrl ?? "",
        inputs.metricsPassword,
        inputs.remediationHmacSecret ?? "",
      ])
      .apply(([password, key, webhook, metrics, hmac]) =>
        [
          checkLine("adminPassword", password, true),
          checkLine("secretKey", key, true),
          checkLine("slackWebhookUrl", webhook, false),
          checkLine("metricsPassword", metrics, true),
          checkLine("remediationHmacSecret", hmac, false),
          "",
        ].join("\n"),
      ),
  );
}
