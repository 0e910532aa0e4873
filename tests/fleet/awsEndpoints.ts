/**
 * The fleet's stand-ins for the two AWS endpoints Prometheus' EC2 discovery talks to, run in the
 * harness process on the fleet bridge and stopped by the run's Cleanup:
 *
 * (a) a fake EC2 Query API (tests/e2e/fakeEc2.ts's parser and answers, filters applied for real)
 *     on the bridge address, listing the fleet's hosts with the stack's tags; every request must
 *     carry a SigV4 signature made with credentials this IMDS handed out, and the signature is
 *     verified, so a target found proves Prometheus signed with the instance profile's keys;
 * (b) a fake instance metadata service at 169.254.169.254:80 (the /32 is added to the bridge;
 *     the hosts reach it through the route tests/fleet/seed.ts gives them, via the bridge
 *     address), IMDSv2 only, as infra/host.ts launches the instances (httpTokens "required").
 *
 * What the IMDS answers is what aws-sdk-go v1 asks. Prometheus 2.42 (Debian's 2.42.0+ds, built
 * against Debian 12's golang-github-aws-aws-sdk-go-dev 1.44.133; upstream's go.mod pins
 * 1.44.187, whose ec2metadata, ec2rolecreds, defaults and session packages are the same)
 * creates its session in discovery/aws/ec2.go (ec2Client) with no static keys, so the session's
 * default chain (aws/session/credentials.go, resolveCredsFromProfile's default case) ends in
 * defaults.RemoteCredProvider -> ec2RoleProvider (aws/defaults/defaults.go) at the resolver's
 * ec2metadata endpoint, http://169.254.169.254 (the `endpoint` of the ec2_sd config is the EC2
 * API's, not the metadata service's). Then, in aws-sdk-go v1.44.133:
 *   - aws/ec2metadata/token_provider.go + api.go (getToken): PUT /latest/api/token with
 *     `x-aws-ec2-metadata-token-ttl-seconds: 21600`; service.go's unmarshalTokenHandler takes
 *     the body as the token and REQUIRES the same header in the answer (ParseInt of it);
 *     every later request sends `x-aws-ec2-metadata-token`. A 403/404/405 on the PUT would
 *     make the SDK fall back to IMDSv1, a 401 on a GET makes it fetch a token again
 *     (enableTokenProviderHandler): so a GET without a valid token answers 401 here, as EC2 does
 *     with httpTokens "required", and an IMDSv1 fallback cannot pass unnoticed.
 *   - aws/credentials/ec2rolecreds/ec2_role_provider.go: GET
 *     /latest/meta-data/iam/security-credentials/ (one role name per line, the first is used),
 *     then /latest/meta-data/iam/security-credentials/<role>: JSON whose Code must be
 *     "Success", with AccessKeyId, SecretAccessKey, Token and Expiration (RFC 3339; the
 *     provider renews 5 minutes before it, so it is hours away here).
 *   - The region document: Prometheus asks the metadata service for the region only when the
 *     ec2_sd config has none (EC2SDConfig.UnmarshalYAML: ec2metadata Region(), which reads
 *     /latest/meta-data/placement/availability-zone); the rendered config always has one. It is
 *     answered anyway, as is /latest/dynamic/instance-identity/document, per instance.
 *
 * Answers are per instance, told apart by the request's source address (the hosts' private IPs),
 * as EC2's per-instance metadata service is.
 *
 * Stand-in values, not the stack's: the arguments provision.ts passes today carry only instance
 * id, private IP and tags, so the AMI id, instance type, zone, subnet and VPC in the EC2 answers
 * default to fixed fleet values (placeholders that no filter of prometheus.yml looks at). Each
 * instance's role is the caller's to name, from the stack plan (stackPlan.ts instanceRole): on AWS
 * only the Prometheus and Loki hosts have a profile (infra/stack.ts), and an instance without one
 * gets 404 for iam/info and iam/security-credentials/ (awsdocs/iam-user-guide
 * doc_source/troubleshoot_iam-ec2.md, "I can't access the temporary security credentials";
 * DataDog/dd-agent#1884), so a host that needs credentials without a profile fails here as
 * there. What this cannot prove: IAM policy evaluation (any
 * issued key may call any action), the IMDS hop limit of 1, credential expiry and rotation, and
 * anything of the real EC2 API beyond the two actions and the filters the fake implements.
 */
