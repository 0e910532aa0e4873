/**
 * Child-process entry point for the fleet's stack plan: runs the real program (index.ts) once
 * under the mocks (tests/support/mockProgram.ts runProgram, as snapshotCli.ts does) with the
 * ProgramInput in the JSON file STACK_PLAN_INPUT_FILE, and prints the Snapshot as JSON plus,
 * for every CopyToRemote, its source as the provider would read it: the class and the path of a
 * path-based asset or archive. The mocks keep that path in a promise, which JSON drops, so it is
 * resolved here, in the process that holds it. The program writes its push trees under the
 * project root's .titan-push/<stack>/ as `pulumi up` would (infra/delivery/pushTree.ts).
 * One program run per process: Pulumi's runtime state is global.
 */
import * as fs from "node:fs";
import { runProgram, type ProgramInput, type Snapshot } from "../support/mockProgram";
import { programEdits, applyProgramEdits } from "./programEdits";

export interface PlannedSourceRecord {
  /** The asset or archive class the program used (FileArchive, FileAsset, ...). */
  readonly kind: string;
  /** Its path as the program gave it (relative paths are relative to the project root). */
  readonly path?: string;
}

export interface StackPlanOutput {
  readonly snapshot: Snapshot;
  /** CopyToRemote resource name -> its source. */
  readonly sources: Record<string, PlannedSourceRecord>;
}

async function main(): Promise<void> {
  const input = JSON.parse(fs.readFileSync(process.env.STACK_PLAN_INPUT_FILE ?? "", "utf8")) as ProgramInput;
  // The developer's edits the matrix made so far (programEdits.ts), inherited from the parent.
  applyProgramEdits(programEdits());
  const snapshot = await runProgram(input);
  const sources: Record<string, PlannedSourceRecord> = {};
  for (const r of snapshot.resources) {
    if (r.type !== "command:remote:CopyToRemote") continue;
    const source = r.inputs.source as { constructor: { name: string }; path?: Promise<string> } | undefined;
    if (source === undefined) continue;
    sources[r.name] = { kind: source.constructor.name, path: await Promise.resolve(source.path) };
  }
  const output: StackPlanOutput = { snapshot, sources };
  // Exit only once the whole document is flushed (stdout to a pipe is asynchronous).
  await new Promise<void>((resolve) => process.stdout.write(JSON.stringify(output), () => resolve()));
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
