/**
 * Renders a sample stack's files for CI to check with the real binaries at the pinned versions
 * (.github/workflows/validate-configs.yml):
 *
 *   node build/tools/validate/renderForValidation.js <dir> [--grafana-variant=slack|no-slack|amp]
 *
 * writes <dir>/loki/config.yml and <dir>/alloy/config.alloy, and for Grafana what its host gets,
 * in the program's variants (GRAFANA_VARIANTS: with or without a Slack webhook, and metricsStore=amp):
 * - <dir>/grafana/user-data/: the files user data writes before the package is installed (the
 *   drop-in that holds grafana-server until its settings exist, the apt pins), at host paths;
 * - <dir>/grafana/staging/: the push's staged tree, every rendered file at its host path (the
 *   first push: the alert rules carry one more rule, PROBE_RULE);
 * - <dir>/grafana/install.sh: the push's own install script for that staging directory (places
 *   the files with owner and mode, writes the secrets from stdin, restarts, waits, resets the
 *   admin password), run by CI as the push runs it over SSH;
 * - <dir>/grafana/second/staging/ and second/install.sh: the second push (PUSHES below), the
 *   same files except the alert rules, where the first push's extra rule is retired, and the
 *   contact points and policies, where remediation is turned off (pushContext);
 * - <dir>/grafana/push-stdin and admin_password (0600): fresh random secrets in the push's stdin
 *   order, and the password alone for the check.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { addressPlan } from "../../facts/addressing";
import { loadConfig } from "../../infra/config";
import { GRAFANA_STDIN_ORDER } from "../../infra/delivery/grafanaSecrets";
import { GRAFANA_PUSH } from "../../infra/delivery/pipeline";
import { installScript } from "../../infra/delivery/scripts";
import { ampEndpoints } from "../../facts/metricsStore";
import { SERVICES } from "../../facts/topology";
import { alertDefinitions, RETIRED_ALERTS, type RetiredAlert } from "../../templates/alerts";
import { renderAlloyFiles } from "../../templates/alloy/config";
import { alertRule, buildDashboards, type AlertRuleChanges } from "../../templates/grafana";
import { withPipelineDashboard } from "../../templates/grafana/pipelineDashboard";
import { GRAFANA_DROP_IN_PATH } from "../../templates/host/grafanaServer";
import { cloudConfigFor } from "../../templates/host/userData";
import { renderHostFiles } from "../../templates/index";
import { renderLokiConfig } from "../../templates/loki/config";
import type { RenderedFile, TemplateContext } from "../../templates/types";
import { APT_PREFERENCES_PATH } from "../../templates/host/aptPins";

export const SAMPLE_STACK = { project: "titan-observability", stack: "ci" } as const;
const SAMPLE_VALUES: Readonly<Record<string, string>> = {
  allowedCidrs: '["203.0.113.7/32"]',
  "aws:region": "us-east-1",
  webCount: "2",
  // Not Grafana's default, so CI proves the configured admin is the one created.
  grafanaAdminUser: "ci-operator",
};

/**
 * The program renders Grafana three ways: with a Slack webhook configured, or without one, and with
 * metricsStore=amp (AMP_VARIANTS), where the Prometheus data source is the SigV4 one on an AMP
 * workspace and grafana-server runs with SigV4 turned on and only ec2_iam_role allowed.
 *
 * What CI's boot of the amp variant proves: the pinned Grafana starts with those settings
 * (GF_AUTH_SIGV4_AUTH_ENABLED, GF_AWS_ALLOWED_AUTH_PROVIDERS, GF_AWS_ASSUME_ROLE_ENABLED), accepts
 * the SigV4 data source's provisioning file with the same uid, and provisions every dashboard and
 * alert rule against it, the log free of provisioning errors. What it cannot prove: the runner has
 * no AWS instance role and no workspace, so no query is signed with real credentials or answered by
 * AMP (the fake AMP endpoint of the fleet and the mocks' IAM statements cover what they can).
 */
export const GRAFANA_VARIANTS = {
  slack: { slackWebhookConfigured: true },
  "no-slack": { slackWebhookConfigured: false },
  amp: { slackWebhookConfigured: true },
} as const;
export type GrafanaVariant = keyof typeof GRAFANA_VARIANTS;
export const AMP_VARIANTS: readonly GrafanaVariant[] = ["amp"];

/** A workspace endpoint as AWS reports it; no one answers it from CI. */
export const SAMPLE_AMP_ENDPOINT =
  "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-00000000-0000-4000-8000-000000000000/";

