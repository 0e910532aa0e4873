/**
 * Child-process entry point: runs the program once under mocks with the ProgramInput given as
 * JSON in the file SNAPSHOT_INPUT_FILE names and prints the Snapshot as JSON, with the time the program itself
 * took (provider SDKs are loaded before the clock starts) and the process' peak memory.
 */
import * as aws from "@pulumi/aws";
import * as fs from "node:fs";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import { DEBIAN_IMAGE, VERSIONS } from "../../facts/versions";
import { runProgram, type ProgramInput } from "./mockProgram";

async function main(): Promise<void> {
  // Touch the lazily loaded SDK modules the program uses so their load time is not counted.
  void [
    aws.ec2.Instance,
    aws.s3.Bucket,
    aws.iam.Role,
    aws.vpc.SecurityGroupIngressRule,
    aws.ebs.Volume,
    aws.ssm.getParameter,
    aws.ec2.getAmi,
  ];
  void [random.RandomId, tls.PrivateKey];
  const started = process.hrtime.bigint();
  const input = JSON.parse(fs.readFileSync(process.env.SNAPSHOT_INPUT_FILE ?? "", "utf8")) as ProgramInput & {
    versions?: Record<string, Record<string, string>>;
  };
  // A pin change is a code change: make it before the program reads the table.
  const pins: Record<string, object> = { ...VERSIONS, debianImage: DEBIAN_IMAGE };
  for (const [component, pin] of Object.entries(input.versions ?? {})) {
    const entry = pins[component];
    if (!entry) throw new Error(`no component ${component} in facts/versions.ts`);
    Object.assign(entry, pin);
  }
  const snapshot = await runProgram(input);
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const peakRssKb = process.resourceUsage().maxRSS;
  // Exit only once the whole document is flushed: stdout to a pipe is asynchronous, and
  // Pulumi's runtime keeps handles open that would otherwise hold the process.
  await new Promise<void>((resolve) =>
    process.stdout.write(JSON.stringify({ ...snapshot, elapsedMs, peakRssKb }), () => resolve()),
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
