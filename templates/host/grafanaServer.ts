/**
 * Grafana server settings on a package install, and the drop-in that keeps grafana-server from
 * starting before they exist.
 *
 * Facts from grafana/grafana (12.x) this file relies on:
 * - pkg/setting/setting.go `loadConfiguration`: defaults.ini, then grafana.ini, then
 *   `GF_<SECTION>_<KEY>` environment overrides (only for keys defaults.ini has), then
 *   `expandConfig` (pkg/setting/expanders.go) replaces `$__file{path}` with the file's trimmed
 *   content. So `GF_SECURITY_ADMIN_PASSWORD=$__file{...}` works on a package install, while the
 *   `__FILE` suffix is only read by the Docker image's packaging/docker/run.sh.
 * - pkg/services/kmsproviders/defaultprovider/grafana_provider.go reads secret_key through
 *   `SectionWithEnvOverrides`, which takes GF_SECURITY_SECRET_KEY raw, unexpanded: a
 *   `$__file{}` there would make the literal text the key. The key therefore goes into the
 *   root-only secrets environment file as its value (systemd reads that file as root).
 * - pkg/services/sqlstore/sqlstore.go `ensureMainOrgAndAdminUser`: admin_user/admin_password
 *   apply only when the user table is empty, i.e. on the very first start.
 * - packaging/deb/control/postinst never starts the service on a fresh install, and
 *   packaging/deb/systemd/grafana-server.service already has Restart=on-failure.
 */
import { SCRAPE_JOBS } from "../../facts/scrapeJobs";
import { SERVICES } from "../../facts/topology";
import type { RenderedFile, TemplateContext } from "../types";
import { renderUnit } from "./systemd";

export const GRAFANA_SERVICE = "grafana-server";
/** Plain settings, rendered here and pushed (0640 root:grafana). */
export const GRAFANA_ENV_PATH = "/etc/grafana/titan.env";
export const GRAFANA_SECRETS_DIR = "/etc/grafana/secrets";
/** Written by the push (0600 root): GF_SECURITY_SECRET_KEY=..., and TITAN_SLACK_WEBHOOK_URL=... when configured. */
export const GRAFANA_SECRETS_ENV_PATH = `${GRAFANA_SECRETS_DIR}/titan.env`;
/** Written by the push (0440 root:grafana): Grafana reads it itself through `$__file{}`. */
export const GRAFANA_ADMIN_PASSWORD_PATH = `${GRAFANA_SECRETS_DIR}/admin_password`;
/** Written by the push (0440 root:grafana): the password Prometheus scrapes /metrics with. */
export const GRAFANA_METRICS_PASSWORD_PATH = `${GRAFANA_SECRETS_DIR}/metrics_password`;
export const GRAFANA_DROP_IN_PATH = `/etc/systemd/system/${GRAFANA_SERVICE}.service.d/titan.conf`;

/** The package's own paths (packaging/deb/default/grafana-server), which its unit passes as cfg:default.paths.*. */
export const GRAFANA_PACKAGE_PATHS = {
  home: "/usr/share/grafana",
  config: "/etc/grafana/grafana.ini",
  data: "/var/lib/grafana",
  logs: "/var/log/grafana",
  plugins: "/var/lib/grafana/plugins",
} as const;

/** Every file the unit needs before its first start: without one of them it must not start at all. */
export const GRAFANA_START_REQUIRES: readonly string[] = [
  GRAFANA_ENV_PATH,
  GRAFANA_ADMIN_PASSWORD_PATH,
  GRAFANA_SECRETS_ENV_PATH,
];

/** The user Prometheus' grafana job scrapes as (facts/scrapeJobs.ts). */
const GRAFANA_METRICS_USER = (() => {
  const job = SCRAPE_JOBS.find((j) => j.job === "grafana");
  if (!job || !("basicAuthUser" in job)) throw new Error("the grafana scrape job names no basicAuthUser");
  return job.basicAuthUser;
})();

/** Grafana's reference to a file's content (pkg/setting/expanders.go, fileExpander). */
export const grafanaFileRef = (path: string): string => {
  if (!/^\/[A-Za-z0-9_./-]+$/.test(path))
    throw new Error(`grafanaFileRef: ${JSON.stringify(path)} is not an absolute path`);
  return `$__file{${path}}`;
};

export interface GrafanaServerOptions {
  /** Public URL of Grafana, for links in notifications; known once the host has its address. */
  readonly rootUrl?: string;
  /** Dashboard shown on login (a provisioned dashboard's file path). */
  readonly homeDashboardPath?: string;
}

