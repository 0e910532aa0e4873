/** Names and tags (docs/architecture.md decision 7), shared by every resource. */
import type { StackConfig } from "./config";

export type Tags = Record<string, string>;

/** `<project>-<stack>`: names a resource that stands for the whole stack (the AMP workspace's alias). */
export const stackName = (config: StackConfig): string => `${config.project}-${config.stack}`;

/** `<project>-<stack>-<suffix>`: the Name tag and the prefix of AWS-side names. */
export const physicalName = (config: StackConfig, suffix: string): string => `${stackName(config)}-${suffix}`;

/**
 * Tags every host carries: ownership (Project, Environment, ManagedBy) and what Prometheus' EC2
 * discovery filters and relabels on (templates/prometheus/config.ts: Scrape, Project,
 * Environment, Role, Name). The policy pack's hosts-tagged policy requires exactly these.
 */
export const HOST_TAG_KEYS = ["Name", "Project", "Environment", "Role", "ManagedBy", "Scrape"] as const;

/** The tags every taggable resource carries (baseTags); the policy pack checks them on the AMP workspace. */
export const BASE_TAG_KEYS = ["Name", "Environment", "Project", "ManagedBy"] as const;

/** Tags every taggable resource carries. */
export function baseTags(config: StackConfig, nameSuffix: string): Record<(typeof BASE_TAG_KEYS)[number], string> {
  return {
    Name: physicalName(config, nameSuffix),
    Environment: config.environment,
    Project: config.project,
    ManagedBy: "pulumi",
  };
}
