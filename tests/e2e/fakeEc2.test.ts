/** The fake EC2 API's request parsing, filtering, paging and XML (no root needed). */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  answer,
  createFakeEc2,
  describeInstancesXml,
  Ec2ApiError,
  matchesFilters,
  parseEc2Request,
  zoneId,
  type Ec2Instance,
} from "./fakeEc2";

const host = (n: number, tags: Record<string, string>, state: Ec2Instance["state"] = "running"): Ec2Instance => ({
  instanceId: `i-${n}`,
  imageId: "ami-1",
  instanceType: "t3.small",
  privateIp: `10.0.0.${n}`,
  state,
  availabilityZone: "us-east-1b",
  subnetId: "subnet-1",
  vpcId: "vpc-1",
  architecture: "x86_64",
  ownerId: "123456789012",
  tags: { Scrape: "true", Project: "p", Environment: "dev", ...tags },
});

const web = host(1, { Name: "p-dev-web-1", Role: "web" });
const loki = host(2, { Name: "p-dev-loki", Role: "loki" });
const stopped = host(3, { Name: "p-dev-web-2", Role: "web" }, "stopped");
const staging = host(4, { Name: "p-staging-web-1", Role: "web", Environment: "staging" });
const all = [web, loki, stopped, staging];

const body = (params: Record<string, string>) =>
  new URLSearchParams({ Action: "DescribeInstances", Version: "2016-11-15", ...params }).toString();

describe("fake EC2: requests and filters", () => {
  it("parses Filter.N.Name / Filter.N.Value.M in numeric order", () => {
    const r = parseEc2Request(
      body({
        "Filter.2.Name": "tag:Role",
        "Filter.2.Value.2": "loki",
        "Filter.2.Value.1": "web",
        "Filter.10.Name": "instance-state-name",
        "Filter.10.Value.1": "running",
        "Filter.1.Name": "tag:Scrape",
        "Filter.1.Value.1": "true",
        NextToken: "abc",
      }),
    );
    assert.equal(r.action, "DescribeInstances");
    assert.deepEqual(r.filters, [
      { name: "tag:Scrape", values: ["true"] },
      { name: "tag:Role", values: ["web", "loki"] },
      { name: "instance-state-name", values: ["running"] },
    ]);
    assert.equal(r.nextToken, "abc");
  });

  it("rejects a request without Action and filters without values or names", () => {
    assert.throws(() => parseEc2Request("Version=2016-11-15"), Ec2ApiError);
    assert.throws(() => parseEc2Request(body({ "Filter.1.Name": "tag:Role" })), /no values/);
    assert.throws(() => parseEc2Request(body({ "Filter.1.Value.1": "web" })), /no name/);
  });

  it("ANDs filters, ORs values, and honours tags, state and wildcards", () => {
    const pick = (filters: { name: string; values: string[] }[]) =>
      all.filter((i) => matchesFilters(i, filters)).map((i) => i.tags.Name);
    assert.deepEqual(pick([{ name: "tag:Role", values: ["web"] }]), ["p-dev-web-1", "p-dev-web-2", "p-staging-web-1"]);
    assert.deepEqual(
      pick([
        { name: "tag:Role", values: ["web", "loki"] },
        { name: "tag:Environment", values: ["dev"] },
        { name: "instance-state-name", values: ["running"] },
      ]),
      ["p-dev-web-1", "p-dev-loki"],
    );
    assert.deepEqual(pick([{ name: "tag:Name", values: ["p-*-web-?"] }]), [
      "p-dev-web-1",
      "p-dev-web-2",
      "p-staging-web-1",
    ]);
    assert.deepEqual(pick([{ name: "tag:Missing", values: ["*"] }]), []);
    // Tag keys are case-sensitive on AWS.
    assert.deepEqual(pick([{ name: "tag:role", values: ["web"] }]), []);
    assert.deepEqual(pick([{ name: "tag-key", values: ["Role"] }]).length, 4);
  });

  it("rejects unknown filter names as AWS does", () => {
    assert.throws(
      () => matchesFilters(web, [{ name: "instance-state", values: ["running"] }]),
      /filter 'instance-state' is invalid/,
    );
  });
});

