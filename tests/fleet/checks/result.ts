/** One check's verdict, and the wrapper that turns a thrown error into a failed check. */

export interface CheckResult {
  readonly name: string;
  /** The host the check ran on, or "fleet" for checks across hosts. */
  readonly host: string;
  readonly ok: boolean;
  readonly detail: string;
}

export const pass = (name: string, host: string, detail: string): CheckResult => ({ name, host, ok: true, detail });
export const fail = (name: string, host: string, detail: string): CheckResult => ({ name, host, ok: false, detail });

/** Runs `body`; an exception is that check's failure (with its message), never the run's end. */
export async function checked(
  name: string,
  host: string,
  body: () => Promise<{ ok: boolean; detail: string }>,
): Promise<CheckResult> {
  try {
    const { ok, detail } = await body();
    return { name, host, ok, detail };
  } catch (err) {
    return fail(name, host, `check could not run: ${(err as Error).message}`);
  }
}

/** One line of a command's output, squeezed, for a detail. */
export const oneLine = (text: string, max = 400): string => {
  const s = text.replace(/\s+/g, " ").trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
};
