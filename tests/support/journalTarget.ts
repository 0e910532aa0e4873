/**
 * The labels Alloy's loki.source.journal gives one journal entry, before any loki.process stage.
 * From grafana/alloy internal/component/loki/source/journal/tailer.go (newTailerWithJournal,
 * Start, setLabels; internal/target/journaltarget.go formatter in earlier 1.x, same behaviour
 * here): the constant labels include `job` = the component's id; every field becomes
 * `__journal_<field in lower case>` (PRIORITY also `__journal_priority_keyword`); an entry
 * without MESSAGE is skipped; the relabel rules run and may drop the entry; labels starting with
 * `__` are removed, and an entry left without labels is not sent.
 */
import { relabel, type LabelSet, type RelabelRule } from "./relabel";

const PRIORITY_KEYWORDS: Readonly<Record<string, string>> = Object.fromEntries(
  ["emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"].map((k, i) => [String(i), k]),
);

/** Labels of the entry as sent by the component `componentId`, or undefined when it is not sent. */
export function journalEntryLabels(
  fields: LabelSet,
  componentId: string,
  rules: readonly RelabelRule[],
): Record<string, string> | undefined {
  if (!fields.MESSAGE) return undefined;
  const entry: Record<string, string> = { job: componentId };
  for (const [field, value] of Object.entries(fields)) {
    if (field === "PRIORITY") entry.__journal_priority_keyword = PRIORITY_KEYWORDS[value] ?? value;
    entry[`__journal_${field.toLowerCase()}`] = value;
  }
  const processed = relabel(entry, rules);
  if (processed === undefined) return undefined;
  const sent = Object.fromEntries(Object.entries(processed).filter(([name]) => !name.startsWith("__")));
  return Object.keys(sent).length === 0 ? undefined : sent;
}