import * as crypto from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { answer, Ec2ApiError, errorXml, parseEc2Request, type Ec2Instance, type Ec2Request } from "../e2e/fakeEc2";
import type { Cleanup } from "./cleanup";
import { linkExists } from "./bridge";
import { probe, run } from "./exec";
import type { StartAwsEndpoints } from "./provision";

const IP = "/usr/sbin/ip";

/** The link-local address every EC2 instance reaches its metadata service at. */
export const IMDS_ADDRESS = "169.254.169.254";
export const IMDS_PORT = 80;
/** aws-sdk-go's and EC2's limits for IMDSv2 token TTLs (seconds). */
const TOKEN_TTL_MAX = 21600;

export type InstanceState = Ec2Instance["state"];
const STATES: readonly InstanceState[] = ["pending", "running", "stopping", "stopped", "shutting-down", "terminated"];

/** One fleet host as EC2 would list it; the first three and roleName are required (StartAwsEndpoints). */
export interface FleetInstance {
  readonly instanceId: string;
  readonly privateIp: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly state?: InstanceState;
  readonly availabilityZone?: string;
  readonly instanceType?: string;
  readonly imageId?: string;
  readonly subnetId?: string;
  /** The Elastic IP associated with it (infra/host.ts gives every host one): its public address for good. */
  readonly elasticIp?: string;
  /**
   * The IAM role of the instance's profile, or null for an instance without one: no default, so
   * no host gets credentials its stack does not give it.
   */
  readonly roleName: string | null;
}

export interface AwsEndpointsArgs {
  /** The interface the IMDS address goes on (the fleet bridge). */
  readonly bridge: string;
  /** The host's address on it: the EC2 API listens there. */
  readonly bridgeAddress: string;
  readonly instances: readonly FleetInstance[];
  readonly region: string;
  /** Page size of DescribeInstances when the caller sends no MaxResults (default 100). */
  readonly pageSize?: number;
}

/** One request either endpoint received, for checks on what the hosts asked. */
export interface AwsRequest {
  readonly endpoint: "ec2" | "imds";
  readonly from: string;
  readonly method: string;
  /** The EC2 action, or the IMDS path. */
  readonly what: string;
  readonly status: number;
  /** EC2: the access key the request was signed with (verified), when it was. */
  readonly accessKeyId?: string;
  /** IMDS: whether the request carried a valid IMDSv2 token. */
  readonly token?: boolean;
  /** Why it was refused, when it was. */
  readonly error?: string;
}

export interface IssuedCredentials {
  readonly instanceId: string;
  readonly roleName: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly token: string;
  readonly expiration: string;
}

export interface AwsEndpoints {
  /** http://<bridge address>:<port>: the EC2 API endpoint for prometheus.yml. */
  readonly ec2Endpoint: string;
  /** http://169.254.169.254 */
  readonly imdsUrl: string;
  /** Every request either endpoint got, in order. */
  readonly requests: readonly AwsRequest[];
  /** The credentials the IMDS issues, per instance id (those with a role). */
  readonly credentials: ReadonlyMap<string, IssuedCredentials>;
  /** Marks an instance pending/running/stopped/...; DescribeInstances answers with it from the next request. */
  setState(instanceId: string, state: InstanceState): void;
  /** Adds an instance (a host that joins after the start). */
  addInstance(instance: FleetInstance): void;
  /**
   * A stop and a start outside Pulumi: stopped, then running again, and, as EC2 does, a new
   * auto-assigned public address unless an Elastic IP is associated (that one stays).
   */
  stopStart(instanceId: string): void;
  /** The instance's public address as DescribeInstances gives it now. */
  publicIpOf(instanceId: string): string | undefined;
  /**
   * The operator's keys (what `pulumi up` runs with): the only ones GetConsoleOutput answers, as
   * the instances' roles have no ec2:GetConsoleOutput on AWS (infra/iam.ts).
   */
  readonly operatorCredentials: Omit<IssuedCredentials, "instanceId" | "roleName">;
  /** Where GetConsoleOutput reads an instance's console (the fleet's nspawn console log). */
  setConsole(instanceId: string, read: () => string): void;
  stop(): Promise<void>;
}

/** EC2's console output limit: the newest 64 KiB with Latest, the first 64 KiB without. */
export const CONSOLE_OUTPUT_BYTES = 64 * 1024;

