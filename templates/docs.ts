/** README.md's alert runbooks, rendered from the alert table (a test keeps the README in step). */
import type { StackConfig } from "../infra/config";
import { alertDefinitions } from "./alerts";

const title = (anchor: string) => anchor.replace(/-/g, " ").replace(/^./, (c) => c.toUpperCase());

export function runbookMarkdown(config: StackConfig): string {
  return alertDefinitions(config)
    .map((def) => {
      const rule = `\`${def.expr} ${def.op} ${def.threshold}\` for ${def.for}`;
      return [
        `### ${title(def.runbook)}`,
        "",
        `**${def.name}** (${def.severity}): ${rule}.`,
        "",
        def.runbookSteps,
      ].join("\n");
    })
    .join("\n\n");
}
