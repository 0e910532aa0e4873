/**
 * A stand-in for Amazon Managed Service for Prometheus' remote-write endpoint
 * (`POST /workspaces/<id>/api/v1/remote_write`), run in the harness process beside the fake EC2
 * API and IMDS (awsEndpoints.ts), with the same credential check: every request must carry a
 * SigV4 signature for service `aps` in the stack's region, made with credentials the fake IMDS
 * handed out (verifySigV4; the caller passes the lookup), so a sample recorded here proves
 * Prometheus signed with the instance profile's keys.
 *
 * What Prometheus 2.42 sends, from its source:
 *   - prometheus/common v0.39.0 (Debian's prometheus 2.41+ needs golang-github-prometheus-common-dev
 *     >= 0.39.0, debian/changelog) sigv4/sigv4.go RoundTrip: buffers the body, path.Clean()s the
 *     path, drops uber-trace-id, and signs with aws-sdk-go v1's v4 signer (Sign(req, body, "aps",
 *     region, now)); the credentials come from session.NewSessionWithOptions with no static keys,
 *     so from the SDK's default chain, which ends at the EC2 role provider (IMDS), as for ec2_sd.
 *   - aws-sdk-go v1 aws/signer/v4/v4.go: X-Amz-Date and, for session credentials,
 *     X-Amz-Security-Token are set on the request before signing; every request header but
 *     Authorization, User-Agent and X-Amzn-Trace-Id is signed (buildCanonicalHeaders with
 *     ignoredHeaders), Content-Encoding and Content-Type and the remote-write version too; the
 *     payload hash is the hex SHA-256 of the body (buildBodyDigest: no X-Amz-Content-Sha256
 *     header unless the service is s3 or glacier).
 *   - prometheus/prometheus v2.42.0 storage/remote/client.go Store: POST with
 *     `Content-Encoding: snappy`, `Content-Type: application/x-protobuf` and
 *     `X-Prometheus-Remote-Write-Version: 0.1.0`; a 5xx answer is a RecoverableError (retried
 *     with backoff by queue_manager.go sendWriteRequestWithBackoff, forever, counted in
 *     prometheus_remote_storage_samples_retried_total), any other non-2xx is not (the batch is
 *     dropped, prometheus_remote_storage_samples_failed_total).
 *   - storage/remote/queue_manager.go buildWriteRequest: the body is a prompb.WriteRequest
 *     marshalled and compressed with snappy.Encode, the snappy block format (no framing), which
 *     snappyjs' uncompress reads.
 *   - prompb/remote.proto (WriteRequest: timeseries = 1, metadata = 3) and prompb/types.proto
 *     (TimeSeries: labels = 1, samples = 2; Label: name = 1, value = 2; Sample: value = 1,
 *     timestamp = 2 in ms; MetricMetadata: type = 1, metric_family_name = 2, help = 4, unit = 5),
 *     at v2.42.0: the schema below is that subset. Exemplars (3) and native histograms (4) of a
 *     TimeSeries are not decoded (2.42 sends neither unless enabled; protobufjs skips them).
 *
 * Answers as AMP: 200 with an empty body for an accepted write; 403 for a request whose
 * signature or credentials do not hold (AWS' answer for both, so Prometheus does not retry it);
 * 404 for another workspace; 400 for a body or headers that are not a remote write; 405 for
 * another method; and, while set down, 503 to a request that would otherwise be accepted (so a
 * retried request is still seen signed). What this cannot prove: IAM evaluation of
 * aps:RemoteWrite (any issued key may write), AMP's limits (ingestion rate, series, label
 * counts), TLS (AMP is HTTPS only; this is plain HTTP on the bridge).
 */
import * as http from "node:http";
import * as protobuf from "protobufjs";
import * as snappy from "snappyjs";
import { Ec2ApiError } from "../e2e/fakeEc2";
import { close, listen, sourceOf, verifySigV4, withBody } from "./awsEndpoints";
import type { Cleanup } from "./cleanup";

