/**
 * A relabel evaluator with Prometheus' semantics, for checking the rules the program renders
 * (Alloy's `rule` blocks) against sample label sets. Facts encoded, from the sources:
 *
 * - grafana/alloy internal/component/common/relabel/relabel.go: a rule's defaults are action
 *   `replace`, separator `;`, regex `(.*)`, replacement `$1`; the regex is compiled as
 *   `^(?:<regex>)$` (fully anchored RE2); ComponentToPromRelabelConfigs hands the rules to
 *   Prometheus' relabel package unchanged.
 * - prometheus/prometheus model/relabel/relabel.go (ProcessBuilder, relabel): rules run top-down
 *   and the first drop ends the set; the value is the source labels' values (a missing label is
 *   "") joined by the separator; `replace` does nothing when the regex does not match, expands
 *   target and replacement with the match (Go's Regexp.Expand), and deletes the target when the
 *   result is empty; `labeldrop`/`labelkeep` match label names.
 * - Go's regexp Expand: `$name` takes the longest run of letters, digits and `_` (so `$1x` is the
 *   group named "1x"), `${name}` is explicit, `$$` is a literal `$`, an unknown or unmatched
 *   group expands to "".
 *
 * Only the constructs RE2 and ECMAScript read alike are accepted: a lookaround, a backreference
 * or a `(?P<` group is refused rather than evaluated with JavaScript's different meaning.
 */

export type RelabelAction = "replace" | "keep" | "drop" | "labeldrop" | "labelkeep";
const ACTIONS: readonly RelabelAction[] = ["replace", "keep", "drop", "labeldrop", "labelkeep"];

/** A rule as written in Alloy (every field optional, as there). */
export interface RelabelRule {
  readonly source_labels?: readonly string[];
  readonly separator?: string;
  readonly regex?: string;
  readonly target_label?: string;
  readonly replacement?: string;
  readonly action?: string;
}

export type LabelSet = Readonly<Record<string, string>>;

/** Alloy's defaults for an omitted field (relabel.go DefaultRelabelConfig). */
export const ALLOY_RULE_DEFAULTS = { separator: ";", regex: "(.*)", replacement: "$1", action: "replace" } as const;

const NOT_RE2 = [
  { pattern: /\(\?<?[=!]/, what: "a lookaround" },
  { pattern: /\\[1-9]/, what: "a backreference" },
  { pattern: /\(\?P?</, what: "a named group" },
];

/** The regex compiled the way Alloy compiles it: `^(?:<regex>)$`. */
export function anchored(regex: string): RegExp {
  for (const { pattern, what } of NOT_RE2) {
    if (pattern.test(regex)) throw new Error(`relabel regex ${JSON.stringify(regex)}: ${what} is not evaluated here`);
  }
  try {
    return new RegExp(`^(?:${regex})$`, "u");
  } catch (err) {
    throw new Error(`relabel regex ${JSON.stringify(regex)} does not compile: ${(err as Error).message}`);
  }
}

/** A group name in a template: letters, digits and `_` (unicode.IsLetter / IsDigit in Go). */
const GO_NAME = /^[\p{L}\p{Nd}_]+/u;

/** Go's Regexp.Expand of `template` with the groups of `match`. */
export function expand(template: string, match: RegExpExecArray): string {
  let out = "";
  for (let i = 0; i < template.length;) {
    const c = template[i];
    if (c !== "$") {
      out += c;
      i += 1;
      continue;
    }
    if (template[i + 1] === "$") {
      out += "$";
      i += 2;
      continue;
    }
    let name: string | undefined;
    let end = i + 1;
    if (template[i + 1] === "{") {
      const close = template.indexOf("}", i + 2);
      const inner = close < 0 ? "" : template.slice(i + 2, close);
      if (GO_NAME.exec(inner)?.[0] === inner && inner !== "") {
        name = inner;
        end = close + 1;
      }
    } else {
      const word = GO_NAME.exec(template.slice(i + 1));
      if (word) {
        name = word[0];
        end = i + 1 + word[0].length;
      }
    }
    if (name === undefined) {
      // Not a valid reference: Go copies the `$` and goes on.
      out += "$";
      i += 1;
      continue;
    }
    if (/^\d+$/.test(name)) out += match[Number(name)] ?? "";
    else out += match.groups?.[name] ?? "";
    i = end;
  }
  return out;
}

/** A label name Prometheus accepts as a replace target (model.LabelName.IsValid, legacy scheme). */
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The label set after the rules, or undefined when a rule dropped it. Bad rules (unknown action,
 * replace without target) throw, naming the rule, as Alloy refuses them at load.
 */
export function relabel(labels: LabelSet, rules: readonly RelabelRule[]): Record<string, string> | undefined {
  rules.forEach((rule, n) => {
    const action = (rule.action ?? ALLOY_RULE_DEFAULTS.action) as RelabelAction;
    if (!ACTIONS.includes(action)) {
      throw new Error(`rule ${n}: action ${JSON.stringify(rule.action)}: expected one of ${ACTIONS.join(", ")}`);
    }
    if (action === "replace" && !rule.target_label) throw new Error(`rule ${n}: replace needs a target_label`);
  });
  const out: Record<string, string> = { ...labels };
  for (const rule of rules) {
    const action = (rule.action ?? ALLOY_RULE_DEFAULTS.action) as RelabelAction;
    const re = anchored(rule.regex ?? ALLOY_RULE_DEFAULTS.regex);
    const value = (rule.source_labels ?? [])
      .map((l) => out[l] ?? "")
      .join(rule.separator ?? ALLOY_RULE_DEFAULTS.separator);
    switch (action) {
      case "drop":
        if (re.test(value)) return undefined;
        break;
      case "keep":
        if (!re.test(value)) return undefined;
        break;
      case "replace": {
        const match = re.exec(value);
        if (!match) break;
        const target = expand(rule.target_label as string, match);
        if (!LABEL_NAME.test(target)) break;
        const result = expand(rule.replacement ?? ALLOY_RULE_DEFAULTS.replacement, match);
        if (result === "") delete out[target];
        else out[target] = result;
        break;
      }
      case "labeldrop":
        for (const name of Object.keys(out)) if (re.test(name)) delete out[name];
        break;
      case "labelkeep":
        for (const name of Object.keys(out)) if (!re.test(name)) delete out[name];
        break;
    }
  }
  return out;
}
