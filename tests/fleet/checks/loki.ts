/**
 * Loki never ran on the package's example config: the stand-in records every start with the
 * first line of the config it read (standin.py, `started on config ...`), and systemd records
 * every start its unit condition skipped. Proof that the postinst's restart (and the
 * bootstrap's, and any boot before the push) really tried and was held back is the skipped
 * start; proof that every run was configured is that each start read the rendered file.
 */
import { LOKI_CONFIGURED_PATH } from "../../../templates/loki/config";
import type { CheckHost } from "./host";
import { checked, oneLine, type CheckResult } from "./result";

/** What the rendered config's first line says (templates/loki/config.ts renderLokiYaml). */
export const RENDERED_MARK = "Rendered by templates/loki/config.ts";
const START = /STAND-IN loki \S+: started on config (\S+) sha256 ([0-9a-f]{64}) first line: (.*)$/;
/**
 * systemd's line for a start its condition skipped (src/core/unit.c unit_start): "... was
 * skipped because of an unmet (before v252: a failed) condition check (ConditionPathExists=...)".
 */
const SKIPPED = new RegExp(
  `skipped because of an? (unmet|failed) condition check \\(ConditionPathExists=${LOKI_CONFIGURED_PATH.replaceAll(".", "\\.")}\\)`,
);

export interface LokiStarts {
  readonly skipped: number;
  readonly starts: readonly { readonly path: string; readonly firstLine: string }[];
}

export function lokiStarts(journal: string): LokiStarts {
  const lines = journal.split("\n");
  return {
    skipped: lines.filter((l) => SKIPPED.test(l)).length,
    starts: lines.flatMap((l) => {
      const m = START.exec(l);
      return m ? [{ path: m[1], firstLine: m[3] }] : [];
    }),
  };
}

/** A verdict on the journal: at least one held-back start, at least one start, each on the rendered config. */
export function judgeLokiStarts(s: LokiStarts): { ok: boolean; detail: string } {
  const unconfigured = s.starts.filter((x) => !x.firstLine.includes(RENDERED_MARK));
  if (unconfigured.length > 0)
    return {
      ok: false,
      detail: `${unconfigured.length} of ${s.starts.length} start(s) ran on another config: ${oneLine(unconfigured[0].firstLine)}`,
    };
  if (s.skipped === 0)
    return { ok: false, detail: "no start was ever held back: the test did not see the package's own start" };
  if (s.starts.length === 0) return { ok: false, detail: "Loki never started" };
  return {
    ok: true,
    detail: `${s.skipped} start(s) held back before the push, ${s.starts.length} start(s), each on the rendered config`,
  };
}

export function lokiNeverUnconfigured(h: CheckHost, when = "first boot"): Promise<CheckResult> {
  return checked(`${when}: Loki never ran on the package's example config`, h.name, async () => {
    const r = await h.exec(["journalctl", "--no-pager", "-o", "cat", "-u", "loki.service"], 120_000);
    if (r.status !== 0) return { ok: false, detail: `journalctl: ${oneLine(r.out)}` };
    return judgeLokiStarts(lokiStarts(r.out));
  });
}
