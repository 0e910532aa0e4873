/**
 * IAM policy documents as the AWS provider takes them (JSON text, or an object it serialises),
 * read into statements; shared by the IAM and bucket policies.
 */
export interface Statement {
  readonly Effect?: string;
  readonly Action?: string | readonly string[];
  readonly NotAction?: string | readonly string[];
  readonly Resource?: string | readonly string[];
  readonly NotResource?: string | readonly string[];
  readonly Principal?: unknown;
  readonly Condition?: Record<string, Record<string, unknown>>;
}

/** IAM fields that take one value or a list of them. */
export const many = (value: unknown): string[] =>
  value === undefined ? [] : typeof value === "string" ? [value] : [...(value as readonly string[])];

/** The document's statements (a single statement object counts as one), or undefined if it is not JSON. */
export function statementsOf(document: unknown): Statement[] | undefined {
  let parsed: unknown = document;
  if (typeof document === "string") {
    try {
      parsed = JSON.parse(document);
    } catch {
      return undefined;
    }
  }
  const statement = (parsed as { Statement?: Statement | Statement[] } | null | undefined)?.Statement;
  return Array.isArray(statement) ? statement : statement ? [statement] : [];
}