/**
 * GetConsoleOutput as the EC2 Query API answers it (API reference GetConsoleOutput: InstanceId,
 * Latest; the response carries instanceId, timestamp and output, base64-encoded). An unknown or
 * terminated instance is InvalidInstanceID.NotFound; nothing printed yet is an empty output.
 */
export function answerConsoleOutput(
  body: string,
  instances: readonly Ec2Instance[],
  consoles: ReadonlyMap<string, () => string>,
): { status: number; body: string } {
  const params = new URLSearchParams(body);
  const instanceId = params.get("InstanceId") ?? "";
  const instance = instances.find((i) => i.instanceId === instanceId && i.state !== "terminated");
  if (!instance) {
    throw new Ec2ApiError("InvalidInstanceID.NotFound", `The instance ID '${instanceId}' does not exist`);
  }
  const latest = params.get("Latest") === "true";
  const all = Buffer.from(consoles.get(instanceId)?.() ?? "", "utf8");
  const shown = latest
    ? all.subarray(Math.max(0, all.length - CONSOLE_OUTPUT_BYTES))
    : all.subarray(0, CONSOLE_OUTPUT_BYTES);
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?>\n<GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">' +
    "<requestId>00000000-0000-4000-8000-000000000002</requestId>" +
    `<instanceId>${instanceId}</instanceId>` +
    `<timestamp>${new Date().toISOString()}</timestamp>` +
    `<output>${shown.toString("base64")}</output>` +
    "</GetConsoleOutputResponse>";
  return { status: 200, body: xml };
}

/** Array.isArray without its type guard (which would widen a typed array to any[]). */
const isArray = (v: unknown): boolean => Array.isArray(v);

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function bad(key: string, value: unknown, expected: string): Error {
  return new Error(`startAwsEndpoints: ${key} ${JSON.stringify(value)}: expected ${expected}`);
}

/** EC2's auto-assigned public addresses: a new one at every start (documentation range). */
let ephemeralCounter = 0;
const nextEphemeralIp = () => `198.51.100.${(++ephemeralCounter % 250) + 1}`;

/** Stand-in fleet values where the caller gives none (no filter of prometheus.yml reads them). */
function toEc2(i: FleetInstance, region: string, where: string): Ec2Instance {
  if (typeof i.instanceId !== "string" || !/^i-[0-9a-f]{8,17}$/.test(i.instanceId)) {
    throw bad(`${where}.instanceId`, i.instanceId, "i- and 8 to 17 hex digits, like EC2's");
  }
  if (typeof i.privateIp !== "string" || !IPV4.test(i.privateIp)) {
    throw bad(`${where}.privateIp`, i.privateIp, "an IPv4 address");
  }
  if (typeof i.tags !== "object" || i.tags === null) throw bad(`${where}.tags`, i.tags, "an object of strings");
  for (const [k, v] of Object.entries(i.tags)) {
    if (typeof v !== "string") throw bad(`${where}.tags.${k}`, v, "a string");
  }
  const state = i.state ?? "running";
  if (!STATES.includes(state)) throw bad(`${where}.state`, state, STATES.join(", "));
  const hex = i.instanceId.slice(2).padStart(17, "0");
  return {
    instanceId: i.instanceId,
    privateIp: i.privateIp,
    tags: { ...i.tags },
    state,
    imageId: i.imageId ?? "ami-0f1ee70000000000a",
    instanceType: i.instanceType ?? "t3.small",
    availabilityZone: i.availabilityZone ?? `${region}a`,
    subnetId: i.subnetId ?? `subnet-${hex}`,
    publicIp: i.elasticIp ?? nextEphemeralIp(),
    vpcId: "vpc-0f1ee70000000000a",
    architecture: "x86_64",
    ownerId: "123456789012",
  };
}

const sha256 = (data: string | Buffer) => crypto.createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => crypto.createHmac("sha256", key).update(data).digest();

/** RFC 3986 encoding as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
const uriEncode = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Verifies a SigV4 header signature (aws-sdk-go v1 aws/signer/v4/v4.go: canonical request of
 * method, path, sorted query, the signed headers lowercased with trimmed values, and the hex
 * SHA-256 of the body; string to sign; key derived from the secret, date, region and service).
 * Returns the access key id, or throws an Ec2ApiError as EC2 would answer. `service` is the
 * credential scope's service: ec2 for the EC2 API, aps for the fake AMP endpoint (fakeAmp.ts).
 */
