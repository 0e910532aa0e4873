/**
 * Child-process entry point: runs the program once under mocks with the ProgramInput given as
 * JSON in SNAPSHOT_INPUT and prints the Snapshot (plus timing and peak memory) as JSON.
 */
import { runProgram, type ProgramInput } from "./mockProgram";

async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  const input = JSON.parse(process.env.SNAPSHOT_INPUT ?? "{}") as ProgramInput;
  const snapshot = await runProgram(input);
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const peakRssKb = process.resourceUsage().maxRSS;
  process.stdout.write(JSON.stringify({ ...snapshot, elapsedMs, peakRssKb }));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
