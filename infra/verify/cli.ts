/**
 * `node -r ts-node/register/transpile-only infra/verify/cli.ts`: runs the verification with
 * the spec in VERIFY_SPEC (JSON) and Grafana's admin password on standard input. Prints the
 * readable report on stderr and the JSON report on stdout (the stack output), and exits 1
 * when a check failed.
 */
import { formatReport, verify, type VerificationSpec } from "./checks";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8").trim();
}

async function main(): Promise<number> {
  const raw = process.env.VERIFY_SPEC;
  if (!raw) {
    process.stderr.write("verify: VERIFY_SPEC is not set\n");
    return 2;
  }
  const spec = JSON.parse(raw) as VerificationSpec;
  const report = await verify(spec, await readStdin());
  process.stderr.write(`${formatReport(report)}\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  return report.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`verify: ${(err as Error).message}\n`);
    process.exit(2);
  },
);
