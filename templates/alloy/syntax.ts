/**
 * A small typed model of Alloy's configuration syntax (formerly River) and its printer.
 *
 * The syntax is a list of statements: attributes (`name = value`) and blocks
 * (`a.b.c "label" { ... }`). Values are strings, numbers, booleans, null, lists `[ ... ]`,
 * objects `{ "key" = value, ... }` and expressions (references such as
 * `loki.write.default.receiver`, or function calls), which are printed verbatim.
 */

/** An expression printed as is: a component reference or a function call. */
export class AlloyExpr {
  constructor(readonly text: string) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(\(.*\))?$/s.test(text)) {
      throw new Error(`not a reference or call expression: ${JSON.stringify(text)}`);
    }
  }
}

export type AlloyValue = string | number | boolean | null | AlloyExpr | readonly AlloyValue[] | AlloyObject;
/** An object literal; keys are always printed as quoted strings. */
export interface AlloyObject {
  readonly [key: string]: AlloyValue;
}

export interface AlloyAttribute {
  readonly kind: "attribute";
  readonly name: string;
  readonly value: AlloyValue;
}

export interface AlloyBlock {
  readonly kind: "block";
  /** Dotted block name, e.g. `loki.source.file` or `stage.logfmt`. */
  readonly name: string;
  readonly label?: string;
  readonly body: readonly AlloyStatement[];
}

export interface AlloyComment {
  readonly kind: "comment";
  readonly text: string;
}

export type AlloyStatement = AlloyAttribute | AlloyBlock | AlloyComment;

export const expr = (text: string): AlloyExpr => new AlloyExpr(text);
export const attr = (name: string, value: AlloyValue): AlloyAttribute => ({ kind: "attribute", name, value });
export const comment = (text: string): AlloyComment => ({ kind: "comment", text });
export function block(name: string, label: string | undefined, body: readonly AlloyStatement[]): AlloyBlock {
  return label === undefined ? { kind: "block", name, body } : { kind: "block", name, label, body };
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BLOCK_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const KEYWORDS = new Set(["true", "false", "null"]);

/**
 * A double-quoted string literal. Backslash, double quote and the usual control characters get
 * their short escapes; any other control character (and U+2028/9, for safety) becomes \uXXXX.
 * These escapes are common to Alloy's (Go-style) strings and JSON.
 */
export function quoteString(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    if (ch === "\\") out += "\\\\";
    else if (ch === '"') out += '\\"';
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f || code === 0x2028 || code === 0x2029) {
      out += `\\u${code.toString(16).padStart(4, "0")}`;
    } else out += ch;
  }
  return `${out}"`;
}

function isObject(value: AlloyValue): value is AlloyObject {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof AlloyExpr);
}

function isScalar(value: AlloyValue): boolean {
  return value === null || typeof value !== "object" || value instanceof AlloyExpr;
}

export function renderValue(value: AlloyValue, indent = 0): string {
  const pad = "  ".repeat(indent + 1);
  const close = "  ".repeat(indent);
  if (value === null) return "null";
  if (typeof value === "string") return quoteString(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`Alloy has no literal for ${value}`);
    return String(value);
  }
  if (value instanceof AlloyExpr) return value.text;
  if (Array.isArray(value)) {
    const items = value as readonly AlloyValue[];
    if (items.length === 0) return "[]";
    if (items.every(isScalar)) return `[${items.map((v) => renderValue(v, indent)).join(", ")}]`;
    return `[\n${items.map((v) => `${pad}${renderValue(v, indent + 1)},\n`).join("")}${close}]`;
  }
  if (isObject(value)) {
    const entries = Object.entries(value);
    if (entries.length === 0) return "{}";
    return `{\n${entries.map(([k, v]) => `${pad}${quoteString(k)} = ${renderValue(v, indent + 1)},\n`).join("")}${close}}`;
  }
  throw new Error(`unsupported Alloy value: ${typeof value}`);
}

function renderStatements(statements: readonly AlloyStatement[], indent: number): string {
  const pad = "  ".repeat(indent);
  const lines: string[] = [];
  statements.forEach((s, i) => {
    // A blank line before every block but the first statement of a body keeps files readable.
    if (s.kind === "block" && i > 0 && statements[i - 1].kind !== "comment") lines.push("");
    if (s.kind === "comment") {
      if (i > 0 && statements[i - 1].kind !== "comment") lines.push("");
      for (const line of s.text.split("\n")) lines.push(`${pad}//${line ? ` ${line}` : ""}`);
    } else if (s.kind === "attribute") {
      if (!IDENTIFIER.test(s.name) || KEYWORDS.has(s.name)) throw new Error(`invalid attribute name: ${s.name}`);
      lines.push(`${pad}${s.name} = ${renderValue(s.value, indent)}`);
    } else {
      if (!BLOCK_NAME.test(s.name)) throw new Error(`invalid block name: ${s.name}`);
      const header = s.label === undefined ? s.name : `${s.name} ${quoteString(s.label)}`;
      if (s.body.length === 0) lines.push(`${pad}${header} {}`);
      else lines.push(`${pad}${header} {`, renderStatements(s.body, indent + 1), `${pad}}`);
    }
  });
  return lines.join("\n");
}

/** The whole file: statements separated as `alloy fmt` would, ending in a newline. */
export function renderAlloy(statements: readonly AlloyStatement[]): string {
  return `${renderStatements(statements, 0)}\n`;
}
