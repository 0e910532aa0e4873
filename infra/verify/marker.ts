/**
 * The verification's log marker: a line each web host appends to the app's log, which Loki must
 * then return with its labels. Shared by the program (after a push) and `npm run verify`.
 */
import { TITAN_LOG_DIR, TITAN_USER } from "../../templates/host/units";

/** How the local command runs the verification, from the project's directory. */
export const VERIFY_COMMAND = "node --require ts-node/register/transpile-only infra/verify/cli.ts";

const MARKER = /^titan-verify-[0-9a-f]{12}$/;

/** The marker of one verification, from 12 or more hex digits (a digest or a random nonce). */
export function markerFor(hex: string): string {
  const marker = `titan-verify-${hex.slice(0, 12)}`;
  if (!MARKER.test(marker)) {
    throw new Error(`verification marker: ${JSON.stringify(hex)} must start with 12 hex digits`);
  }
  return marker;
}

/**
 * The shell command a web host's login user runs to log the marker line as the app's user. It
 * prints the host's clock (Unix seconds) once the line is written: the verification counts only
 * lines from then on (VerificationSpec logMarker.since), so an earlier line with the same
 * marker (a configuration changed and changed back) cannot pass for this one.
 */
export function markerLineCommand(marker: string): string {
  if (!MARKER.test(marker)) throw new Error(`verification marker ${JSON.stringify(marker)}: expected ${MARKER.source}`);
  return (
    `printf 'ts=%s level=info msg="pipeline verification" marker=${marker}\\n' "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)"` +
    ` | sudo -u ${TITAN_USER} tee -a ${TITAN_LOG_DIR}/verify.log >/dev/null && date -u +%s`
  );
}

/** The earliest time the markers were written, from each marker command's output; undefined unless every one printed one. */
export function markersWrittenAt(stdouts: readonly (string | undefined)[]): number | undefined {
  const times = stdouts.map((out) => (out !== undefined && /^\d+$/.test(out.trim()) ? Number(out.trim()) : NaN));
  return times.length > 0 && times.every(Number.isFinite) ? Math.min(...times) : undefined;
}
