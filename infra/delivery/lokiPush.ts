/**
 * The loki host's push, besides placing its files: Loki's unit starts only once the push has
 * written its configuration (templates/host/units.ts, LOKI_DROP_IN), and a start that a unit
 * condition skips is silent (exit 0). So after placing the files the push starts Loki itself
 * (a no-op when it runs; the first start on a fresh or replaced host) and requires it to answer
 * `/ready` (grafana/loki pkg/loki/loki.go registers it; it answers 200 once every module,
 * the ingester's ring join included, is ready), or fails with the unit's status.
 */
import { SERVICES } from "../../facts/topology";
import { LOKI_SERVICE } from "../../templates/loki/config";
/** Loki's ingester waits out min_ready_duration (15 s) after joining the ring; replaying a WAL takes longer. */
export const LOKI_READY_TIMEOUT_SECONDS = 300;

export const LOKI_POST_LINES: readonly string[] = [
  `sudo systemctl start ${LOKI_SERVICE}`,
  "ready=''",
  `deadline=$(($(date +%s) + ${LOKI_READY_TIMEOUT_SECONDS}))`,
  'while [ "$(date +%s)" -lt "$deadline" ]; do',
  `  if curl -fs -o /dev/null http://127.0.0.1:${SERVICES.loki.port}/ready; then ready=1; break; fi`,
  "  sleep 2",
  "done",
  'if [ -z "$ready" ]; then',
  `  echo "${LOKI_SERVICE} is not ready on :${SERVICES.loki.port} after ${LOKI_READY_TIMEOUT_SECONDS} s:" >&2`,
  `  sudo systemctl status --no-pager ${LOKI_SERVICE} >&2 || true`,
  "  exit 1",
  "fi",
  `echo "${LOKI_SERVICE} ready"`,
];
