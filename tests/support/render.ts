/** A valid stack config and render context for template tests, with optional overrides. */
import { addressPlan } from "../../facts/addressing";
import type { StackConfig } from "../../facts/config";
import { ampEndpoints } from "../../facts/metricsStore";
import { loadConfig } from "../../infra/config";
import type { TemplateContext } from "../../templates/types";

export const TEST_BUCKET = "titan-observability-dev-loki-1a2b3c4d";

export function testConfig(overrides: Record<string, string> = {}, stack = "dev"): StackConfig {
  const values: Record<string, string> = {
    allowedCidrs: '["203.0.113.7/32"]',
    "aws:region": "us-east-1",
    ...overrides,
  };
  return loadConfig({ get: (k) => values[k], isSecret: () => true }, { project: "titan-observability", stack });
}

export function testContext(overrides: Record<string, string> = {}): TemplateContext {
  const config = testConfig(overrides);
  return { config, plan: addressPlan(config.vpcCidr, config.webCount), lokiBucket: TEST_BUCKET };
}

/** The workspace endpoint AWS reports for a test workspace (the workspace root, trailing slash). */
export const TEST_AMP_ENDPOINT =
  "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789/";

/** The render context of a metricsStore=amp stack, its workspace created. */
export function ampTestContext(overrides: Record<string, string> = {}): TemplateContext {
  const ctx = testContext({ ...overrides, metricsStore: "amp" });
  return { ...ctx, amp: ampEndpoints(TEST_AMP_ENDPOINT, ctx.config.region) };
}
