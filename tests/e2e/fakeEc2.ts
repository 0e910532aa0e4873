/**
 * A fake of the two EC2 Query API actions Prometheus' EC2 discovery calls (aws-sdk-go v1 in
 * Prometheus 2.42): DescribeAvailabilityZones once, then DescribeInstances page by page. Requests
 * are POSTed form-encoded (Action, Version=2016-11-15, Filter.N.Name, Filter.N.Value.M,
 * NextToken); answers are the XML the SDK's ec2query unmarshaller reads. Filters are applied for
 * real, so a wrong filter in the rendered prometheus.yml shows up as a missing or extra target.
 * Signatures are not checked.
 */
import * as http from "node:http";

export interface Ec2Instance {
  readonly instanceId: string;
  readonly imageId: string;
  readonly instanceType: string;
  readonly privateIp: string;
  readonly state: "pending" | "running" | "stopping" | "stopped" | "shutting-down" | "terminated";
  readonly availabilityZone: string;
  readonly subnetId: string;
  readonly vpcId: string;
  readonly architecture: string;
  readonly ownerId: string;
  readonly tags: Readonly<Record<string, string>>;
  /**
   * The public address, when it has one: its Elastic IP while one is associated (kept through a
   * stop and start), else the one EC2 assigned at its last start.
   */
  readonly publicIp?: string;
}

export interface Ec2Filter {
  readonly name: string;
  readonly values: readonly string[];
}

export interface Ec2Request {
  readonly action: string;
  readonly version: string;
  readonly filters: readonly Ec2Filter[];
  readonly nextToken?: string;
  readonly maxResults?: number;
}

export class Ec2ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** EC2 state codes (DescribeInstances' instanceState/code). */
const STATE_CODES: Record<Ec2Instance["state"], number> = {
  pending: 0,
  running: 16,
  "shutting-down": 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

/** Parses a form-encoded Query API body (or query string) into action, version and filters. */
export function parseEc2Request(body: string): Ec2Request {
  const params = new URLSearchParams(body);
  const action = params.get("Action");
  if (!action) throw new Ec2ApiError("MissingAction", "the request has no Action parameter");
  const names = new Map<number, string>();
  const values = new Map<number, Map<number, string>>();
  for (const [key, value] of params) {
    let m = /^Filter\.(\d+)\.Name$/.exec(key);
    if (m) {
      names.set(Number(m[1]), value);
      continue;
    }
    m = /^Filter\.(\d+)\.Value\.(\d+)$/.exec(key);
    if (m) {
      const n = Number(m[1]);
      if (!values.has(n)) values.set(n, new Map());
      values.get(n)?.set(Number(m[2]), value);
      continue;
    }
    if (key.startsWith("Filter.")) throw new Ec2ApiError("InvalidParameterValue", `malformed filter parameter ${key}`);
  }
  const filters: Ec2Filter[] = [...names.keys()]
    .sort((a, b) => a - b)
    .map((n) => {
      const vals = values.get(n);
      if (!vals || vals.size === 0) throw new Ec2ApiError("InvalidParameterValue", `filter ${n} has no values`);
      return {
        name: names.get(n) ?? "",
        values: [...vals.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v),
      };
    });
  for (const n of values.keys()) {
    if (!names.has(n)) throw new Ec2ApiError("InvalidParameterValue", `filter ${n} has values but no name`);
  }
  const maxResults = params.get("MaxResults");
  return {
    action,
    version: params.get("Version") ?? "",
    filters,
    ...(params.get("NextToken") ? { nextToken: params.get("NextToken") ?? "" } : {}),
    ...(maxResults ? { maxResults: Number(maxResults) } : {}),
  };
}

/** EC2 filter values are literal except for the wildcards `*` and `?`. */
function wildcard(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "s");
}

/** The instance's values for one filter name; unknown names are an error, as on AWS. */
function filterSubject(instance: Ec2Instance, name: string): readonly string[] {
  if (name.startsWith("tag:")) {
    const value = instance.tags[name.slice(4)];
    return value === undefined ? [] : [value];
  }
  switch (name) {
    case "tag-key":
      return Object.keys(instance.tags);
    case "tag-value":
      return Object.values(instance.tags);
    case "instance-state-name":
      return [instance.state];
    case "instance-id":
      return [instance.instanceId];
    case "instance-type":
      return [instance.instanceType];
    case "private-ip-address":
      return [instance.privateIp];
    case "availability-zone":
      return [instance.availabilityZone];
    case "vpc-id":
      return [instance.vpcId];
    case "subnet-id":
      return [instance.subnetId];
    default:
      throw new Ec2ApiError("InvalidParameterValue", `The filter '${name}' is invalid`);
  }
}

/** Filters are ANDed; the values of one filter are ORed. */
export function matchesFilters(instance: Ec2Instance, filters: readonly Ec2Filter[]): boolean {
  return filters.every((f) => {
    const subject = filterSubject(instance, f.name);
    return f.values.some((v) => subject.some((s) => wildcard(v).test(s)));
  });
}

const escapeXml = (text: string) =>
  text.replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c] ?? c);

