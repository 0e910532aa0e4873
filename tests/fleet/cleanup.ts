/**
 * Everything a fleet run makes registers how to undo it, here, as soon as it exists. Undo runs
 * in reverse order, every step even when one fails, also on SIGINT/SIGTERM; the errors are
 * reported together at the end.
 */
export interface UndoStep {
  readonly what: string;
  readonly undo: () => void | Promise<void>;
}

export class Cleanup {
  private readonly steps: UndoStep[] = [];
  private running?: Promise<string[]>;

  add(what: string, undo: () => void | Promise<void>): void {
    if (this.running) throw new Error(`cleanup already running; cannot register "${what}"`);
    this.steps.push({ what, undo });
  }

  /** Pending steps, newest first (for diagnostics and tests). */
  pending(): string[] {
    return this.steps.map((s) => s.what).reverse();
  }

  /** Runs every step once, newest first; returns the failures ("what: message"). */
  run(): Promise<string[]> {
    this.running ??= (async () => {
      const failures: string[] = [];
      while (this.steps.length > 0) {
        const step = this.steps.pop() as UndoStep;
        try {
          await step.undo();
        } catch (err) {
          failures.push(`${step.what}: ${(err as Error).message}`);
        }
      }
      return failures;
    })();
    return this.running;
  }

  /**
   * On SIGINT/SIGTERM: undo everything, then exit with 128+signal. Returns the function that
   * removes the handlers again.
   */
  onSignals(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): () => void {
    const handler = (signal: NodeJS.Signals) => {
      log(`fleet: ${signal} received, cleaning up`);
      void this.run().then((failures) => {
        for (const f of failures) log(`fleet: cleanup failed: ${f}`);
        process.exit(128 + (signal === "SIGINT" ? 2 : 15));
      });
    };
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
    return () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    };
  }
}
