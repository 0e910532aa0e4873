/**
 * The command line systemd builds from a unit's ExecStart= and its environment, so a test can
 * start a stand-in exactly as its packaged unit would. systemd.service(5), "Command lines":
 * `${VAR}` becomes one word, a bare `$VAR` is split at whitespace into several (an empty one
 * into none). systemd.exec(5), EnvironmentFile=: `KEY=value` lines, `#`/`;` comments, values
 * optionally in double or single quotes.
 */

export function parseEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`environment file line ${JSON.stringify(raw)}: expected KEY=value`);
    const value = m[2];
    const quoted = /^"(.*)"$/.exec(value) ?? /^'(.*)'$/.exec(value);
    env[m[1]] = quoted ? quoted[1] : value;
  }
  return env;
}

export function expandExecStart(execStart: string, env: Readonly<Record<string, string>>): string[] {
  const lookup = (name: string): string => {
    const v = env[name];
    if (v === undefined) throw new Error(`ExecStart uses $${name}, which the environment does not set`);
    return v;
  };
  const argv: string[] = [];
  for (const word of execStart.trim().split(/\s+/)) {
    const bare = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (bare) {
      argv.push(
        ...lookup(bare[1])
          .split(/\s+/)
          .filter((w) => w !== ""),
      );
      continue;
    }
    argv.push(word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => lookup(name)));
  }
  return argv;
}