const el = (name: string, content: string) => `<${name}>${content}</${name}>`;
const text = (name: string, value: string | number) => el(name, escapeXml(String(value)));
const NS = "http://ec2.amazonaws.com/doc/2016-11-15/";

function instanceXml(i: Ec2Instance): string {
  const privateDns = `ip-${i.privateIp.replace(/\./g, "-")}.ec2.internal`;
  return el(
    "item",
    [
      text("instanceId", i.instanceId),
      text("imageId", i.imageId),
      el("instanceState", text("code", STATE_CODES[i.state]) + text("name", i.state)),
      text("privateDnsName", privateDns),
      text("dnsName", ""),
      text("instanceType", i.instanceType),
      el("placement", text("availabilityZone", i.availabilityZone) + text("tenancy", "default")),
      text("subnetId", i.subnetId),
      text("vpcId", i.vpcId),
      text("privateIpAddress", i.privateIp),
      // The public address is the item's ipAddress, absent without one (@aws-sdk/client-ec2
      // 3.1178.0 dist-cjs/index.js, the Instance schema: PublicIpAddress <- xml name ipAddress).
      ...(i.publicIp !== undefined && i.state === "running" ? [text("ipAddress", i.publicIp)] : []),
      text("architecture", i.architecture),
      el(
        "networkInterfaceSet",
        el(
          "item",
          text("networkInterfaceId", `eni-${i.instanceId.slice(2)}`) +
            text("subnetId", i.subnetId) +
            text("vpcId", i.vpcId) +
            text("privateIpAddress", i.privateIp) +
            el("ipv6AddressesSet", ""),
        ),
      ),
      el(
        "tagSet",
        Object.entries(i.tags)
          .map(([k, v]) => el("item", text("key", k) + text("value", v)))
          .join(""),
      ),
    ].join(""),
  );
}

/** One page of DescribeInstances: one reservation per instance, as Pulumi launches them one by one. */
export function describeInstancesXml(instances: readonly Ec2Instance[], nextToken?: string): string {
  const reservations = instances
    .map((i) =>
      el(
        "item",
        text("reservationId", `r-${i.instanceId.slice(2)}`) +
          text("ownerId", i.ownerId) +
          el("groupSet", "") +
          el("instancesSet", instanceXml(i)),
      ),
    )
    .join("");
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstancesResponse xmlns="${NS}">` +
    text("requestId", "00000000-0000-4000-8000-000000000000") +
    el("reservationSet", reservations) +
    (nextToken ? text("nextToken", nextToken) : "") +
    "</DescribeInstancesResponse>"
  );
}

/** Zone ids as AWS spells them: us-east-1b → use1-az2. */
export function zoneId(zone: string): string {
  const m = /^([a-z]+)-([a-z]+)-(\d+)([a-z])$/.exec(zone);
  if (!m) return `${zone}-id`;
  return `${m[1]}${m[2][0]}${m[3]}-az${m[4].charCodeAt(0) - 96}`;
}

export function describeAvailabilityZonesXml(region: string, zones: readonly string[]): string {
  const items = zones
    .map((z) =>
      el(
        "item",
        text("zoneName", z) +
          text("zoneId", zoneId(z)) +
          text("zoneState", "available") +
          text("regionName", region) +
          text("zoneType", "availability-zone") +
          text("optInStatus", "opt-in-not-required") +
          el("messageSet", ""),
      ),
    )
    .join("");
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeAvailabilityZonesResponse xmlns="${NS}">` +
    text("requestId", "00000000-0000-4000-8000-000000000001") +
    el("availabilityZoneInfo", items) +
    "</DescribeAvailabilityZonesResponse>"
  );
}

