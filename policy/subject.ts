/** How a violation names a resource: its kind and logical name, as `pulumi preview` lists them. */
export const subject = (r: { readonly type: string; readonly name: string }): string =>
  `${r.type.slice(r.type.lastIndexOf(":") + 1)} "${r.name}"`;

/** Every policy states what to do about it, so a failed preview is actionable on its own. */
export const withFix = (problem: string, fix: string): string => `${problem}. Fix: ${fix}.`;
