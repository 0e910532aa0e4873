/**
 * Reading the running stack's configuration: the one part of configuration that needs Pulumi.
 * What the keys are and how they are checked lives in facts/config.ts; here the settings come
 * from Pulumi's runtime, and problems become a Pulumi error before any resource is declared.
 */
import * as pulumi from "@pulumi/pulumi";
import { validateConfig, type ConfigSource, type StackConfig } from "../facts/config";

/** A RunError, so Pulumi prints the problems without a stack trace. */
export class ConfigError extends pulumi.RunError {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid stack configuration (nothing was created):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** The running stack's configuration, raw: secrets decrypted, not yet wrapped as outputs. */
export function pulumiConfigSource(project: string): ConfigSource {
  // Which keys are secret is known to Pulumi's runtime but not part of its typed API: the
  // engine passes the list in PULUMI_CONFIG_SECRET_KEYS, which the runtime keeps in its store.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const runtimeConfig = require("@pulumi/pulumi/runtime/config") as { isConfigSecret?: (key: string) => boolean };
  const state = require("@pulumi/pulumi/runtime/state") as { getStore?: () => { config: Record<string, string> } };
  /* eslint-enable @typescript-eslint/no-require-imports */
  const secretKeysKnown = () => Boolean(state.getStore?.().config.PULUMI_CONFIG_SECRET_KEYS);
  const fullKey = (key: string) => (key.includes(":") ? key : `${project}:${key}`);
  return {
    get: (key) => pulumi.runtime.getConfig(fullKey(key)),
    isSecret: (key) => (runtimeConfig.isConfigSecret?.(fullKey(key)) ? true : secretKeysKnown() ? false : undefined),
  };
}

/** Reads and validates every key; throws ConfigError listing every problem found. */
export function loadConfig(source: ConfigSource, ctx: { project: string; stack: string }): StackConfig {
  const result = validateConfig(source, ctx);
  if (!result.ok) throw new ConfigError(result.problems);
  return result.config;
}