/** The service name in SigV4 credential scopes for AMP (sigv4.go signs with "aps"). */
export const AMP_SIGNING_SERVICE = "aps";
/** Headers storage/remote/client.go Store sets on every remote write, lowercased. */
export const REMOTE_WRITE_HEADERS: Readonly<Record<string, string>> = {
  "content-encoding": "snappy",
  "content-type": "application/x-protobuf",
  "x-prometheus-remote-write-version": "0.1.0",
};
/** AMP's remote-write path for a workspace. */
export const remoteWritePath = (workspaceId: string) => `/workspaces/${workspaceId}/api/v1/remote_write`;

const SCHEMA = `
syntax = "proto3";
package prometheus;
message WriteRequest {
  repeated TimeSeries timeseries = 1;
  repeated MetricMetadata metadata = 3;
}
message MetricMetadata {
  int32 type = 1;
  string metric_family_name = 2;
  string help = 4;
  string unit = 5;
}
message Sample {
  double value = 1;
  int64 timestamp = 2;
}
message TimeSeries {
  repeated Label labels = 1;
  repeated Sample samples = 2;
}
message Label {
  string name = 1;
  string value = 2;
}
`;
const WRITE_REQUEST = protobuf.parse(SCHEMA).root.lookupType("prometheus.WriteRequest");

export interface DecodedSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly samples: readonly { readonly value: number; readonly timestampMs: number }[];
}
export interface DecodedWriteRequest {
  readonly timeseries: readonly DecodedSeries[];
  readonly metadata: readonly { readonly metricFamilyName: string; readonly type: number }[];
}

interface RawWriteRequest {
  timeseries: { labels: { name: string; value: string }[]; samples: { value: number; timestamp: number }[] }[];
  metadata: { metricFamilyName: string; type: number }[];
}

/** Snappy block-decompresses and decodes a WriteRequest; throws on anything else. */
export function decodeWriteRequest(body: Uint8Array): DecodedWriteRequest {
  const raw = WRITE_REQUEST.toObject(WRITE_REQUEST.decode(snappy.uncompress(body)), {
    longs: Number,
    defaults: true,
    arrays: true,
  }) as RawWriteRequest;
  return {
    timeseries: raw.timeseries.map((ts, n) => {
      const labels: Record<string, string> = {};
      for (const l of ts.labels) {
        if (l.name in labels) throw new Error(`timeseries[${n}]: label ${l.name} twice`);
        labels[l.name] = l.value;
      }
      if (!labels.__name__) throw new Error(`timeseries[${n}]: no __name__ label (${JSON.stringify(labels)})`);
      return { labels, samples: ts.samples.map((s) => ({ value: s.value, timestampMs: s.timestamp })) };
    }),
    metadata: raw.metadata.map((m) => ({ metricFamilyName: m.metricFamilyName, type: m.type })),
  };
}

/** The inverse, for tests that play Prometheus. */
export function encodeWriteRequest(series: readonly DecodedSeries[]): Buffer {
  const message = WRITE_REQUEST.fromObject({
    timeseries: series.map((s) => ({
      labels: Object.entries(s.labels)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([name, value]) => ({ name, value })),
      samples: s.samples.map((x) => ({ value: x.value, timestamp: x.timestampMs })),
    })),
  });
  return Buffer.from(snappy.compress(WRITE_REQUEST.encode(message).finish()));
}

/** One sample as it arrived. */
export interface AmpSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly timestampMs: number;
  /** When the write that carried it was accepted (ms since epoch). */
  readonly receivedMs: number;
}

export interface AmpRequest {
  readonly from: string;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly atMs: number;
  /** The access key the request was signed with (verified), when it was. */
  readonly accessKeyId?: string;
  readonly series?: number;
  readonly samples?: number;
  readonly metadata?: number;
  readonly error?: string;
}

export interface FakeAmpArgs {
  /** The address to listen on (the fleet bridge's, or 127.0.0.1 in a unit test). */
  readonly address: string;
  readonly port?: number;
  readonly region: string;
  readonly workspaceId: string;
  /** The credentials the fake IMDS issued, by access key id. */
  readonly lookup: (accessKeyId: string) => { secretAccessKey: string; token: string } | undefined;
}

export interface FakeAmp {
  /** http://<address>:<port>: the workspace's "endpoint" (AMP's prometheusEndpoint minus the path). */
  readonly endpoint: string;
  /** The remote_write URL for prometheus.yml. */
  readonly remoteWriteUrl: string;
  readonly samples: readonly AmpSample[];
  readonly requests: readonly AmpRequest[];
  /** While down, writes that would be accepted are answered 503 and not recorded. */
  setDown(down: boolean): void;
  stop(): Promise<void>;
}