export function verifySigV4(
  req: { method: string; url: string; headers: http.IncomingHttpHeaders },
  body: Buffer,
  lookup: (accessKeyId: string) => { secretAccessKey: string; token: string } | undefined,
  region: string,
  expectedService = "ec2",
): string {
  const auth = req.headers.authorization;
  if (typeof auth !== "string")
    throw new Ec2ApiError("AuthFailure", "the request is not signed (no Authorization)", 401);
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) throw new Ec2ApiError("AuthFailure", `malformed Authorization header ${auth}`, 401);
  const [, accessKeyId, date, scopeRegion, service, signedHeaders, signature] = m;
  const creds = lookup(accessKeyId);
  if (!creds) {
    throw new Ec2ApiError("AuthFailure", `access key ${accessKeyId} was not issued by the fleet's IMDS`, 401);
  }
  if (scopeRegion !== region || service !== expectedService) {
    throw new Ec2ApiError(
      "AuthFailure",
      `credential scope ${scopeRegion}/${service}, expected ${region}/${expectedService}`,
      401,
    );
  }
  if (req.headers["x-amz-security-token"] !== creds.token) {
    throw new Ec2ApiError("AuthFailure", "the session token is missing or not the one issued with the key", 401);
  }
  const amzDate = req.headers["x-amz-date"];
  if (typeof amzDate !== "string" || !amzDate.startsWith(date)) {
    throw new Ec2ApiError("AuthFailure", `X-Amz-Date ${String(amzDate)} does not match the scope date ${date}`, 401);
  }
  const names = signedHeaders.split(";");
  for (const required of ["host", "x-amz-date", "x-amz-security-token"]) {
    if (!names.includes(required)) throw new Ec2ApiError("AuthFailure", `${required} is not signed`, 401);
  }
  const url = new URL(req.url, "http://x");
  const query = [...url.searchParams.entries()]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const headerValue = (name: string) => {
    const v = req.headers[name];
    return (Array.isArray(v) ? v.join(",") : (v ?? "")).trim().replace(/\s+/g, " ");
  };
  const canonical = [
    req.method,
    url.pathname || "/",
    query,
    names.map((n) => `${n}:${headerValue(n)}\n`).join(""),
    signedHeaders,
    sha256(body),
  ].join("\n");
  const scope = `${date}/${scopeRegion}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, date), scopeRegion), service), "aws4_request");
  const expected = crypto.createHmac("sha256", key).update(toSign).digest("hex");
  if (!crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) {
    throw new Ec2ApiError(
      "SignatureDoesNotMatch",
      "The request signature we calculated does not match the signature you provided.",
      403,
    );
  }
  return accessKeyId;
}

export const sourceOf = (req: http.IncomingMessage) => (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");

/**
 * Calls `handle` with the whole body. A client that goes away mid-request (Prometheus restarted
 * by a push while a discovery call was in flight) ends only that request: an unhandled
 * "aborted" error would end the harness process and leave the whole fleet behind (seen once).
 */
export function withBody(req: http.IncomingMessage, res: http.ServerResponse, handle: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on("error", () => undefined);
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("error", () => res.destroy());
  req.on("end", () => {
    try {
      handle(Buffer.concat(chunks));
    } catch (err) {
      if (res.headersSent) res.destroy();
      else res.writeHead(500, { "Content-Type": "text/plain" }).end(`fake AWS endpoint failed: ${String(err)}\n`);
    }
  });
}

export function listen(server: http.Server, port: number, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen on ${address}:${port}: ${err.code ?? err.message}`)),
    );
    server.listen(port, address, () => resolve((server.address() as AddressInfo).port));
  });
}

