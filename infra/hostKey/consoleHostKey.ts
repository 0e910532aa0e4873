/**
 * A host's SSH host key, learned through AWS's API instead of from the network: cloud-init
 * prints the host's public keys to the serial console and EC2's GetConsoleOutput returns that
 * console, so the first SSH contact is already verified (a recycled or hijacked address cannot
 * answer with the right key).
 *
 * What cloud-init prints (canonical/cloud-init cloudinit/config/cc_keys_to_console.py, once per
 * instance in the final stage, unless `ssh: {emit_keys_to_console: false}`; key types in
 * `ssh_key_console_blacklist`, default only ssh-dss, are left out; and
 * tools/write-ssh-key-fingerprints): each /etc/ssh/ssh_host_*key.pub between
 * `-----BEGIN SSH HOST KEY KEYS-----` and `-----END SSH HOST KEY KEYS-----`, piped through
 * `logger --stderr -t ec2`, so a line may carry a syslog prefix before the key.
 *
 * The key is returned as `<type> <base64>`: the authorized_keys form pulumi-command's `hostKey`
 * takes (pulumi/pulumi-command v1.2.1 provider/pkg/provider/remote/connection.go SSHConfig:
 * ssh.ParseAuthorizedKey, then ssh.FixedHostKey and HostKeyAlgorithms limited to that key's type).
 */
import { EC2Client, GetConsoleOutputCommand } from "@aws-sdk/client-ec2";

export const BEGIN_KEYS = "-----BEGIN SSH HOST KEY KEYS-----";
export const END_KEYS = "-----END SSH HOST KEY KEYS-----";
/** The type every connection pins: OpenSSH on Debian 12 generates it, and cloud-init prints it. */
export const HOST_KEY_TYPE = "ssh-ed25519";

/**
 * The host key of `keyType` from the last complete key block in `console`, or undefined while
 * there is none yet. Two different keys of the type in that block are refused: no guessing.
 */
export function parseConsoleHostKey(console: string, keyType: string = HOST_KEY_TYPE): string | undefined {
  const end = console.lastIndexOf(END_KEYS);
  if (end < 0) return undefined;
  const begin = console.lastIndexOf(BEGIN_KEYS, end);
  if (begin < 0) return undefined;
  const block = console.slice(begin + BEGIN_KEYS.length, end);
  const type = keyType.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const found = new Set<string>();
  for (const m of block.matchAll(new RegExp(`(?:^|\\s)${type} (AAAA[0-9A-Za-z+/]+={0,3})(?=\\s|$)`, "gm"))) {
    found.add(`${keyType} ${m[1]}`);
  }
  if (found.size > 1) {
    throw new Error(`the console's host key block lists ${found.size} different ${keyType} keys: refusing to pick one`);
  }
  return [...found][0];
}

export interface FetchOptions {
  readonly instanceId: string;
  readonly region: string;
  readonly keyType?: string;
  /** How long to wait for cloud-init's final stage to print the keys (its bootstrap runs first). */
  readonly timeoutMs: number;
  readonly intervalMs: number;
  /** Progress lines (stderr in the CLI). */
  readonly log?: (line: string) => void;
  /** For tests: an EC2 client (the default reads credentials as the AWS SDK's default chain does). */
  readonly client?: Pick<EC2Client, "send">;
}

/** The console output as text; `Latest` (Nitro instances) returns the newest 64 KiB. */
async function consoleText(client: Pick<EC2Client, "send">, instanceId: string, latest: boolean): Promise<string> {
  const out = await client.send(new GetConsoleOutputCommand({ InstanceId: instanceId, Latest: latest }));
  return Buffer.from(out.Output ?? "", "base64").toString("utf8");
}

/** Polls GetConsoleOutput until the host key block appears, or fails at the deadline naming the instance. */
export async function fetchHostKey(options: FetchOptions): Promise<string> {
  const { instanceId, region } = options;
  if (!/^i-[0-9a-f]{8,17}$/.test(instanceId)) {
    throw new Error(`HOST_KEY_INSTANCE_ID = ${JSON.stringify(instanceId)}: expected an EC2 instance id (i-...)`);
  }
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    throw new Error(`AWS_REGION = ${JSON.stringify(region)}: expected an AWS region name such as us-east-1`);
  }
  const keyType = options.keyType ?? HOST_KEY_TYPE;
  const client = options.client ?? new EC2Client({ region });
  const deadline = Date.now() + options.timeoutMs;
  let latest = true;
  let last = "no answer yet";
  for (;;) {
    try {
      const key = parseConsoleHostKey(await consoleText(client, instanceId, latest), keyType);
      if (key) return key;
      last = "the console has no complete host key block yet (cloud-init's final stage prints it)";
    } catch (err) {
      const name = (err as { name?: string }).name ?? "";
      // Only Nitro instances support Latest; others return the output buffered at boot.
      if (name === "UnsupportedOperation" && latest) {
        latest = false;
        continue;
      }
      // Access, signature and credential errors will not heal by waiting (the SDK names a
      // missing credential chain CredentialsProviderError, @smithy/property-provider).
      if (
        /AuthFailure|UnauthorizedOperation|SignatureDoesNotMatch|InvalidInstanceID|InvalidClientTokenId|CredentialsProviderError|ExpiredToken|RequestExpired/.test(
          name,
        )
      ) {
        throw new Error(`GetConsoleOutput for ${instanceId} in ${region} failed: ${name}: ${(err as Error).message}`);
      }
      if (/refusing to pick/.test((err as Error).message)) throw err;
      last = `${name || "error"}: ${(err as Error).message}`;
    }
    if (Date.now() + options.intervalMs > deadline) {
      throw new Error(
        `no ${keyType} host key in the console output of ${instanceId} (${region}) after ${Math.round(options.timeoutMs / 1000)} s: ${last}. ` +
          `cloud-init prints it after the user data ran; check 'aws ec2 get-console-output --latest --instance-id ${instanceId}'.`,
      );
    }
    options.log?.(`${instanceId}: ${last}; asking again in ${options.intervalMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
}
