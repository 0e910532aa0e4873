/**
 * Renders a sample stack's files for CI to check with the real binaries at the pinned versions
 * (.github/workflows/validate-configs.yml):
 *
 *   node build/tools/validate/renderForValidation.js <dir> [--grafana-variant=slack|no-slack]
 *
 * writes <dir>/loki/config.yml and <dir>/alloy/config.alloy, and for Grafana what its host gets,
 * in the program's two variants (with or without a Slack webhook):
 * - <dir>/grafana/user-data/: the files user data writes before the package is installed (the
 *   drop-in that holds grafana-server until its settings exist, the apt pins), at host paths;
 * - <dir>/grafana/staging/: the push's staged tree, every rendered file at its host path;
 * - <dir>/grafana/install.sh: the push's own install script for that staging directory (places
 *   the files with owner and mode, writes the secrets from stdin, restarts, waits, resets the
 *   admin password), run by CI as the push runs it over SSH;
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
import { SERVICES } from "../../facts/topology";
import { renderAlloyFiles } from "../../templates/alloy/config";
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

/** The program renders Grafana two ways: with a Slack webhook configured, or without one. */
export const GRAFANA_VARIANTS = {
  slack: { slackWebhookConfigured: true },
  "no-slack": { slackWebhookConfigured: false },
} as const;
export type GrafanaVariant = keyof typeof GRAFANA_VARIANTS;

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

/** Everything the push installs on the Grafana host in this variant, as rendered. */
export function grafanaHostFiles(ctx: TemplateContext, variant: GrafanaVariant): RenderedFile[] {
  const host = ctx.plan.hosts.find((h) => h.role === "grafana");
  if (!host) throw new Error("the sample plan has no Grafana host");
  return renderHostFiles(ctx, host, {
    ...GRAFANA_VARIANTS[variant],
    grafanaRootUrl: `http://127.0.0.1:${SERVICES.grafana.port}`,
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

  const grafana = grafanaHostFiles(ctx, variant);
  const staging = path.join(root, "grafana", "staging");
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
      "usage: node build/tools/validate/renderForValidation.js <output-dir> [--grafana-variant=slack|no-slack]",
    );
    process.exit(2);
  }
  let variant: GrafanaVariant = "slack";
  for (const flag of flags) {
    const m = /^--grafana-variant=(.*)$/.exec(flag);
    if (!m) {
      console.error(`unknown argument ${JSON.stringify(flag)}: expected --grafana-variant=slack|no-slack`);
      process.exit(2);
    }
    variant = grafanaVariant(m[1]);
  }
  for (const rel of renderForValidation(dir, variant)) console.log(path.join(dir, rel));
}
