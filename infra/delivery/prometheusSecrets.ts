/**
 * The Prometheus host's one secret in the configuration push: the password it scrapes Grafana's
 * /metrics with (templates/prometheus/config.ts names the file in the grafana job's basic_auth).
 * It arrives on the install command's standard input, never on a command line or in a rendered
 * file, and lands root:prometheus 0440 beside prometheus.yml; a changed one is in `$changed`
 * under /etc/prometheus/, so Prometheus reloads (it reads password_file on each scrape anyway:
 * prometheus/common config/http_config.go basicAuthRoundTripper).
 */
import * as pulumi from "@pulumi/pulumi";
import { GRAFANA_METRICS_PASSWORD_FILE, PROMETHEUS_SECRETS_DIR } from "../../templates/prometheus/config";
import { checkLine } from "./grafanaSecrets";

export const PROMETHEUS_SECRET_LINES: readonly string[] = [
  "IFS= read -r grafana_metrics_password || true",
  'if [ -z "$grafana_metrics_password" ]; then',
  '  echo "the password for Grafana\'s /metrics must arrive on stdin" >&2',
  "  exit 1",
  "fi",
  `sudo install -d -m 0750 -o root -g prometheus ${PROMETHEUS_SECRETS_DIR}`,
  `tmp=$(sudo mktemp -p ${PROMETHEUS_SECRETS_DIR})`,
  // printf is a builtin: the password is in no process's argv.
  'printf \'%s\' "$grafana_metrics_password" | sudo tee "$tmp" >/dev/null',
  `if sudo cmp -s "$tmp" ${GRAFANA_METRICS_PASSWORD_FILE}; then`,
  '  sudo rm -f "$tmp"',
  "else",
  '  sudo chown root:prometheus "$tmp"',
  '  sudo chmod 0440 "$tmp"',
  `  sudo mv "$tmp" ${GRAFANA_METRICS_PASSWORD_FILE}`,
  `  changed="$changed ${GRAFANA_METRICS_PASSWORD_FILE}"`,
  "fi",
];

/** The Prometheus install command's standard input, as a Pulumi secret. */
export function prometheusStdin(metricsPassword: pulumi.Output<string>): pulumi.Output<string> {
  return pulumi.secret(metricsPassword.apply((p) => `${checkLine("grafanaMetricsPassword", p, true)}\n`));
}
