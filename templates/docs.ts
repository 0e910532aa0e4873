/** docs/runbooks.md's alert runbooks, rendered from the alert table (a test keeps the page in step). */
import type { StackConfig } from "../facts/config";
import { alertDefinitions } from "./alerts";

export function runbookMarkdown(config: StackConfig): string {
  return alertDefinitions(config)
    .map((def) => {
      const rule = `\`${def.expr} ${def.op} ${def.threshold}\` for ${def.for}`;
      const source = def.datasource === "loki" ? " (LogQL on Loki, evaluated by Grafana)" : "";
      return [
        `### ${def.title}`,
        "",
        `**${def.name}** (${def.severity}): ${rule}${source}.`,
        "",
        def.runbookSteps,
      ].join("\n");
    })
    .join("\n\n");
}
