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
import { secretFileLines } from "./secretFile";

export const PROMETHEUS_SECRET_LINES: readonly string[] = secretFileLines({
  variable: "grafana_metrics_password",
  what: "the password for Grafana's /metrics",
  dir: PROMETHEUS_SECRETS_DIR,
  dirMode: "0750",
  dirGroup: "prometheus",
  path: GRAFANA_METRICS_PASSWORD_FILE,
  owner: "root:prometheus",
  mode: "0440",
});

/** The Prometheus install command's standard input, as a Pulumi secret. */
export function prometheusStdin(metricsPassword: pulumi.Output<string>): pulumi.Output<string> {
  return pulumi.secret(metricsPassword.apply((p) => `${checkLine("grafanaMetricsPassword", p, true)}\n`));
}