function bad(key: string, value: unknown, expected: string): Error {
  return new Error(`startFakeAmp: ${key} ${JSON.stringify(value)}: expected ${expected}`);
}

class AmpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startFakeAmp(cleanup: Cleanup, args: FakeAmpArgs): Promise<FakeAmp> {
  const { address, region, workspaceId, lookup } = args;
  if (typeof region !== "string" || !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    throw bad("region", region, "an AWS region name like us-east-1");
  }
  // AMP workspace ids: ws- and a UUID.
  if (typeof workspaceId !== "string" || !/^ws-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/.test(workspaceId)) {
    throw bad("workspaceId", workspaceId, "ws- and a lowercase UUID, like AMP's");
  }
  if (typeof lookup !== "function") throw bad("lookup", lookup, "a function from access key id to credentials");
  const port = args.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw bad("port", port, "0..65535");

  const samples: AmpSample[] = [];
  const requests: AmpRequest[] = [];
  let down = false;
  const path = remoteWritePath(workspaceId);

  const server = http.createServer((req, res) => {
    withBody(req, res, (body) => {
      const url = new URL(req.url ?? "/", "http://x");
      let accessKeyId: string | undefined;
      let decoded: DecodedWriteRequest | undefined;
      let status = 200;
      let error: string | undefined;
      try {
        if (!url.pathname.startsWith("/workspaces/") || !url.pathname.endsWith("/api/v1/remote_write")) {
          throw new AmpError(404, `no such path ${url.pathname}`);
        }
        if (url.pathname !== path) throw new AmpError(404, `workspace not found: ${url.pathname}`);
        if (req.method !== "POST") throw new AmpError(405, `method ${req.method} not allowed`);
        try {
          accessKeyId = verifySigV4(
            { method: req.method, url: req.url ?? "/", headers: req.headers },
            body,
            lookup,
            region,
            AMP_SIGNING_SERVICE,
          );
        } catch (err) {
          throw new AmpError(403, err instanceof Ec2ApiError ? `${err.code}: ${err.message}` : String(err));
        }
        for (const [name, value] of Object.entries(REMOTE_WRITE_HEADERS)) {
          if (req.headers[name] !== value) {
            throw new AmpError(400, `header ${name} is ${JSON.stringify(req.headers[name])}, expected ${value}`);
          }
        }
        try {
          decoded = decodeWriteRequest(body);
        } catch (err) {
          throw new AmpError(400, `not a snappy-compressed WriteRequest: ${(err as Error).message}`);
        }
        if (down) throw new AmpError(503, "the fake AMP endpoint is set down");
      } catch (err) {
        const e = err instanceof AmpError ? err : new AmpError(500, String(err));
        status = e.status;
        error = e.message;
      }
      const atMs = Date.now();
      if (status === 200 && decoded) {
        for (const ts of decoded.timeseries) {
          for (const s of ts.samples) {
            samples.push({ labels: ts.labels, value: s.value, timestampMs: s.timestampMs, receivedMs: atMs });
          }
        }
      }
      requests.push({
        from: sourceOf(req),
        method: req.method ?? "",
        path: url.pathname,
        status,
        atMs,
        accessKeyId,
        series: decoded?.timeseries.length,
        samples: decoded?.timeseries.reduce((n, ts) => n + ts.samples.length, 0),
        metadata: decoded?.metadata.length,
        error,
      });
      if (status === 200) res.writeHead(200).end();
      else res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify({ message: error }));
    });
  });

  let stopped: Promise<void> | undefined;
  let listening = false;
  const stop = () =>
    (stopped ??= (async () => {
      if (listening) await close(server);
    })());
  cleanup.add(`fake AMP endpoint on ${address}`, stop);
  const bound = await listen(server, port, address);
  listening = true;
  const endpoint = `http://${address}:${bound}`;
  return {
    endpoint,
    remoteWriteUrl: `${endpoint}${path}`,
    samples,
    requests,
    setDown(value) {
      if (typeof value !== "boolean") throw bad("setDown", value, "true or false");
      down = value;
    },
    stop,
  };
}
