/** Names and tags (DESIGN.md decision 7), shared by every resource. */
import type { StackConfig } from "./config";

export type Tags = Record<string, string>;

/** `<project>-<stack>-<suffix>`: the Name tag and the prefix of AWS-side names. */
export const physicalName = (config: StackConfig, suffix: string): string =>
  `${config.project}-${config.stack}-${suffix}`;

/** Tags every taggable resource carries. */
export function baseTags(config: StackConfig, nameSuffix: string): Tags {
  return {
    Name: physicalName(config, nameSuffix),
    Environment: config.environment,
    Project: config.project,
    ManagedBy: "pulumi",
  };
}
