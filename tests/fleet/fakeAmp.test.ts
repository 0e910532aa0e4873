/**
 * The fake AMP remote-write endpoint (fakeAmp.ts) on 127.0.0.1, no root: requests signed by the
 * AWS SDK for JavaScript's own SigV4 signer (@smithy/signature-v4, a signer this repository did
 * not write) with credentials the fake "issued" are accepted and their samples recorded; no
 * signature (AMP has no unsigned mode), a wrong one, an unknown access key, another service's
 * scope, a missing session token, a body that is not a snappy WriteRequest, a missing
 * remote-write header, another workspace and another method are refused, and nothing of theirs
 * is recorded; set down, it answers 503 and records nothing, and comes back.
 * The real Prometheus against it is ampRemoteWrite.test.ts's.
 */
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as http from "node:http";
import { after, before, describe, it } from "node:test";
import { SignatureV4 } from "@smithy/signature-v4";
import { Cleanup } from "./cleanup";
import {
  decodeWriteRequest,
  encodeWriteRequest,
  REMOTE_WRITE_HEADERS,
  remoteWritePath,
  startFakeAmp,
  type FakeAmp,
} from "./fakeAmp";

const REGION = "eu-central-1";
const WORKSPACE = "ws-0f1ee700-0000-4000-8000-00000000000a";
const ISSUED = {
  accessKeyId: "ASIAFAKEAMPTEST00001",
  secretAccessKey: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTA",
  token: "dG9rZW4tdG9rZW4=",
};
const STRANGER = {
  accessKeyId: "ASIAUNKNOWNKEY000000",
  secretAccessKey: "bm90LWlzc3VlZC1ieS10aGUtZmFrZS1JTURTLTA",
  token: "b3RoZXI=",
};

/** node:crypto as the signer's Checksum (SHA-256, HMAC-SHA-256 with a secret). */
class Sha256 {
  private hash: crypto.Hash | crypto.Hmac;
  constructor(private readonly secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = this.fresh();
  }
  private fresh(): crypto.Hash | crypto.Hmac {
    if (this.secret === undefined) return crypto.createHash("sha256");
    const key =
      typeof this.secret === "string"
        ? this.secret
        : ArrayBuffer.isView(this.secret)
          ? Buffer.from(this.secret.buffer, this.secret.byteOffset, this.secret.byteLength)
          : Buffer.from(this.secret);
    return crypto.createHmac("sha256", key);
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(
      typeof data === "string"
        ? data
        : ArrayBuffer.isView(data)
          ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
          : Buffer.from(data),
    );
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

const cleanup = new Cleanup();
let amp: FakeAmp;
let port: number;

before(async () => {
  amp = await startFakeAmp(cleanup, {
    address: "127.0.0.1",
    region: REGION,
    workspaceId: WORKSPACE,
    lookup: (key) => (key === ISSUED.accessKeyId ? ISSUED : undefined),
  });
  port = Number(new URL(amp.endpoint).port);
});

after(async () => {
  assert.deepEqual(await cleanup.run(), []);
});

const series = (value: number) => [
  {
    labels: { __name__: "up", job: "node", instance: "titan-dev-web-1", role: "web", environment: "dev" },
    samples: [{ value, timestampMs: 1_790_000_000_123 }],
  },
];

interface Send {
  creds?: { accessKeyId: string; secretAccessKey: string; token?: string };
  service?: string;
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Changes the request after it was signed. */
  tamper?: (r: { headers: Record<string, string>; body: Buffer }) => void;
}

/** Signs (as the AWS SDK signs) and sends one request; the answer's status and body. */
async function send(options: Send = {}): Promise<{ status: number; body: string }> {
  const body = options.body ?? encodeWriteRequest(series(1));
  const path = options.path ?? remoteWritePath(WORKSPACE);
  const creds = options.creds ?? ISSUED;
  const signer = new SignatureV4({
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: creds.token },
    region: REGION,
    service: options.service ?? "aps",
    sha256: Sha256,
    // aws-sdk-go v1 sends no X-Amz-Content-Sha256 outside s3/glacier (v4.go buildBodyDigest).
    applyChecksum: false,
  });
  const signed = await signer.sign({
    method: options.method ?? "POST",
    protocol: "http:",
    hostname: "127.0.0.1",
    port,
    path,
    query: {},
    headers: { host: `127.0.0.1:${port}`, ...(options.headers ?? REMOTE_WRITE_HEADERS) },
    body,
  });
  const request = { headers: { ...(signed.headers as Record<string, string>) }, body };
  options.tamper?.(request);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path, method: options.method ?? "POST", headers: request.headers, timeout: 10_000 },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(request.body);
  });
}

