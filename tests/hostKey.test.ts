/**
 * The host key comes from EC2's API, not from the network: the console parser against the block
 * cloud-init prints (canonical/cloud-init tools/write-ssh-key-fingerprints, through `logger
 * --stderr -t ec2`), and the program's own host-key command, run as pulumi-command runs it (a
 * shell, from a subdirectory of the project), against a fake EC2 endpoint that verifies the
 * SigV4 signature (tests/fleet/awsEndpoints.ts), through the real AWS SDK.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { BEGIN_KEYS, END_KEYS, parseConsoleHostKey } from "../infra/hostKey/consoleHostKey";
import { HOST_KEY_COMMAND, HOST_KEY_UPDATE_COMMAND } from "../infra/hostKey/command";
import { Ec2ApiError, errorXml, parseEc2Request, type Ec2Instance } from "./e2e/fakeEc2";
import { answerConsoleOutput, verifySigV4 } from "./fleet/awsEndpoints";
import { baseArgs, parseAuthorizedKey, pinHostKey } from "./fleet/push";
import YAML from "yaml";
import { hasDataVolume, ROLES } from "../facts/topology";
import { renderUserData } from "../templates/host/userData";
import { ROOT } from "./support/files";
import { unwrapSecrets } from "./fleet/stackPlan";
import { mockHostKey } from "./support/mockProgram";
import { actionOf, one, snapshot, update, type TimedSnapshot } from "./support/snapshots";

const run = promisify(execFile);

const ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxh8Yq0m8uQ0j8v2c1b8kq8g2m0x0QkqP0c6mJm3y9a";
const ED_OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
const ECDSA =
  "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEXAMPLEexampleEXAMPLEexampleEXAMPLEexampleEXAMPLEexampleEXAMPLEexample=";

/** What a Debian cloud image's console shows at the end of cloud-final (syslog prefix, CRLF). */
const consoleWith = (...keys: string[]) =>
  [
    "[   12.345678] cloud-init[612]: Cloud-init v. 22.4.2 running 'modules:final'",
    "<14>Dec  6 04:00:00 ec2: ",
    "<14>Dec  6 04:00:00 ec2: #############################################################",
    "<14>Dec  6 04:00:00 ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
    "<14>Dec  6 04:00:00 ec2: 256 SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG root@ip-10-42-0-20 (ED25519)",
    "<14>Dec  6 04:00:00 ec2: -----END SSH HOST KEY FINGERPRINTS-----",
    "<14>Dec  6 04:00:00 ec2: #############################################################",
    `<14>Dec  6 04:00:00 ec2: ${BEGIN_KEYS}`,
    ...keys.map((k) => `<14>Dec  6 04:00:00 ec2: ${k} root@ip-10-42-0-20`),
    `<14>Dec  6 04:00:00 ec2: ${END_KEYS}`,
    "Cloud-init v. 22.4.2 finished at Sun, 06 Dec 2026 04:00:01 +0000. Up 61.2 seconds",
  ].join("\r\n");

describe("parseConsoleHostKey", () => {
  it("reads the ed25519 key from cloud-init's block, past the syslog prefix and CRLF", () => {
    assert.equal(parseConsoleHostKey(consoleWith(ECDSA, ED)), ED);
  });

  it("has nothing until the block is complete", () => {
    assert.equal(parseConsoleHostKey(""), undefined);
    assert.equal(parseConsoleHostKey(consoleWith(ED).split(END_KEYS)[0]), undefined);
    assert.equal(parseConsoleHostKey(consoleWith(ECDSA)), undefined, "no ed25519 key in the block");
  });

  it("takes the last block (a reboot of the same instance prints it again) and refuses two keys in one", () => {
    assert.equal(parseConsoleHostKey(`${consoleWith(ED_OTHER)}\r\n${consoleWith(ED)}`), ED);
    assert.throws(() => parseConsoleHostKey(consoleWith(ED, ED_OTHER)), /2 different ssh-ed25519 keys/);
  });
});