/** The sample stack as the variant configures it: the amp variant with metricsStore=amp and its workspace. */
export function variantContext(sample: TemplateContext, variant: GrafanaVariant): TemplateContext {
  if (!AMP_VARIANTS.includes(variant)) return sample;
  const config = { ...sample.config, metricsStore: "amp" as const };
  return { ...sample, config, amp: ampEndpoints(SAMPLE_AMP_ENDPOINT, config.region) };
}

export function grafanaVariant(value: string): GrafanaVariant {
  if (!Object.hasOwn(GRAFANA_VARIANTS, value))
    throw new Error(
      `--grafana-variant=${JSON.stringify(value)}: expected one of ${Object.keys(GRAFANA_VARIANTS).join(", ")}`,
    );
  return value as GrafanaVariant;
}

/** A syntactically valid webhook no one answers: Grafana stores it and never calls it while booting. */
const SAMPLE_WEBHOOK = "https://hooks.slack.com/services/T00000000/B00000000/ci-not-a-hook";

export function sampleContext(): TemplateContext {
  const config = loadConfig({ get: (key) => SAMPLE_VALUES[key], isSecret: () => undefined }, SAMPLE_STACK);
  return {
    config,
    plan: addressPlan(config.vpcCidr, config.webCount),
    lokiBucket: `${SAMPLE_STACK.project}-${SAMPLE_STACK.stack}-loki-example`,
  };
}

/**
 * CI pushes to its Grafana twice, to prove a rule that leaves the table leaves Grafana (file
 * provisioning only deletes what `deleteRules` names: grafana/grafana pkg/services/provisioning/
 * alerting/rules_provisioner.go). The first push ships the table plus PROBE_RULE; the second
 * ships the table with PROBE_RULE retired, and with a uid Grafana never had retired too (the
 * delete is a no-op then, pkg/services/ngalert/provisioning/alert_rules.go DeleteAlertRule, and
 * must not stop Grafana from starting).
 */
export const PROBE_RULE = { uid: "titan-ci-removed-probe", name: "CiRemovedRuleProbe" } as const;
export const NEVER_SHIPPED_UID = "titan-ci-never-shipped";
export const PUSHES = ["first", "second"] as const;
export type Push = (typeof PUSHES)[number];

function ciRetired(uid: string, why: string): RetiredAlert {
  return { uid, name: uid, retired: "2026-12-06", why };
}

/** The extra rule of the first push and the retired list of the second, on top of the table's. */
export function pushRuleChanges(ctx: TemplateContext, push: Push): AlertRuleChanges {
  if (push === "second")
    return {
      retired: [
        ...RETIRED_ALERTS,
        ciRetired(PROBE_RULE.uid, "CI's first push shipped it"),
        ciRetired(NEVER_SHIPPED_UID, "never shipped: deleting it must be a no-op"),
      ],
    };
  const [base] = alertDefinitions(ctx.config);
  const panel = withPipelineDashboard(ctx.config, buildDashboards(ctx.config)).alertPanels.get(base.uid);
  if (!panel) throw new Error(`alert ${base.uid} has no dashboard panel`);
  return {
    extra: [
      alertRule({ ...base, ...PROBE_RULE, summary: "CI probe: shipped once, then retired", noDataState: "OK" }, panel),
    ],
  };
}

/**
 * The stack as each push renders it: the first with remediation as configured (on: a signed
 * webhook contact point and a route per web host, and deletes for the slots past webCount, which
 * Grafana never had), the second with remediation off, so CI sees the stored webhook contact
 * points deleted again (templates/grafana/alerting.ts contactPointsFile).
 */
export function pushContext(ctx: TemplateContext, push?: Push): TemplateContext {
  return push === "second" ? { ...ctx, config: { ...ctx.config, remediation: "off" } } : ctx;
}

/** Everything the push installs on the Grafana host in this variant, as rendered. */
export function grafanaHostFiles(sample: TemplateContext, variant: GrafanaVariant, push?: Push): RenderedFile[] {
  const ctx = pushContext(variantContext(sample, variant), push);
  const host = ctx.plan.hosts.find((h) => h.role === "grafana");
  if (!host) throw new Error("the sample plan has no Grafana host");
  return renderHostFiles(ctx, host, {
    ...GRAFANA_VARIANTS[variant],
    grafanaRootUrl: `http://127.0.0.1:${SERVICES.grafana.port}`,
    ...(push ? { alertRuleChanges: pushRuleChanges(ctx, push) } : {}),
  });
}

