import { UnknownValueError } from "@pulumi/policy";

/**
 * A computed output the program did not set reads as undefined in a preview, where the engine
 * sends it unknown; @pulumi/policy throws on reading an unknown (proxy.ts) and would turn the
 * whole stack policy into a "can't run" advisory. Only for values the program would have set
 * as literals: an unknown here means the provider will compute it.
 */
export function unlessComputed<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (err) {
    if (err instanceof UnknownValueError) return undefined;
    throw err;
  }
}

/** How a violation names a resource: its kind and logical name, as `pulumi preview` lists them. */
export const subject = (r: { readonly type: string; readonly name: string }): string =>
  `${r.type.slice(r.type.lastIndexOf(":") + 1)} "${r.name}"`;

/** Every policy states what to do about it, so a failed preview is actionable on its own. */
export const withFix = (problem: string, fix: string): string => `${problem}. Fix: ${fix}.`;