describe("fake AMP: the WriteRequest codec", () => {
  it("round-trips labels, values and millisecond timestamps through snappy and protobuf", () => {
    const decoded = decodeWriteRequest(encodeWriteRequest(series(0.5)));
    assert.deepEqual(decoded.timeseries, series(0.5));
    assert.deepEqual(decoded.metadata, []);
  });
  it("refuses what is not a snappy-compressed WriteRequest, and a series without a name", () => {
    assert.throws(() => decodeWriteRequest(Buffer.from("not snappy at all, not protobuf")));
    assert.throws(
      () => decodeWriteRequest(encodeWriteRequest([{ labels: { job: "node" }, samples: [] }])),
      /no __name__ label/,
    );
  });
});

describe("fake AMP: who may write", () => {
  it("accepts a write signed for aps in the region with issued credentials and records its samples", async () => {
    const before = amp.samples.length;
    const r = await send();
    assert.equal(r.status, 200, r.body);
    assert.equal(amp.samples.length, before + 1);
    assert.deepEqual(amp.samples.at(-1)?.labels, series(1)[0].labels);
    assert.equal(amp.samples.at(-1)?.timestampMs, 1_790_000_000_123);
    assert.equal(amp.requests.at(-1)?.accessKeyId, ISSUED.accessKeyId);
  });

  const refused: [string, Send, number, RegExp][] = [
    [
      "a wrong signature (the body changed after signing)",
      { tamper: (r) => (r.body = encodeWriteRequest(series(2))) },
      403,
      /SignatureDoesNotMatch/,
    ],
    [
      "a signature that is not the one computed",
      {
        tamper: (r) =>
          (r.headers.authorization = r.headers.authorization.replace(/Signature=\w+/, `Signature=${"0".repeat(64)}`)),
      },
      403,
      /SignatureDoesNotMatch/,
    ],
    ["an access key the IMDS did not issue", { creds: STRANGER }, 403, /was not issued by the fleet's IMDS/],
    ["a scope for another service", { service: "ec2" }, 403, /expected eu-central-1\/aps/],
    [
      "a missing session token",
      { creds: { accessKeyId: ISSUED.accessKeyId, secretAccessKey: ISSUED.secretAccessKey } },
      403,
      /session token/,
    ],
    ["no signature at all", { tamper: (r) => delete r.headers.authorization }, 403, /not signed/],
    [
      "a request without the remote-write version header",
      { headers: { "content-encoding": "snappy", "content-type": "application/x-protobuf" } },
      400,
      /x-prometheus-remote-write-version/,
    ],
    ["a body that is not a snappy WriteRequest", { body: Buffer.from("hello") }, 400, /not a snappy-compressed/],
    [
      "another workspace",
      { path: remoteWritePath("ws-00000000-0000-4000-8000-000000000000") },
      404,
      /workspace not found/,
    ],
    ["a GET", { method: "GET", body: Buffer.alloc(0) }, 405, /method GET/],
  ];
  for (const [what, options, status, message] of refused) {
    it(`refuses ${what} (${status}) and records nothing`, async () => {
      const before = amp.samples.length;
      const r = await send(options);
      assert.equal(r.status, status, r.body);
      assert.match(r.body, message);
      assert.equal(amp.samples.length, before);
    });
  }

  it("answers 503 while down (still checking signatures first) and accepts again once back", async () => {
    const before = amp.samples.length;
    amp.setDown(true);
    try {
      assert.equal((await send()).status, 503);
      assert.equal((await send({ creds: STRANGER })).status, 403);
      assert.equal(amp.samples.length, before);
    } finally {
      amp.setDown(false);
    }
    assert.equal((await send()).status, 200);
    assert.equal(amp.samples.length, before + 1);
  });

  it("refuses bad arguments, naming the key, the value and what was expected", async () => {
    const c = new Cleanup();
    const args = { address: "127.0.0.1", region: REGION, workspaceId: WORKSPACE, lookup: () => undefined };
    await assert.rejects(
      startFakeAmp(c, { ...args, region: "Frankfurt" }),
      /region "Frankfurt": expected an AWS region/,
    );
    await assert.rejects(startFakeAmp(c, { ...args, workspaceId: "my-ws" }), /workspaceId "my-ws": expected ws- and/);
    assert.throws(() => amp.setDown("yes" as unknown as boolean), /setDown "yes": expected true or false/);
    assert.deepEqual(await c.run(), []);
  });
});
