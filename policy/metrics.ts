/**
 * The metrics store (metricsStore=amp, infra/amp.ts): the AMP workspace carries the tags every
 * resource of the stack carries, so its owner, stack and cost show like the rest of the stack's.
 */
import { Workspace } from "@pulumi/aws/amp/workspace";
import { validateResourceOfType, type ResourceValidationPolicy } from "@pulumi/policy";
import { BASE_TAG_KEYS } from "../facts/naming";
import { subject, withFix } from "./subject";

export const ampWorkspaceTagged: ResourceValidationPolicy = {
  name: "amp-workspace-tagged",
  description: `Every AMP workspace carries the tags ${BASE_TAG_KEYS.join(", ")} and an alias.`,
  enforcementLevel: "advisory",
  validateResource: validateResourceOfType(Workspace, (workspace, args, report) => {
    const tags: Record<string, string> = { ...(workspace.tags ?? {}) };
    const missing = BASE_TAG_KEYS.filter((key) => !tags[key]);
    const fix = "tag it with baseTags() and alias it after the stack (infra/amp.ts does)";
    if (missing.length > 0) report(withFix(`${subject(args)} lacks the tags ${missing.join(", ")}`, fix));
    if (!workspace.alias) report(withFix(`${subject(args)} has no alias naming its stack`, fix));
  }),
};
