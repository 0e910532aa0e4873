/** A valid stack config and render context for template tests, with optional overrides. */
import { addressPlan } from "../../facts/addressing";
import type { StackConfig } from "../../facts/config";
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
