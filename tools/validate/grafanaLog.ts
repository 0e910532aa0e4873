/**
 * CI's check of Grafana's log after the pushes (.github/workflows/validate-configs.yml): no
 * error from provisioning, alerting, dashboards or data sources. Grafana logs logfmt
 * (pkg/infra/log: `logger=… t=… level=error msg=…`, the logger first), so the check reads each
 * line's keys rather than their order: a pattern such as `level=error.*provisioning` never sees a
 * logger named before the level.
 *
 *   journalctl -u grafana-server -o cat | node build/tools/validate/grafanaLog.js
 */
import * as fs from "node:fs";

/** What an error must concern to fail the check (in its logger or its message). */
const CONCERNS = /provisioning|alerting|ngalert|dashboard|datasource/i;

/** The key=value pairs of one logfmt line (values bare or double-quoted with \" escapes). */
export function logfmt(line: string): Map<string, string> {
  const pairs = new Map<string, string>();
  const re = /([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (const m of line.matchAll(re)) {
    const raw = m[2];
    pairs.set(m[1], raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, "$1") : raw);
  }
  return pairs;
}

/** The lines of `log` that are errors about provisioning, alerting, dashboards or data sources. */
export function provisioningErrors(log: string): string[] {
  return log.split("\n").filter((line) => {
    const kv = logfmt(line);
    const level = kv.get("level") ?? kv.get("lvl");
    if (level !== "error" && level !== "eror") return false;
    return CONCERNS.test(kv.get("logger") ?? "") || CONCERNS.test(kv.get("msg") ?? "");
  });
}

if (require.main === module) {
  const errors = provisioningErrors(fs.readFileSync(0, "utf8"));
  for (const e of errors) console.log(e);
  process.exit(errors.length > 0 ? 1 : 0);
}
