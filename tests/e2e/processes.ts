/**
 * The processes one run starts: each in its own process group with its output in a log file,
 * stopped by pid (SIGTERM to its group, SIGKILL after a timeout), and the tail of every log at
 * hand for failure messages.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export interface StartOptions {
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  exit?: Exit;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Processes {
  private readonly procs = new Map<string, Proc>();

  constructor(private readonly logDir: string) {
    fs.mkdirSync(logDir, { recursive: true });
  }

  start(name: string, command: string, args: readonly string[], options: StartOptions): Proc {
    if (this.procs.has(name)) throw new Error(`process ${name} already started`);
    const logPath = path.join(this.logDir, `${name}.log`);
    const fd = fs.openSync(logPath, "a");
    fs.writeSync(fd, `$ ${[command, ...args].join(" ")}\n`);
    // detached: its own process group, so stopping it also stops children such as gunicorn's workers.
    const child = spawn(command, args, {
      env: options.env,
      cwd: options.cwd,
      stdio: ["ignore", fd, fd],
      detached: true,
    });
    fs.closeSync(fd);
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    const proc: Proc = {
      name,
      pid: child.pid,
      logPath,
      child,
      exited: new Promise<Exit>((resolve) => {
        child.once("exit", (code, signal) => {
          proc.exit = { code, signal };
          resolve(proc.exit);
        });
        child.once("error", () => {
          proc.exit = { code: -1, signal: null };
          resolve(proc.exit);
        });
      }),
    };
    this.procs.set(name, proc);
    return proc;
  }

  get(name: string): Proc {
    const p = this.procs.get(name);
    if (!p) throw new Error(`no process named ${name}`);
    return p;
  }

  all(): Proc[] {
    return [...this.procs.values()];
  }

  running(name: string): boolean {
    return this.get(name).exit === undefined;
  }

  /** Sends `signal` to the process only (not its group), e.g. SIGTERM to gunicorn's master. */
  signal(name: string, signal: NodeJS.Signals): void {
    const p = this.get(name);
    if (p.exit === undefined) process.kill(p.pid, signal);
  }

  /** Sends `signal` to the whole group, e.g. SIGSTOP to hang gunicorn's master and workers alike. */
  signalGroup(name: string, signal: NodeJS.Signals): void {
    const p = this.get(name);
    if (p.exit === undefined) killGroup(p.pid, signal);
  }

  /** SIGTERM to the group, SIGKILL if it is still there after `timeoutMs`. */
  async stop(name: string, timeoutMs = 5000): Promise<Exit> {
    const p = this.get(name);
    if (p.exit === undefined) {
      killGroup(p.pid, "SIGTERM");
      const done = await Promise.race([p.exited, sleep(timeoutMs).then(() => undefined)]);
      if (done === undefined) {
        killGroup(p.pid, "SIGKILL");
        await Promise.race([p.exited, sleep(2000)]);
      }
    }
    // Children left behind by a process that exited (a worker whose master died) go too.
    killGroup(p.pid, "SIGKILL");
    return p.exit ?? { code: null, signal: "SIGKILL" };
  }

  async stopAll(timeoutMs = 5000): Promise<void> {
    await Promise.all([...this.procs.keys()].reverse().map((n) => this.stop(n, timeoutMs)));
  }

  /** Last resort from a synchronous exit handler. */
  killAllSync(): void {
    for (const p of this.procs.values()) killGroup(p.pid, "SIGKILL");
  }

  tail(name: string, lines = 25): string {
    return tailFile(this.get(name).logPath, lines);
  }

  /** Every process' state and the end of its log, for failure messages. */
  diagnostics(lines = 15): string {
    return this.all()
      .map((p) => {
        const state = p.exit ? `exited (code ${p.exit.code}, signal ${p.exit.signal})` : "running";
        return `--- ${p.name} (pid ${p.pid}, ${state}), last lines of ${p.logPath}:\n${tailFile(p.logPath, lines)}`;
      })
      .join("\n");
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export function tailFile(file: string, lines: number): string {
  try {
    const text = fs.readFileSync(file, "utf8");
    return text
      .split("\n")
      .slice(-lines - 1)
      .join("\n");
  } catch (err) {
    return `(cannot read ${file}: ${(err as Error).message})`;
  }
}
