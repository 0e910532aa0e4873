/**
 * Values spliced into rendered shell (bootstrap, push scripts) are constants of this
 * repository or validated config; refuse anything the shell would interpret.
 */
const WORD = /^[A-Za-z0-9@%+=:,./_-]+$/;
const GLOB = /^[A-Za-z0-9@%+=:,./_*[\]-]+$/;

export function shellWord(value: string): string {
  if (!WORD.test(value)) throw new Error(`refusing to put ${JSON.stringify(value)} in a shell script`);
  return value;
}

/** A pattern for single quotes (an apt version glob): a word that may also hold `*` and `[...]`. */
export function shellGlob(value: string): string {
  if (!GLOB.test(value)) throw new Error(`refusing to put ${JSON.stringify(value)} in a shell script`);
  return value;
}