describe("fake EC2: answers", () => {
  const options = { region: "us-east-1", pageSize: 2 };

  it("pages DescribeInstances with NextToken until every match is returned", () => {
    const ids: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const { body: xml } = answer(
        all,
        { action: "DescribeInstances", version: "2016-11-15", filters: [], ...(token ? { nextToken: token } : {}) },
        options,
      );
      ids.push(...[...xml.matchAll(/<instanceId>([^<]+)<\/instanceId>/g)].map((m) => m[1]));
      token = /<nextToken>([^<]+)<\/nextToken>/.exec(xml)?.[1];
      pages += 1;
    } while (token);
    assert.equal(pages, 2);
    assert.deepEqual(ids, ["i-1", "i-2", "i-3", "i-4"]);
  });

  it("honours MaxResults and rejects a forged NextToken", () => {
    const { body: xml } = answer(
      all,
      { action: "DescribeInstances", version: "2016-11-15", filters: [], maxResults: 3 },
      options,
    );
    assert.equal([...xml.matchAll(/<instanceId>/g)].length, 3);
    assert.throws(
      () =>
        answer(all, { action: "DescribeInstances", version: "2016-11-15", filters: [], nextToken: "bogus" }, options),
      /NextToken/,
    );
  });

  it("writes the fields Prometheus' EC2 discovery dereferences, inside reservationSet/instancesSet items", () => {
    const xml = describeInstancesXml([web]);
    assert.match(
      xml,
      /^<\?xml[^>]*>\n<DescribeInstancesResponse xmlns="http:\/\/ec2\.amazonaws\.com\/doc\/2016-11-15\/">/,
    );
    assert.match(xml, /<reservationSet><item><reservationId>r-1<\/reservationId><ownerId>123456789012<\/ownerId>/);
    assert.match(xml, /<instancesSet><item><instanceId>i-1<\/instanceId><imageId>ami-1<\/imageId>/);
    for (const fragment of [
      "<instanceState><code>16</code><name>running</name></instanceState>",
      "<instanceType>t3.small</instanceType>",
      "<placement><availabilityZone>us-east-1b</availabilityZone>",
      "<privateIpAddress>10.0.0.1</privateIpAddress>",
      "<subnetId>subnet-1</subnetId>",
      "<vpcId>vpc-1</vpcId>",
      "<architecture>x86_64</architecture>",
      "<tagSet><item><key>Scrape</key><value>true</value></item>",
      "<item><key>Name</key><value>p-dev-web-1</value></item>",
    ]) {
      assert.ok(xml.includes(fragment), `missing ${fragment}`);
    }
    assert.ok(!xml.includes("<nextToken>"));
  });

  it("escapes XML in tag values", () => {
    const xml = describeInstancesXml([host(9, { Name: `a<b>&"c'` })]);
    assert.ok(xml.includes("<value>a&lt;b&gt;&amp;&quot;c&apos;</value>"));
  });

  it("answers DescribeAvailabilityZones with zone ids, and unknown actions with an EC2 error", () => {
    const { body: xml } = answer(
      all,
      { action: "DescribeAvailabilityZones", version: "2016-11-15", filters: [] },
      options,
    );
    assert.match(xml, /<availabilityZoneInfo><item><zoneName>us-east-1b<\/zoneName><zoneId>use1-az2<\/zoneId>/);
    assert.equal(zoneId("eu-west-3a"), "euw3-az1");
    assert.throws(
      () => answer(all, { action: "RunInstances", version: "2016-11-15", filters: [] }, options),
      /not valid/,
    );
    assert.throws(
      () => answer(all, { action: "DescribeInstances", version: "2014-01-01", filters: [] }, options),
      /version/,
    );
  });
});

describe("fake EC2: over HTTP", () => {
  const fake = createFakeEc2(all, { region: "us-east-1", pageSize: 10 });
  let url = "";
  before(async () => {
    await new Promise<void>((r) => fake.server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}/`;
  });
  after(() => fake.server.close());

  it("answers a form POST like the SDK's and records it", async () => {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
      body: body({ "Filter.1.Name": "tag:Role", "Filter.1.Value.1": "loki" }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/xml/);
    const xml = await res.text();
    assert.deepEqual(
      [...xml.matchAll(/<instanceId>([^<]+)</g)].map((m) => m[1]),
      ["i-2"],
    );
    assert.equal(fake.requests.at(-1)?.filters[0].name, "tag:Role");
  });

  it("answers errors in the ec2query error envelope with status 400", async () => {
    const res = await fetch(url, { method: "POST", body: body({ "Filter.1.Name": "nope", "Filter.1.Value.1": "x" }) });
    assert.equal(res.status, 400);
    assert.match(
      await res.text(),
      /<Response><Errors><Error><Code>InvalidParameterValue<\/Code><Message>The filter &apos;nope&apos; is invalid<\/Message>/,
    );
  });
});