/** The user-data files that must exist before grafana-server is installed and enabled. */
export function grafanaUserDataFiles(): { path: string; content: string; permissions: string }[] {
  const wanted = [GRAFANA_DROP_IN_PATH, APT_PREFERENCES_PATH];
  const files = cloudConfigFor({ role: "grafana", dataVolumeId: "vol-0123456789abcdef0" }).write_files.filter((f) =>
    wanted.includes(f.path),
  );
  if (files.length !== wanted.length) throw new Error(`Grafana's user data lacks one of ${wanted.join(", ")}`);
  return files;
}

/** The push's standard input: fresh secrets in GRAFANA_STDIN_ORDER, one a line. */
export function pushStdin(variant: GrafanaVariant): { stdin: string; password: string } {
  const values: Record<(typeof GRAFANA_STDIN_ORDER)[number], string> = {
    adminPassword: randomBytes(18).toString("base64url"),
    secretKey: randomBytes(32).toString("hex"),
    slackWebhookUrl: GRAFANA_VARIANTS[variant].slackWebhookConfigured ? SAMPLE_WEBHOOK : "",
    metricsPassword: randomBytes(18).toString("base64url"),
    // The remediation contact points sign with it (remediation is on in every variant).
    remediationHmacSecret: randomBytes(24).toString("hex"),
  };
  return { stdin: `${GRAFANA_STDIN_ORDER.map((k) => values[k]).join("\n")}\n`, password: values.adminPassword };
}

function write(target: string, content: string, mode: number): void {
  fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
  fs.writeFileSync(target, content, { mode });
  fs.chmodSync(target, mode);
}

/** Writes the files; returns the paths written, relative to `dir`. */
export function renderForValidation(
  dir: string,
  variant: GrafanaVariant = "slack",
  ctx: TemplateContext = sampleContext(),
): string[] {
  const root = path.resolve(dir);
  const web = ctx.plan.hosts.find((h) => h.role === "web");
  if (!web) throw new Error("the sample plan has no web host");
  const alloyConfig = renderAlloyFiles(ctx, web).find((f) => f.path.endsWith(".alloy"));
  if (!alloyConfig) throw new Error("renderAlloyFiles produced no .alloy file");

  const grafana = grafanaHostFiles(ctx, variant, "first");
  const staging = path.join(root, "grafana", "staging");
  const second = grafanaHostFiles(ctx, variant, "second");
  const secondStaging = path.join(root, "grafana", "second", "staging");
  const secrets = pushStdin(variant);
  // World-readable like the rendered files on the host (CI's runner user stages them, sudo installs them).
  const files: [string, string, number][] = [
    ["loki/config.yml", renderLokiConfig(ctx).content, 0o644],
    ["alloy/config.alloy", alloyConfig.content, 0o644],
    ...grafana.map((f): [string, string, number] => [path.posix.join("grafana/staging", f.path), f.content, 0o644]),
    ...grafanaUserDataFiles().map((f): [string, string, number] => [
      path.posix.join("grafana/user-data", f.path),
      f.content,
      parseInt(f.permissions, 8),
    ]),
    ["grafana/install.sh", `${installScript({ staging, files: grafana, ...GRAFANA_PUSH })}\n`, 0o755],
    ...second.map((f): [string, string, number] => [
      path.posix.join("grafana/second/staging", f.path),
      f.content,
      0o644,
    ]),
    [
      "grafana/second/install.sh",
      `${installScript({ staging: secondStaging, files: second, ...GRAFANA_PUSH })}\n`,
      0o755,
    ],
    ["grafana/push-stdin", secrets.stdin, 0o600],
    ["grafana/admin_password", secrets.password, 0o600],
  ];
  for (const [rel, content, mode] of files) write(path.join(root, rel), content, mode);
  return files.map(([rel]) => rel);
}

if (require.main === module) {
  const [dir, ...flags] = process.argv.slice(2);
  if (!dir || dir.startsWith("--")) {
    console.error(
      "usage: node build/tools/validate/renderForValidation.js <output-dir> [--grafana-variant=slack|no-slack|amp]",
    );
    process.exit(2);
  }
  let variant: GrafanaVariant = "slack";
  for (const flag of flags) {
    const m = /^--grafana-variant=(.*)$/.exec(flag);
    if (!m) {
      console.error(`unknown argument ${JSON.stringify(flag)}: expected --grafana-variant=slack|no-slack|amp`);
      process.exit(2);
    }
    variant = grafanaVariant(m[1]);
  }
  for (const rel of renderForValidation(dir, variant)) console.log(path.join(dir, rel));
}
