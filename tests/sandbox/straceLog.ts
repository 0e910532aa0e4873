/**
 * Reads `strace -f -ff -o PREFIX` output (one PREFIX.<pid> file per thread, so no call is split
 * across lines by another thread) into calls: name and top-level arguments as strace prints them.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export interface Call {
  readonly pid: number;
  readonly name: string;
  readonly args: readonly string[];
  readonly line: string;
}

/** Splits an argument list at top-level commas (not inside (), [], {} or a quoted string). */
export function splitArgs(text: string): string[] {
  const args: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === "\\") i += 1;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if ("([{".includes(c)) depth += 1;
    else if (")]}".includes(c)) depth -= 1;
    else if (c === "," && depth === 0) {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = text.slice(start).trim();
  if (last !== "") args.push(last);
  return args;
}

/** The argument list of `name(...) = result`, `name(... <unfinished ...>` or `name(...) = ?`. */
function argumentText(rest: string): string {
  const unfinished = rest.indexOf(" <unfinished ...>");
  if (unfinished >= 0) return rest.slice(0, unfinished);
  const close = rest.lastIndexOf(") =");
  return close >= 0 ? rest.slice(0, close) : rest.replace(/\)\s*$/, "");
}

export function parseTraceLine(pid: number, line: string): Call | undefined {
  // Signals (---), exits (+++) and resumptions carry no new call.
  const m = /^([a-z_][a-z0-9_]*)\((.*)$/.exec(line);
  if (!m) return undefined;
  return { pid, name: m[1], args: splitArgs(argumentText(m[2])), line };
}

export function readTrace(dir: string, prefix: string): Call[] {
  const files = fs.readdirSync(dir).filter((f) => f.startsWith(`${prefix}.`));
  if (files.length === 0) throw new Error(`no strace output ${prefix}.* in ${dir}`);
  const calls: Call[] = [];
  for (const file of files) {
    const pid = Number(file.slice(prefix.length + 1));
    for (const line of fs.readFileSync(path.join(dir, file), "utf8").split("\n")) {
      const call = parseTraceLine(pid, line);
      if (call) calls.push(call);
    }
  }
  return calls;
}
