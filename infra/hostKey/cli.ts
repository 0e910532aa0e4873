/**
 * Prints one instance's SSH host key (`<type> <base64>`) on stdout, read from its console output
 * (consoleHostKey.ts). Run by each host's `<host>-host-key` local command (infra/host.ts) with
 * HOST_KEY_INSTANCE_ID and AWS_REGION; credentials come from the environment the AWS SDK's
 * default chain reads, the one `pulumi up` runs in. Progress goes to stderr.
 */
import { HOST_KEY_TIMEOUT_MINUTES } from "./command";
import { fetchHostKey } from "./consoleHostKey";

const seconds = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} = ${JSON.stringify(raw)}: expected a whole number of seconds, at least 1`);
  }
  return value;
};

async function main(): Promise<void> {
  const key = await fetchHostKey({
    instanceId: process.env.HOST_KEY_INSTANCE_ID ?? "",
    region: process.env.AWS_REGION ?? "",
    // The bootstrap runs before cloud-init prints the keys: allow for a slow first install.
    timeoutMs: seconds("HOST_KEY_TIMEOUT_SECONDS", HOST_KEY_TIMEOUT_MINUTES * 60) * 1000,
    intervalMs: seconds("HOST_KEY_INTERVAL_SECONDS", 10) * 1000,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${key}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`host key: ${(err as Error).message}\n`);
  process.exit(1);
});
