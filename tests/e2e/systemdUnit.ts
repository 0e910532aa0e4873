/**
 * Reads the rendered systemd units back (the e2e run may not import their internals): sections,
 * Environment= assignments and ExecStart= words with systemd's quoting rules.
 */

export type UnitSections = ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;

export function parseUnit(text: string): UnitSections {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    if (!current || eq <= 0) throw new Error(`not a unit line: ${JSON.stringify(raw)}`);
    const key = line.slice(0, eq).trim();
    const list = current.get(key) ?? [];
    list.push(line.slice(eq + 1).trim());
    current.set(key, list);
  }
  return sections;
}

/** Splits a value into words: double or single quotes group, backslash escapes (systemd's rules). */
export function splitWords(value: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < value.length) {
    while (i < value.length && /\s/.test(value[i])) i += 1;
    if (i >= value.length) break;
    let word = "";
    while (i < value.length && !/\s/.test(value[i])) {
      const c = value[i];
      if (c === '"' || c === "'") {
        const end = value.indexOf(c, i + 1);
        let j = i + 1;
        if (end < 0) throw new Error(`unterminated quote in ${JSON.stringify(value)}`);
        while (j < value.length && value[j] !== c) {
          if (value[j] === "\\" && c === '"') {
            word += value[j + 1] ?? "";
            j += 2;
          } else {
            word += value[j];
            j += 1;
          }
        }
        if (j >= value.length) throw new Error(`unterminated quote in ${JSON.stringify(value)}`);
        i = j + 1;
      } else if (c === "\\") {
        word += value[i + 1] ?? "";
        i += 2;
      } else {
        word += c;
        i += 1;
      }
    }
    words.push(word);
  }
  return words;
}

function section(unit: UnitSections, name: string): ReadonlyMap<string, readonly string[]> {
  const s = unit.get(name);
  if (!s) throw new Error(`the unit has no [${name}] section`);
  return s;
}

/** Every Environment= assignment of [Service], later ones winning as in systemd. */
export function unitEnvironment(unit: UnitSections): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of section(unit, "Service").get("Environment") ?? []) {
    for (const word of splitWords(line)) {
      const eq = word.indexOf("=");
      if (eq <= 0) throw new Error(`not an assignment: ${word}`);
      env[word.slice(0, eq)] = word.slice(eq + 1);
    }
  }
  return env;
}

/** A single-valued [Service] directive. */
export function serviceDirective(unit: UnitSections, key: string): string {
  const values = section(unit, "Service").get(key) ?? [];
  if (values.length !== 1) throw new Error(`expected one ${key}=, found ${values.length}`);
  return values[0];
}
