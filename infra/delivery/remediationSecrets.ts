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
import { secretFileLines } from "./secretFile";

export const REMEDIATION_SECRET_LINES: readonly string[] = secretFileLines({
  variable: "remediation_hmac_secret",
  what: "the remediation agent's HMAC secret",
  dir: REMEDIATION_ETC_DIR,
  dirMode: "0755",
  dirGroup: "root",
  path: REMEDIATION_SECRET_PATH,
  owner: "root:root",
  mode: "0400",
});

/** A web host's install command's standard input, as a Pulumi secret. */
export function remediationStdin(hmacSecret: pulumi.Output<string>): pulumi.Output<string> {
  return pulumi.secret(hmacSecret.apply((s) => `${checkLine("remediationHmacSecret", s, true)}\n`));
}