export function grafanaEnvironment(ctx: TemplateContext, options: GrafanaServerOptions = {}): Record<string, string> {
  return {
    GF_SERVER_HTTP_PORT: String(SERVICES.grafana.port),
    ...(options.rootUrl ? { GF_SERVER_ROOT_URL: options.rootUrl } : {}),
    GF_SECURITY_ADMIN_USER: ctx.config.grafanaAdminUser,
    GF_SECURITY_ADMIN_PASSWORD: grafanaFileRef(GRAFANA_ADMIN_PASSWORD_PATH),
    GF_SECURITY_DISABLE_GRAVATAR: "true",
    GF_USERS_ALLOW_SIGN_UP: "false",
    GF_AUTH_ANONYMOUS_ENABLED: "false",
    GF_ANALYTICS_REPORTING_ENABLED: "false",
    GF_ANALYTICS_CHECK_FOR_UPDATES: "false",
    GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES: "false",
    GF_NEWS_NEWS_FEED_ENABLED: "false",
    // Prometheus scrapes /metrics, and port 3000 is open to the operators' CIDRs too, so /metrics
    // asks for credentials: pkg/api/http_server.go metricsEndpoint answers 401 without them once
    // [metrics] basic_auth_username and basic_auth_password are both set (pkg/setting reads them
    // after $__file{} expansion, so Grafana reads the password file itself).
    GF_METRICS_ENABLED: "true",
    GF_METRICS_BASIC_AUTH_USERNAME: GRAFANA_METRICS_USER,
    GF_METRICS_BASIC_AUTH_PASSWORD: grafanaFileRef(GRAFANA_METRICS_PASSWORD_PATH),
    GF_UNIFIED_ALERTING_ENABLED: "true",
    ...(options.homeDashboardPath ? { GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: options.homeDashboardPath } : {}),
    ...(ctx.config.metricsStore === "amp" ? AMP_SIGV4_ENVIRONMENT : {}),
  };
}

/**
 * With metricsStore=amp, what Grafana needs to sign the Prometheus data source's requests with the
 * instance role (conf/defaults.ini has all three keys, so GF_ overrides apply):
 * - [auth] sigv4_auth_enabled (default false): pkg/infra/httpclient/httpclientprovider/
 *   http_client_provider.go adds SigV4Middleware only when cfg.SigV4AuthEnabled, and the data
 *   source service builds SigV4 options only then (pkg/services/datasources/service/datasource.go).
 * - [aws] allowed_auth_providers (default "default,keys,credentials"): grafana-aws-sdk
 *   pkg/awsauth/auth.go GetConfig refuses an auth type not in the list ("trying to use non-allowed
 *   auth method"); only ec2_iam_role is allowed, so no data source can carry keys or a profile.
 *   ec2_iam_role loads the SDK's default config, whose last source is the instance role over IMDSv2.
 * - [aws] assume_role_enabled (default true): off, no role is assumed.
 * defaults.ini's [aws] forward_settings_to_plugins lists prometheus, so these reach its backend.
 */
export const AMP_SIGV4_ENVIRONMENT: Readonly<Record<string, string>> = {
  GF_AUTH_SIGV4_AUTH_ENABLED: "true",
  GF_AWS_ALLOWED_AUTH_PROVIDERS: "ec2_iam_role",
  GF_AWS_ASSUME_ROLE_ENABLED: "false",
};

/**
 * One `KEY="value"` line of a systemd EnvironmentFile. systemd's parser (src/basic/env-file.c)
 * expands no `$`, so a `$__file{}` reference reaches Grafana as written; any other `$`, a quote,
 * a backslash or a newline is refused.
 */
export function envLine([key, value]: [string, string]): string {
  if (!/^[A-Z][A-Z0-9_]*$/.test(key))
    throw new Error(`environment key ${JSON.stringify(key)}: expected A-Z, 0-9 and _`);
  const rest = value.replace(/^\$__file\{\/[A-Za-z0-9_./-]+\}$/, "");
  if (/[\n\r"\\$`]/.test(rest)) {
    throw new Error(
      `${key}=${JSON.stringify(value)}: expected no quote, backslash, backtick, newline or $ (except a whole $__file{/path})`,
    );
  }
  return `${key}="${value}"`;
}

export function renderGrafanaServerFiles(ctx: TemplateContext, options: GrafanaServerOptions = {}): RenderedFile[] {
  const env = Object.entries(grafanaEnvironment(ctx, options)).map(envLine);
  return [
    {
      path: GRAFANA_ENV_PATH,
      content: `# Rendered by templates/host/grafanaServer.ts.\n${env.join("\n")}\n`,
      mode: 0o640,
      owner: "root",
      group: "grafana",
    },
  ];
}

/**
 * The drop-in, carried in user data so it exists before the package is even installed: the
 * unit is enabled at bootstrap but skipped (at boot, after a reboot, on any start) until the
 * push has written the settings and both secrets. Restart=on-failure comes from the packaged
 * unit; only the pause between restarts is ours (systemd's 100 ms default would spend the
 * start limit in under a second).
 */
export function renderGrafanaDropIn(): string {
  return renderUnit({
    Unit: { ConditionPathExists: [...GRAFANA_START_REQUIRES] },
    Service: {
      EnvironmentFile: [GRAFANA_ENV_PATH, GRAFANA_SECRETS_ENV_PATH],
      RestartSec: 5,
    },
  });
}
