/**
 * The alert definitions as a Prometheus rule file. Production alerting is Grafana-managed;
 * this file exists so `promtool check rules` and `promtool test rules` can prove every PromQL
 * expression fires at its threshold after its pending period, stays quiet below, and resolves.
 * LogQL definitions are left out: Prometheus cannot run them.
 */
import { ALERT_GROUP, promqlDefinitions, type AlertDefinition } from "../alerts";
import { REMEDIATION_LABEL } from "../../facts/remediation";
import { toYaml } from "../yaml";
import type { AlertingRule, RuleFile } from "./model";

export const ruleExpression = (def: AlertDefinition): string => `${def.expr} ${def.op} ${def.threshold}`;

/** How Prometheus' template language prints the value in each unit. */
const VALUE_FORMAT: Record<AlertDefinition["unit"], string> = {
  percent: '{{ printf "%.1f" $value }}%',
  ratio: "{{ humanizePercentage $value }}",
  seconds: "{{ humanizeDuration $value }}",
  none: "{{ $value }}",
};

const prometheusTemplate = (def: AlertDefinition, text: string) =>
  text.replaceAll("{{ $value }}", VALUE_FORMAT[def.unit]);

/** The labels a firing alert carries besides its series' own: severity, and the fix it names (if any). */
export const ruleLabels = (def: AlertDefinition): Record<string, string> => ({
  severity: def.severity,
  ...(def.remediation === undefined ? {} : { [REMEDIATION_LABEL]: def.remediation }),
});

export function alertingRule(def: AlertDefinition): AlertingRule {
  if (def.datasource !== "prometheus") {
    throw new Error(
      `alert ${def.uid} has datasource ${def.datasource}: only PromQL definitions become Prometheus rules`,
    );
  }
  return {
    alert: def.name,
    expr: ruleExpression(def),
    for: def.for,
    labels: ruleLabels(def),
    annotations: {
      summary: prometheusTemplate(def, def.summary),
      description: prometheusTemplate(def, def.description),
      runbook: def.runbookSteps,
    },
  };
}

export function ruleFile(defs: readonly AlertDefinition[]): RuleFile {
  const rules = promqlDefinitions(defs).map(alertingRule);
  return { groups: [{ name: ALERT_GROUP.name, interval: ALERT_GROUP.interval, rules }] };
}

export const renderRuleFile = (defs: readonly AlertDefinition[]): string => toYaml(ruleFile(defs));