describe("the host-key command", () => {
  const instanceId = "i-0123456789abcdef0";
  const region = "us-east-1";
  const operator = { accessKeyId: "ASIAOPERATOR0000TEST", secretAccessKey: "s".repeat(40), token: "t".repeat(64) };
  const instances = [{ instanceId, state: "running" } as Ec2Instance];
  let consoleText = "";
  let asked = 0;
  let server: http.Server;
  let endpoint: string;
  let tmp: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "titan-host-key-"));
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        try {
          const request = parseEc2Request(body.toString());
          verifySigV4(
            { method: req.method ?? "", url: req.url ?? "/", headers: req.headers },
            body,
            (k) => (k === operator.accessKeyId ? operator : undefined),
            region,
          );
          if (request.action !== "GetConsoleOutput") throw new Ec2ApiError("InvalidAction", request.action);
          asked += 1;
          // The block appears only on the third answer, as cloud-final prints it after the bootstrap.
          const answer = answerConsoleOutput(body.toString(), instances, new Map([[instanceId, () => consoleText]]));
          if (asked === 2) consoleText = consoleWith(ECDSA, ED);
          res.writeHead(answer.status, { "Content-Type": "text/xml" }).end(answer.body);
        } catch (err) {
          const e = err instanceof Ec2ApiError ? err : new Ec2ApiError("InternalError", String(err), 500);
          res.writeHead(e.status, { "Content-Type": "text/xml" }).end(errorXml(e.code, e.message));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => {
    server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const env = (creds: typeof operator) => ({
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: tmp,
    AWS_CONFIG_FILE: path.join(tmp, "none"),
    AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, "none"),
    AWS_ENDPOINT_URL_EC2: endpoint,
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    AWS_SESSION_TOKEN: creds.token,
    AWS_REGION: region,
    HOST_KEY_INSTANCE_ID: instanceId,
    HOST_KEY_INTERVAL_SECONDS: "1",
    HOST_KEY_TIMEOUT_SECONDS: "60",
  });

  it("polls GetConsoleOutput until the block appears and prints the key, from a subdirectory", async () => {
    // pulumi-command runs `create` with `sh -c` (local/commandOutputs.go) in its working directory.
    const { stdout } = await run("/bin/sh", ["-c", HOST_KEY_COMMAND], {
      cwd: path.join(ROOT, "infra"),
      env: env(operator),
    });
    assert.equal(stdout, `${ED}\n`);
    assert.ok(asked >= 3, `asked ${asked} times`);
    assert.ok(!HOST_KEY_COMMAND.includes(ROOT), "no absolute path of this checkout in the command");
  });

  it("fails at once, naming the cause, when there are no credentials at all", async () => {
    const none: Record<string, string> = { ...env(operator), AWS_EC2_METADATA_DISABLED: "true" };
    delete none.AWS_ACCESS_KEY_ID;
    delete none.AWS_SECRET_ACCESS_KEY;
    delete none.AWS_SESSION_TOKEN;
    // Long enough that polling would end with the "no host key" message instead.
    none.HOST_KEY_TIMEOUT_SECONDS = "5";
    await assert.rejects(
      run("/bin/sh", ["-c", HOST_KEY_COMMAND], { cwd: ROOT, env: none }),
      (err: { stderr: string }) =>
        /GetConsoleOutput for i-0123456789abcdef0 in us-east-1 failed: CredentialsProviderError/.test(err.stderr),
    );
  });

  it("reprints the stored key on an in-place update without asking the console, and asks when none is stored", async () => {
    const before = asked;
    const { stdout } = await run("/bin/sh", ["-c", HOST_KEY_UPDATE_COMMAND], {
      cwd: ROOT,
      env: { ...env(operator), PULUMI_COMMAND_STDOUT: ECDSA },
    });
    assert.equal(stdout, `${ECDSA}\n`);
    assert.equal(asked, before, "the console was not asked");
    const fresh = await run("/bin/sh", ["-c", HOST_KEY_UPDATE_COMMAND], { cwd: ROOT, env: env(operator) });
    assert.equal(fresh.stdout, `${ED}\n`);
    assert.ok(asked > before, "with no stored key the console is asked");
  });

  it("fails at once, naming the instance and the cause, when the keys are refused", async () => {
    const wrong = { ...operator, secretAccessKey: "x".repeat(40) };
    await assert.rejects(
      run("/bin/sh", ["-c", HOST_KEY_COMMAND], { cwd: ROOT, env: env(wrong) }),
      (err: { stderr: string }) =>
        /GetConsoleOutput for i-0123456789abcdef0 in us-east-1 failed: SignatureDoesNotMatch/.test(err.stderr),
    );
  });
});

