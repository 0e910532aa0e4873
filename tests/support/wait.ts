/**
 * The one polling wait of the test suites: checks a real condition until it holds or a
 * deadline passes (never a fixed sleep standing in for the condition). The error names what was
 * awaited and the last reason the check gave.
 */

/** Thrown from a `waitFor` check to stop waiting at once (the awaited thing can no longer happen). */
export class Fatal extends Error {}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  { timeoutMs, intervalMs = 500, why }: { timeoutMs: number; intervalMs?: number; why?: () => string },
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof Fatal) throw new Error(`${what}: ${err.message}`);
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const detail = why ? why() : last;
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${detail ? `: ${detail}` : ""}`);
    }
    await pause(intervalMs);
  }
}
