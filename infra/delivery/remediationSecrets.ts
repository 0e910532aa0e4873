/**
 * The web host's one secret in the configuration push: the HMAC key Grafana signs its webhooks
 * to the remediation agent with. It arrives on the install command's standard input, never on a
 * command line, in user data or in a rendered file, and lands root:root 0400 in
 * /etc/titan-remediation (systemd hands the agent a copy through LoadCredential=, units.ts). A
 * changed one is in `$changed` under that directory, so the agent restarts and reads it.
 */
import * as pulumi from "@pulumi/pulumi";
import { REMEDIATION_ETC_DIR, REMEDIATION_SECRET_PATH } from "../../templates/host/units";
import { checkLine } from "./grafanaSecrets";

export const REMEDIATION_SECRET_LINES: readonly string[] = [
  "IFS= read -r remediation_hmac_secret || true",
  'if [ -z "$remediation_hmac_secret" ]; then',
  '  echo "the remediation agent\'s HMAC secret must arrive on stdin" >&2',
  "  exit 1",
  "fi",
  `sudo install -d -m 0755 -o root -g root ${REMEDIATION_ETC_DIR}`,
  `tmp=$(sudo mktemp -p ${REMEDIATION_ETC_DIR})`,
  // printf is a builtin: the secret is in no process's argv. mktemp made the file 0600 root.
  'printf \'%s\' "$remediation_hmac_secret" | sudo tee "$tmp" >/dev/null',
  `if sudo cmp -s "$tmp" ${REMEDIATION_SECRET_PATH}; then`,
  '  sudo rm -f "$tmp"',
  "else",
  '  sudo chown root:root "$tmp"',
  '  sudo chmod 0400 "$tmp"',
  `  sudo mv "$tmp" ${REMEDIATION_SECRET_PATH}`,
  `  changed="$changed ${REMEDIATION_SECRET_PATH}"`,
  "fi",
];

/** A web host's install command's standard input, as a Pulumi secret. */
export function remediationStdin(hmacSecret: pulumi.Output<string>): pulumi.Output<string> {
  return pulumi.secret(hmacSecret.apply((s) => `${checkLine("remediationHmacSecret", s, true)}\n`));
}
