/**
 * The Grafana host's secrets in the configuration push: what goes on the install command's
 * standard input, the lines that write it into root-owned files, and the lines run after the
 * services have (re)started. Secrets never appear on a command line, in a rendered file or in
 * the logs.
 */
import * as pulumi from "@pulumi/pulumi";
import { SLACK_WEBHOOK_ENV } from "../../templates/grafana";
import { GRAFANA_ADMIN_PASSWORD_PATH, GRAFANA_SECRETS_ENV_PATH } from "../../templates/host/grafanaServer";

/** Reads the admin password and the optional webhook from stdin into root-only files. */
export const GRAFANA_SECRET_LINES: readonly string[] = [
  "IFS= read -r admin_password || true",
  "IFS= read -r slack_webhook || true",
  "sudo install -d -m 0750 -o root -g grafana /etc/grafana/secrets",
  "secret() { # target owner group mode, content on stdin",
  "  tmp=$(sudo mktemp -p /etc/grafana/secrets)",
  '  sudo tee "$tmp" >/dev/null',
  '  if sudo cmp -s "$tmp" "$1"; then sudo rm -f "$tmp"; return; fi',
  '  sudo chown "$2:$3" "$tmp" && sudo chmod "$4" "$tmp" && sudo mv "$tmp" "$1"',
  '  changed="$changed $1"',
  "}",
  `printf '%s' "$admin_password" | secret ${GRAFANA_ADMIN_PASSWORD_PATH} grafana grafana 0400`,
  'if [ -n "$slack_webhook" ]; then',
  `  printf '${SLACK_WEBHOOK_ENV}=%s\\n' "$slack_webhook" | secret ${GRAFANA_SECRETS_ENV_PATH} root root 0600`,
  `elif sudo test -e ${GRAFANA_SECRETS_ENV_PATH}; then`,
  `  sudo rm -f ${GRAFANA_SECRETS_ENV_PATH} && changed="$changed ${GRAFANA_SECRETS_ENV_PATH}"`,
  "fi",
];

/**
 * Grafana applies its admin password only when it creates its database; after a change (and on
 * the first push, when the bootstrap already started Grafana) it is set explicitly.
 */
export const GRAFANA_POST_LINES: readonly string[] = [
  `case "$changed" in *" ${GRAFANA_ADMIN_PASSWORD_PATH}"*)`,
  "  for _ in $(seq 1 30); do curl -fsS http://127.0.0.1:3000/api/health >/dev/null 2>&1 && break; sleep 2; done",
  `  sudo cat ${GRAFANA_ADMIN_PASSWORD_PATH} | sudo -u grafana grafana cli --homepath /usr/share/grafana --config /etc/grafana/grafana.ini admin reset-admin-password --password-from-stdin >/dev/null`,
  '  echo "grafana admin password set" ;;',
  "esac",
];

export interface GrafanaSecretInputs {
  readonly adminPassword: pulumi.Output<string>;
  readonly slackWebhookUrl?: pulumi.Output<string>;
}

/** The install command's standard input, one secret a line in the order GRAFANA_SECRET_LINES reads them. */
export function grafanaStdin(inputs: GrafanaSecretInputs): pulumi.Output<string> {
  return pulumi.secret(
    pulumi
      .all([inputs.adminPassword, inputs.slackWebhookUrl ?? ""])
      .apply(([password, webhook]) => `${password}\n${webhook}\n`),
  );
}