export const close = (server: http.Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

/** Starts both endpoints; everything is undone by `cleanup` (or by stop(), once). */
export async function startAwsEndpoints(cleanup: Cleanup, args: AwsEndpointsArgs): Promise<AwsEndpoints> {
  const { bridge, bridgeAddress, region } = args;
  if (typeof bridge !== "string" || !/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) {
    throw bad("bridge", bridge, "a Linux interface name");
  }
  if (typeof bridgeAddress !== "string" || !IPV4.test(bridgeAddress)) {
    throw bad("bridgeAddress", bridgeAddress, "an IPv4 address");
  }
  if (typeof region !== "string" || !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    throw bad("region", region, "an AWS region name like us-east-1");
  }
  const instances: readonly FleetInstance[] = args.instances;
  if (!isArray(instances)) throw bad("instances", instances, "an array");
  const pageSize = args.pageSize ?? 100;
  if (!Number.isInteger(pageSize) || pageSize < 1) throw bad("pageSize", pageSize, "a positive integer");
  if (!linkExists(bridge)) throw bad("bridge", bridge, "an existing interface (the fleet bridge)");

  // The array the fake reads on every request: setState/addInstance replace or add elements.
  const live: Ec2Instance[] = [];
  // A terminated instance's private IP is free again (a replacement reuses it, deleteBeforeReplace).
  const holder = (ip: string, except?: string) =>
    live.find((x) => x.privateIp === ip && x.state !== "terminated" && x.instanceId !== except);
  const roles = new Map<string, string | null>();
  const elasticIps = new Map<string, string>();
  const credentials = new Map<string, IssuedCredentials>();
  const runSecret = crypto.randomBytes(16).toString("hex");
  const add = (i: FleetInstance, where: string) => {
    const ec2 = toEc2(i, region, where);
    if (live.some((x) => x.instanceId === ec2.instanceId)) throw bad(`${where}.instanceId`, ec2.instanceId, "unique");
    if (ec2.state !== "terminated" && holder(ec2.privateIp)) {
      throw bad(`${where}.privateIp`, ec2.privateIp, `unique (${holder(ec2.privateIp)?.instanceId} has it)`);
    }
    const roleName = i.roleName;
    if (roleName !== null && (typeof roleName !== "string" || !/^[\w+=,.@-]{1,64}$/.test(roleName))) {
      throw bad(`${where}.roleName`, roleName, "an IAM role name");
    }
    if (i.elasticIp !== undefined && !IPV4.test(i.elasticIp)) {
      throw bad(`${where}.elasticIp`, i.elasticIp, "an IPv4 address");
    }
    live.push(ec2);
    roles.set(ec2.instanceId, roleName);
    if (i.elasticIp !== undefined) elasticIps.set(ec2.instanceId, i.elasticIp);
    if (roleName !== null) {
      const digest = (what: string) => sha256(`${runSecret}/${ec2.instanceId}/${what}`);
      credentials.set(ec2.instanceId, {
        instanceId: ec2.instanceId,
        roleName,
        // Temporary credentials' key ids start with ASIA.
        accessKeyId: `ASIA${digest("key").slice(0, 16).toUpperCase()}`,
        secretAccessKey: Buffer.from(digest("secret"), "hex").toString("base64").slice(0, 40),
        token: Buffer.from(digest("token") + digest("token2"), "hex").toString("base64"),
        expiration: new Date(Date.now() + 6 * 3600_000).toISOString().replace(/\.\d{3}Z$/, "Z"),
      });
    }
  };
  for (const [n, i] of instances.entries()) add(i, `instances[${n}]`);
  const operatorDigest = (what: string) => sha256(`${runSecret}/operator/${what}`);
  const operatorCredentials = {
    accessKeyId: `ASIA${operatorDigest("key").slice(0, 16).toUpperCase()}`,
    secretAccessKey: Buffer.from(operatorDigest("secret"), "hex").toString("base64").slice(0, 40),
    token: Buffer.from(operatorDigest("token") + operatorDigest("token2"), "hex").toString("base64"),
    expiration: new Date(Date.now() + 6 * 3600_000).toISOString().replace(/\.\d{3}Z$/, "Z"),
  };
  const consoles = new Map<string, () => string>();
  const byKey = (accessKeyId: string) =>
    accessKeyId === operatorCredentials.accessKeyId
      ? operatorCredentials
      : [...credentials.values()].find((c) => c.accessKeyId === accessKeyId);

  const requests: AwsRequest[] = [];

  // (a) The EC2 API: parse, verify the signature, answer with tests/e2e/fakeEc2.ts's answer().
  const ec2Server = http.createServer((req, res) => {
    withBody(req, res, (body) => {
      let status: number;
      let xml: string;
      let what = "?";
      let accessKeyId: string | undefined;
      let error: string | undefined;
      try {
        const request: Ec2Request = parseEc2Request(
          req.method === "POST" ? body.toString() : (req.url ?? "").replace(/^[^?]*\??/, ""),
        );
        what = request.action;
        accessKeyId = verifySigV4(
          { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers },
          body,
          byKey,
          region,
        );
        if (request.action === "GetConsoleOutput") {
          if (accessKeyId !== operatorCredentials.accessKeyId) {
            throw new Ec2ApiError(
              "UnauthorizedOperation",
              "You are not authorized to perform this operation (only the operator's keys may read consoles).",
              403,
            );
          }
          ({ status, body: xml } = answerConsoleOutput(
            req.method === "POST" ? body.toString() : (req.url ?? "").replace(/^[^?]*\??/, ""),
            live,
            consoles,
          ));
        } else {
          ({ status, body: xml } = answer(live, request, { region, pageSize }));
        }
      } catch (err) {
        const e = err instanceof Ec2ApiError ? err : new Ec2ApiError("InternalError", String(err), 500);
        status = e.status;
        xml = errorXml(e.code, e.message);
        error = `${e.code}: ${e.message}`;
      }
      requests.push({
        endpoint: "ec2",
        from: sourceOf(req),
        method: req.method ?? "",
        what,
        status,
        accessKeyId,
        error,
      });
      res.writeHead(status, { "Content-Type": "text/xml;charset=UTF-8" }).end(xml);
    });
  });

  // (b) The IMDS: IMDSv2 tokens bound to the instance that asked for them.
  const tokens = new Map<string, { instanceId: string; expires: number }>();
  const imdsServer = http.createServer((req, res) => {
    withBody(req, res, () => {
      const from = sourceOf(req);
      const path = new URL(req.url ?? "/", "http://x").pathname;
      const instance = holder(from);
      let token = false;
      const reply = (status: number, text: string, headers: Record<string, string> = {}, error?: string) => {
        requests.push({ endpoint: "imds", from, method: req.method ?? "", what: path, status, token, error });
        res.writeHead(status, { "Content-Type": "text/plain", ...headers }).end(text);
      };
      if (!instance) return reply(403, "Forbidden\n", {}, `no fleet instance has the address ${from}`);
      if (path === "/latest/api/token") {
        if (req.method !== "PUT") return reply(405, "Method Not Allowed\n");
        // EC2 refuses proxied token requests (X-Forwarded-For) and TTLs outside 1..21600.
        if (req.headers["x-forwarded-for"]) return reply(403, "Forbidden\n", {}, "X-Forwarded-For on a token PUT");
        const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > TOKEN_TTL_MAX) {
          return reply(400, "Bad Request\n", {}, "x-aws-ec2-metadata-token-ttl-seconds missing or out of 1..21600");
        }
        const value = crypto.randomBytes(32).toString("base64");
        tokens.set(value, { instanceId: instance.instanceId, expires: Date.now() + ttl * 1000 });
        return reply(200, value, { "x-aws-ec2-metadata-token-ttl-seconds": String(ttl) });
      }
      if (req.method !== "GET" && req.method !== "HEAD") return reply(405, "Method Not Allowed\n");
      const held = tokens.get(String(req.headers["x-aws-ec2-metadata-token"] ?? ""));
      token = held !== undefined && held.instanceId === instance.instanceId && held.expires > Date.now();
      // httpTokens "required" (infra/host.ts): no IMDSv1.
      if (!token) return reply(401, "Unauthorized\n", {}, "no valid IMDSv2 token");
      const roleName = roles.get(instance.instanceId) ?? null;
      const creds = credentials.get(instance.instanceId);
      const json = (v: unknown) => reply(200, JSON.stringify(v, null, 2));
      const identity = {
        accountId: instance.ownerId,
        architecture: instance.architecture,
        availabilityZone: instance.availabilityZone,
        imageId: instance.imageId,
        instanceId: instance.instanceId,
        instanceType: instance.instanceType,
        pendingTime: new Date(0).toISOString().replace(/\.\d{3}Z$/, "Z"),
        privateIp: instance.privateIp,
        region,
        version: "2017-09-30",
      };
      const credsPath = "/latest/meta-data/iam/security-credentials/";
      switch (path) {
        case "/latest/meta-data/instance-id":
          return reply(200, instance.instanceId);
        case "/latest/meta-data/ami-id":
          return reply(200, instance.imageId);
        case "/latest/meta-data/local-ipv4":
          return reply(200, instance.privateIp);
        case "/latest/meta-data/placement/availability-zone":
          return reply(200, instance.availabilityZone);
        case "/latest/meta-data/placement/region":
          return reply(200, region);
        case "/latest/dynamic/instance-identity/document":
          return json(identity);
        case "/latest/meta-data/iam/info":
          if (!roleName) return reply(404, "Not Found\n");
          return json({
            Code: "Success",
            LastUpdated: identity.pendingTime,
            InstanceProfileArn: `arn:aws:iam::${instance.ownerId}:instance-profile/${roleName}`,
            InstanceProfileId: `AIPA${sha256(roleName).slice(0, 17).toUpperCase()}`,
          });
        case credsPath:
          return roleName ? reply(200, roleName) : reply(404, "Not Found\n");
        default:
          if (creds && path === `${credsPath}${creds.roleName}`) {
            return json({
              Code: "Success",
              LastUpdated: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
              Type: "AWS-HMAC",
              AccessKeyId: creds.accessKeyId,
              SecretAccessKey: creds.secretAccessKey,
              Token: creds.token,
              Expiration: creds.expiration,
            });
          }
          return reply(404, "Not Found\n");
      }
    });
  });

  // Registered before each step exists, so a failure half-way still undoes what was made.
  let stopped: Promise<void> | undefined;
  let addressAdded = false;
  let ec2Listening = false;
  let imdsListening = false;
  const stop = () =>
    (stopped ??= (async () => {
      if (imdsListening) await close(imdsServer);
      if (ec2Listening) await close(ec2Server);
      if (addressAdded && linkExists(bridge)) run(IP, ["addr", "del", `${IMDS_ADDRESS}/32`, "dev", bridge]);
    })());
  cleanup.add(`fake EC2 API and IMDS on ${bridge}`, stop);

  const held = probe(IP, ["-o", "addr", "show", "to", `${IMDS_ADDRESS}/32`]);
  if (held.out.trim() !== "") {
    throw new Error(
      `${IMDS_ADDRESS} is already an address of this machine (${held.out.trim()}): another fleet run, ` +
        `or one that was killed (ip addr del ${IMDS_ADDRESS}/32 dev <interface>)`,
    );
  }
  run(IP, ["addr", "add", `${IMDS_ADDRESS}/32`, "dev", bridge]);
  addressAdded = true;
  await listen(imdsServer, IMDS_PORT, IMDS_ADDRESS);
  imdsListening = true;
  const ec2Port = await listen(ec2Server, 0, bridgeAddress);
  ec2Listening = true;

  return {
    ec2Endpoint: `http://${bridgeAddress}:${ec2Port}`,
    imdsUrl: `http://${IMDS_ADDRESS}`,
    requests,
    credentials,
    setState(instanceId, state) {
      const n = live.findIndex((i) => i.instanceId === instanceId);
      if (n < 0) throw bad("setState instanceId", instanceId, `one of ${live.map((i) => i.instanceId).join(", ")}`);
      if (!STATES.includes(state)) throw bad("setState state", state, STATES.join(", "));
      const other = state === "terminated" ? undefined : holder(live[n].privateIp, instanceId);
      if (other) throw bad("setState state", state, `not while ${other.instanceId} holds ${live[n].privateIp}`);
      live[n] = { ...live[n], state };
    },
    addInstance(instance) {
      add(instance, "addInstance");
    },
    stopStart(instanceId) {
      const n = live.findIndex((i) => i.instanceId === instanceId && i.state !== "terminated");
      if (n < 0) throw bad("stopStart instanceId", instanceId, `one of ${live.map((i) => i.instanceId).join(", ")}`);
      const elastic = elasticIps.get(instanceId);
      live[n] = { ...live[n], state: "running", publicIp: elastic ?? nextEphemeralIp() };
    },
    publicIpOf(instanceId) {
      return live.find((i) => i.instanceId === instanceId && i.state !== "terminated")?.publicIp;
    },
    operatorCredentials,
    setConsole(instanceId, read) {
      if (!live.some((i) => i.instanceId === instanceId)) {
        throw bad("setConsole instanceId", instanceId, `one of ${live.map((i) => i.instanceId).join(", ")}`);
      }
      consoles.set(instanceId, read);
    },
    stop,
  };
}

// The contract provision.ts calls (type-checked here, so a drift of either side fails tsc).
const contract: StartAwsEndpoints = startAwsEndpoints;
void contract;
