/**
 * Which of Titan's gunicorn workers serve, from the server's own output: each logs one line once
 * it has loaded the app (app/gunicorn.conf.py post_worker_init). The line's format is read from
 * app/titan/readiness.py, its one source, by the Python that runs the app.
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { ROOT } from "./files";

const PYTHON = "/usr/bin/python3";
let pattern: RegExp | undefined;

function readyPattern(): RegExp {
  if (pattern) return pattern;
  const format = execFileSync(PYTHON, ["-c", "from titan.readiness import READY_FORMAT; print(READY_FORMAT)"], {
    cwd: path.join(ROOT, "app"),
    env: { PATH: "/usr/bin:/bin", PYTHONDONTWRITEBYTECODE: "1" },
    encoding: "utf8",
  }).trimEnd();
  if (!format.includes("%d")) throw new Error(`READY_FORMAT ${JSON.stringify(format)} has no %d for the pid`);
  const escaped = format.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace("%d", "(\\d+)");
  pattern = new RegExp(escaped, "g");
  return pattern;
}

/** The pids of every worker that logged that it serves in `log`. */
export function titanReadyPids(log: string): Set<number> {
  return new Set([...log.matchAll(readyPattern())].map((m) => Number(m[1])));
}