/** The error envelope the ec2query protocol reads (Response/Errors/Error). */
export function errorXml(code: string, message: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Response>' +
    el("Errors", el("Error", text("Code", code) + text("Message", message))) +
    text("RequestID", "00000000-0000-4000-8000-0000000000ff") +
    "</Response>"
  );
}

export interface FakeEc2Options {
  readonly region: string;
  /**
   * Page size when the caller sends no MaxResults. AWS returns everything then; the fake pages
   * anyway so the real Prometheus has to follow NextToken.
   */
  readonly pageSize: number;
}

export interface Ec2Answer {
  readonly status: number;
  readonly body: string;
}

/** Answers one Query API request (the server below is this plus HTTP). */
export function answer(instances: readonly Ec2Instance[], request: Ec2Request, options: FakeEc2Options): Ec2Answer {
  if (request.version !== "2016-11-15") {
    throw new Ec2ApiError("InvalidParameterValue", `unexpected API version ${JSON.stringify(request.version)}`);
  }
  switch (request.action) {
    case "DescribeAvailabilityZones": {
      const zones = [...new Set(instances.map((i) => i.availabilityZone))].sort();
      return { status: 200, body: describeAvailabilityZonesXml(options.region, zones) };
    }
    case "DescribeInstances": {
      const matching = instances.filter((i) => matchesFilters(i, request.filters));
      const start = request.nextToken === undefined ? 0 : decodeToken(request.nextToken);
      const size = request.maxResults ?? options.pageSize;
      const page = matching.slice(start, start + size);
      const next = start + size < matching.length ? encodeToken(start + size) : undefined;
      return { status: 200, body: describeInstancesXml(page, next) };
    }
    default:
      throw new Ec2ApiError("InvalidAction", `The action ${request.action} is not valid for this web service.`);
  }
}

const encodeToken = (offset: number) => Buffer.from(`offset:${offset}`).toString("base64");

function decodeToken(token: string): number {
  const m = /^offset:(\d+)$/.exec(Buffer.from(token, "base64").toString());
  if (!m) throw new Ec2ApiError("InvalidParameterValue", `invalid NextToken ${token}`);
  return Number(m[1]);
}

export interface FakeEc2 {
  readonly server: http.Server;
  /** Every request received, parsed, in order (for checks on what Prometheus asked). */
  readonly requests: Ec2Request[];
}

export function createFakeEc2(
  instances: readonly Ec2Instance[],
  options: FakeEc2Options,
  onRequest?: (r: Ec2Request) => void,
): FakeEc2 {
  const requests: Ec2Request[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      // The SDK POSTs form bodies; GET with a query string is accepted too, as AWS does.
      const body = req.method === "POST" ? Buffer.concat(chunks).toString() : (req.url ?? "").replace(/^[^?]*\??/, "");
      let reply: Ec2Answer;
      try {
        const request = parseEc2Request(body);
        requests.push(request);
        onRequest?.(request);
        reply = answer(instances, request, options);
      } catch (err) {
        const e = err instanceof Ec2ApiError ? err : new Ec2ApiError("InternalError", String(err), 500);
        reply = { status: e.status, body: errorXml(e.code, e.message) };
      }
      res.writeHead(reply.status, { "Content-Type": "text/xml;charset=UTF-8" });
      res.end(reply.body);
    });
  });
  return { server, requests };
}
