/**
 * Renders the Loki and Alloy configs of a sample stack into a directory, for CI to check them
 * with the real binaries at the pinned versions (.github/workflows/validate-configs.yml):
 *
 *   node build/templates/validate/renderForValidation.js <dir>
 *
 * writes <dir>/loki/config.yml, <dir>/alloy/config.alloy, Grafana's provisioning and
 * dashboards under <dir>/grafana/ (the tree under /etc/grafana), and <dir>/grafana/titan.env.list:
 * the environment the host's unit gets, in `docker run --env-file` form. World-readable: the
 * containers run as their own users, and the sample holds no secret (its admin password is a
 * `$__file{}` reference; CI writes that file).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { addressPlan } from "../../infra/addressing";
import { loadConfig } from "../../infra/config";
import { renderAlloyFiles } from "../alloy/config";
import { DASHBOARDS_DIR, PROVISIONING_DIR, renderGrafanaFiles } from "../grafana";
import { GRAFANA_ENV_PATH } from "../host/grafanaServer";
import { renderHostFiles } from "../index";
import { renderLokiConfig } from "../loki/config";
import type { TemplateContext } from "../types";

export const SAMPLE_STACK = { project: "titan-observability", stack: "ci" } as const;
const SAMPLE_VALUES: Readonly<Record<string, string>> = {
  allowedCidrs: '["203.0.113.7/32"]',
  "aws:region": "us-east-1",
  webCount: "2",
  // Not Grafana's default, so CI proves the configured admin is the one created.
  grafanaAdminUser: "ci-operator",
};

export function sampleContext(): TemplateContext {
  const config = loadConfig({ get: (key) => SAMPLE_VALUES[key], isSecret: () => undefined }, SAMPLE_STACK);
  return {
    config,
    plan: addressPlan(config.vpcCidr, config.webCount),
    lokiBucket: `${SAMPLE_STACK.project}-${SAMPLE_STACK.stack}-loki-example`,
  };
}

/** Writes the files; returns the paths written, relative to `dir`. */
export function renderForValidation(dir: string, ctx: TemplateContext = sampleContext()): string[] {
  const web = ctx.plan.hosts.find((h) => h.role === "web");
  if (!web) throw new Error("the sample plan has no web host");
  const alloyConfig = renderAlloyFiles(ctx, web).find((f) => f.path.endsWith(".alloy"));
  if (!alloyConfig) throw new Error("renderAlloyFiles produced no .alloy file");
  const files: Record<string, string> = {
    "loki/config.yml": renderLokiConfig(ctx).content,
    "alloy/config.alloy": alloyConfig.content,
  };
  // With a webhook, so the Slack contact point and its environment reference are exercised too.
  for (const file of renderGrafanaFiles(ctx, { slackWebhookConfigured: true })) {
    const under = [PROVISIONING_DIR, DASHBOARDS_DIR].find((dir) => file.path.startsWith(`${dir}/`));
    if (!under) throw new Error(`unexpected Grafana file ${file.path}`);
    files[path.posix.join("grafana", path.posix.relative("/etc/grafana", file.path))] = file.content;
  }
  files["grafana/titan.env.list"] = dockerEnvList(grafanaEnvFile(ctx));
  for (const [rel, content] of Object.entries(files)) {
    const target = path.join(dir, rel);
    fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
    fs.writeFileSync(target, content, { mode: 0o644 });
    fs.chmodSync(target, 0o644);
  }
  return Object.keys(files);
}

/** The environment file the Grafana host receives from the push, exactly as rendered. */
export function grafanaEnvFile(ctx: TemplateContext): string {
  const host = ctx.plan.hosts.find((h) => h.role === "grafana");
  if (!host) throw new Error("the sample plan has no Grafana host");
  const env = renderHostFiles(ctx, host, { slackWebhookConfigured: true }).find((f) => f.path === GRAFANA_ENV_PATH);
  if (!env) throw new Error(`renderHostFiles produced no ${GRAFANA_ENV_PATH}`);
  return env.content;
}

/**
 * systemd's `KEY="value"` lines as Docker's env-file wants them (`KEY=value`, no quote handling).
 * The rendered file holds no escapes (grafanaServer.ts envLine refuses them), so unquoting is exact.
 */
export function dockerEnvList(envFile: string): string {
  const lines = envFile.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
  return `${lines
    .map((line) => {
      const m = /^([A-Z][A-Z0-9_]*)="([^"\\]*)"$/.exec(line);
      if (!m) throw new Error(`dockerEnvList: ${JSON.stringify(line)} is not a KEY="value" line`);
      return `${m[1]}=${m[2]}`;
    })
    .join("\n")}\n`;
}

if (require.main === module) {
  const dir = process.argv[2];
  if (!dir) {
    console.error("usage: node build/templates/validate/renderForValidation.js <output-dir>");
    process.exit(2);
  }
  for (const rel of renderForValidation(dir)) console.log(path.join(dir, rel));
}
