/**
 * The fleet learns each host's SSH key as `pulumi up` does: the program's own `<host>-host-key`
 * command (infra/hostKey/), run for real with the operator's keys against the fleet's fake EC2
 * API, whose GetConsoleOutput answers with what the container printed on its console (nspawn's
 * console log: cloud-init's keys_to_console block). The key it prints is then pinned on every
 * push to the host (push.ts pinHostKey, as pulumi-command pins `connection.hostKey`), after
 * proving it is the key the host really has and that a wrong pin is refused.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { projectRoot } from "../../templates/projectFiles";
import type { AwsEndpoints } from "./awsEndpoints";
import type { FleetHost } from "./fleet";
import { pinHostKey, sshExec, type SshTarget } from "./push";
import { unwrapSecrets, type StackPlan } from "./stackPlan";

const run = promisify(execFile);
export const LOCAL_COMMAND = "command:local:Command";

/** The planned `<host>-host-key` command: what the engine would run on the deploying machine. */
export function plannedHostKeyCommand(
  plan: StackPlan,
  host: string,
): { create: string; environment: Record<string, string> } {
  const r = plan.resources.find((x) => x.type === LOCAL_COMMAND && x.name === `${host}-host-key`);
  const inputs = r ? (unwrapSecrets(r.inputs) as Record<string, unknown>) : undefined;
  if (!inputs || typeof inputs.create !== "string") {
    throw new Error(`the stack plans no ${host}-host-key command: its pushes would pin no host key`);
  }
  return { create: inputs.create, environment: { ...(inputs.environment as Record<string, string>) } };
}

/** The ed25519 key cloud-init generated, read from the container's own files (what sshd serves). */
function keyOnDisk(host: FleetHost): string {
  const [type, blob] = fs
    .readFileSync(path.join(host.container.root, "etc/ssh/ssh_host_ed25519_key.pub"), "utf8")
    .trim()
    .split(/\s+/);
  return `${type} ${blob}`;
}

/** A valid ed25519 key that no host has. */
function strangerKey(): string {
  const type = Buffer.from("ssh-ed25519");
  const len = (b: Buffer) => Buffer.from([0, 0, 0, b.length]);
  const key = Buffer.alloc(32, 7);
  return `ssh-ed25519 ${Buffer.concat([len(type), type, len(key), key]).toString("base64")}`;
}

/**
 * Runs the host's planned host-key command against the fake API and returns its target pinned to
 * the key it printed; throws when the key is not the host's, or when a wrong pin is not refused.
 */
export async function learnHostKey(
  plan: StackPlan,
  host: FleetHost,
  target: SshTarget,
  aws: AwsEndpoints,
  runDir: string,
  log: (line: string) => void,
): Promise<SshTarget> {
  const name = host.slot.name;
  aws.setConsole(host.instanceId, () =>
    fs.existsSync(host.container.consoleLog) ? fs.readFileSync(host.container.consoleLog, "utf8") : "",
  );
  const planned = plannedHostKeyCommand(plan, name);
  const home = path.join(runDir, "operator-home");
  fs.mkdirSync(home, { recursive: true });
  const started = Date.now();
  const { stdout } = await run("/bin/sh", ["-c", planned.create], {
    cwd: projectRoot(),
    timeout: 15 * 60_000,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      // No profile or credentials file: only the operator's keys below.
      HOME: home,
      AWS_CONFIG_FILE: path.join(home, "none"),
      AWS_SHARED_CREDENTIALS_FILE: path.join(home, "none"),
      ...planned.environment,
      // The mocks' instance id stands for the fleet's.
      HOST_KEY_INSTANCE_ID: host.instanceId,
      AWS_ENDPOINT_URL_EC2: aws.ec2Endpoint,
      AWS_ACCESS_KEY_ID: aws.operatorCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: aws.operatorCredentials.secretAccessKey,
      AWS_SESSION_TOKEN: aws.operatorCredentials.token,
      HOST_KEY_INTERVAL_SECONDS: "2",
    },
  });
  const hostKey = stdout.trim();
  const onDisk = keyOnDisk(host);
  if (hostKey !== onDisk) {
    throw new Error(`${name}: the console gave ${hostKey}, but the host's sshd serves ${onDisk}`);
  }
  log(`${name}: host key from GetConsoleOutput in ${((Date.now() - started) / 1000).toFixed(1)} s: ${hostKey}`);

  // A pin to any other key must be refused before anything runs, as ssh.FixedHostKey refuses it.
  const wrong = pinHostKey(target, strangerKey(), `${target.knownHosts}.wrong`);
  const refused = await sshExec({ ...wrong, dialAttempts: 1 }, "echo reached", { timeoutMs: 60_000 });
  if (
    refused.status === 0 ||
    refused.stdout.includes("reached") ||
    !/Host key verification failed/.test(refused.stderr)
  ) {
    throw new Error(
      `${name}: a push pinned to a wrong host key was not refused (exit ${refused.status}): ${refused.stderr.trim()}`,
    );
  }
  const pinned = pinHostKey(target, hostKey, `${target.knownHosts}.pinned`);
  const accepted = await sshExec(pinned, "echo reached", { timeoutMs: 60_000 });
  if (accepted.status !== 0 || accepted.stdout.trim() !== "reached") {
    throw new Error(
      `${name}: the pinned host key was not accepted (exit ${accepted.status}): ${accepted.stderr.trim()}`,
    );
  }
  log(`${name}: a wrong pinned key is refused (${refused.stderr.trim().split("\n").pop()}); the console's is accepted`);
  return pinned;
}