describe("the program: stable addresses and pinned host keys", () => {
  const REMOTE = ["command:remote:Command", "command:remote:CopyToRemote"];
  const HOSTS = ["prometheus", "loki", "grafana", "web-1"];
  let base: TimedSnapshot;
  let replaced: TimedSnapshot;
  let same: TimedSnapshot;
  before(async () => {
    [base, replaced, same] = await Promise.all([
      snapshot(),
      update({}, { amiId: "ami-0fedcba9876543210" }),
      update({}, {}),
    ]);
    for (const s of [base, replaced, same]) assert.equal(s.error, undefined, s.error);
  });

  const eipOf = (snap: TimedSnapshot, host: string) =>
    String(one(snap, "aws:ec2/eip:Eip", `${host}-eip`).state?.publicIp);

  it("gives every host a tagged Elastic IP, associated with its instance", () => {
    for (const host of HOSTS) {
      const eip = one(base, "aws:ec2/eip:Eip", `${host}-eip`);
      assert.equal(eip.inputs.domain, "vpc");
      assert.equal((eip.inputs.tags as Record<string, string>).Name, `titan-observability-dev-${host}-eip`);
      const association = one(base, "aws:ec2/eipAssociation:EipAssociation", `${host}-eip-association`);
      assert.equal(association.inputs.allocationId, `eipalloc-${host}-eip`);
      assert.equal(association.inputs.instanceId, `${host}-id`);
    }
  });

  it("publishes the Elastic IPs: URLs and host outputs", () => {
    assert.equal(base.outputs.grafanaUrl.value, `http://${eipOf(base, "grafana")}:3000`);
    assert.equal(base.outputs.prometheusUrl.value, `http://${eipOf(base, "prometheus")}:9090`);
    assert.deepEqual(base.outputs.appUrls.value, [`http://${eipOf(base, "web-1")}:5000`]);
    const hosts = base.outputs.hosts.value as Record<string, { publicIp: string; ssh: string; knownHosts: string }>;
    for (const host of HOSTS) {
      assert.equal(hosts[host].publicIp, eipOf(base, host));
      // What an operator appends to ~/.ssh/known_hosts to verify their own first login too.
      assert.equal(hosts[host].knownHosts, `${eipOf(base, host)} ${mockHostKey(`${host}-host-key`)}`);
      assert.match(hosts[host].ssh, new RegExp(`@${eipOf(base, host).replace(/\./g, "\\.")}$`));
    }
  });

  it("dials every push at the Elastic IP and pins the host key read from the console", () => {
    const remotes = base.resources.filter((r) => REMOTE.includes(r.type));
    assert.ok(remotes.length >= HOSTS.length);
    for (const r of remotes) {
      const host = HOSTS.find((h) => r.name.startsWith(`${h}-`));
      assert.ok(host, `${r.name}: which host?`);
      const connection = unwrapSecrets(r.inputs.connection) as Record<string, unknown>;
      assert.equal(connection.host, eipOf(base, host), r.name);
      assert.equal(connection.hostKey, mockHostKey(`${host}-host-key`), `${r.name} pins ${host}'s key`);
      assert.ok(
        r.dependencies.some((d) => d.endsWith(`::${host}-host-key`)),
        `${r.name} waits for the key`,
      );
    }
  });

  it("reads each key once per instance, with no local path in its inputs", () => {
    for (const host of HOSTS) {
      const fetch = one(base, "command:local:Command", `${host}-host-key`);
      assert.deepEqual(fetch.inputs.triggers, [`${host}-id`]);
      assert.deepEqual(fetch.inputs.environment, { HOST_KEY_INSTANCE_ID: `${host}-id`, AWS_REGION: "us-east-1" });
      assert.equal(fetch.inputs.create, HOST_KEY_COMMAND);
      // An in-place update reprints the stored key: the console may no longer hold it.
      assert.equal(fetch.inputs.update, HOST_KEY_UPDATE_COMMAND);
      assert.equal(fetch.inputs.dir, undefined);
      assert.ok(!JSON.stringify(fetch.inputs).includes(ROOT), `${host}: no path of this checkout in state`);
    }
  });

  it("asks a replaced host again, and keeps its address (the bookmarked URL stays valid)", () => {
    for (const host of HOSTS) {
      assert.equal(actionOf(replaced, "aws:ec2/instance:Instance", host), "replace");
      assert.equal(actionOf(replaced, "command:local:Command", `${host}-host-key`), "replace", host);
      assert.equal(actionOf(replaced, "aws:ec2/eip:Eip", `${host}-eip`), "same", host);
      assert.equal(actionOf(replaced, "aws:ec2/eipAssociation:EipAssociation", `${host}-eip-association`), "replace");
    }
    assert.equal(replaced.outputs.grafanaUrl.value, base.outputs.grafanaUrl.value);
  });

  it("does nothing on a second up: no key is fetched again, no address moves", () => {
    for (const host of HOSTS) {
      assert.equal(actionOf(same, "command:local:Command", `${host}-host-key`), "same", host);
      assert.equal(actionOf(same, "aws:ec2/eip:Eip", `${host}-eip`), "same", host);
      assert.equal(actionOf(same, "aws:ec2/eipAssociation:EipAssociation", `${host}-eip-association`), "same", host);
    }
  });
});

describe("the user data leaves cloud-init's key block on the console", () => {
  it("never turns off keys_to_console nor hides the ed25519 key or its generation", () => {
    for (const role of ROLES) {
      const dataVolumeId = hasDataVolume(role) ? "vol-0123456789abcdef0" : undefined;
      const doc = YAML.parse(renderUserData({ role, dataVolumeId })) as Record<string, unknown>;
      // cc_keys_to_console: ssh.emit_keys_to_console (default true); ssh_key_console_blacklist.
      const ssh = (doc.ssh ?? {}) as Record<string, unknown>;
      assert.notEqual(ssh.emit_keys_to_console, false, role);
      const hidden = (doc.ssh_key_console_blacklist ?? []) as string[];
      assert.ok(!hidden.includes("ssh-ed25519"), `${role}: the ed25519 key is hidden from the console`);
      // cc_ssh generates the types in ssh_genkeytypes (all by default); ed25519 must be one.
      const types = doc.ssh_genkeytypes as string[] | undefined;
      assert.ok(types === undefined || types.includes("ed25519"), `${role}: no ed25519 host key generated`);
      const modules = doc.cloud_final_modules as unknown[] | undefined;
      assert.ok(modules === undefined || JSON.stringify(modules).includes("keys_to_console"), role);
    }
  });
});

describe("the fleet's push pins a hostKey as pulumi-command does", () => {
  const target = { address: "10.42.0.20", user: "admin", privateKeyPath: "/k", knownHosts: "/unused" };

  it("reads hostKey as ssh.ParseAuthorizedKey does, refusing a malformed one by name", () => {
    assert.deepEqual(parseAuthorizedKey(`${ED} root@host`), { type: "ssh-ed25519", blob: ED.split(" ")[1] });
    assert.throws(() => parseAuthorizedKey("ssh-ed25519"), /hostKey "ssh-ed25519": expected an authorized_keys line/);
    // The blob's own type must be the one named (an ecdsa blob labelled ed25519 is refused).
    assert.throws(() => parseAuthorizedKey(`ssh-ed25519 ${ECDSA.split(" ")[1]}`), /not a ssh-ed25519 key/);
  });

  it("trusts only that key, and offers only its algorithm (FixedHostKey, HostKeyAlgorithms)", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "titan-pin-")), "known_hosts");
    const pinned = pinHostKey(target, `${ED} comment`, file);
    assert.equal(fs.readFileSync(file, "utf8"), `10.42.0.20 ${ED}\n`);
    const args = baseArgs(pinned, "-p");
    const options = args.filter((_, i) => args[i - 1] === "-o");
    assert.ok(options.includes("StrictHostKeyChecking=yes"));
    assert.ok(options.includes(`UserKnownHostsFile=${file}`));
    assert.ok(options.includes("HostKeyAlgorithms=ssh-ed25519"));
    assert.ok(!baseArgs(target, "-p").some((a) => a.startsWith("HostKeyAlgorithms=")), "unpinned: no restriction");
    assert.equal(
      fs.readFileSync(pinHostKey({ ...target, port: 2222 }, ED, file).knownHosts, "utf8"),
      `[10.42.0.20]:2222 ${ED}\n`,
    );
  });
});
