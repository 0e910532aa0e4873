/**
 * The program as declared for the default configuration: every resource, rule, tag, policy
 * and output, against the tables it must follow.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { before, describe, it } from "node:test";
import { addressPlan } from "../facts/addressing";
import { ruleSpecs } from "../infra/securityGroups";
import { renderUserData } from "../templates/host/userData";
import { FLOWS, hasDataVolume, ROLES, SERVICES, portsOf, type Role } from "../facts/topology";
import {
  MOCK_PASSWORD,
  MOCK_PRIVATE_KEY,
  MOCK_PUBLIC_KEY,
  mockAmiId,
  mockVolumeId,
  type RecordedResource,
} from "./support/mockProgram";
import { DEBIAN_IMAGE } from "../facts/versions";
import { ofType, one, plainInputs, snapshot, type TimedSnapshot } from "./support/snapshots";

const INSTANCE = "aws:ec2/instance:Instance";
const SG = "aws:ec2/securityGroup:SecurityGroup";
const INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";
const EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule";

let snap: TimedSnapshot;
before(async () => {
  snap = await snapshot();
  assert.equal(snap.error, undefined, snap.error);
});

const sgRole = (id: unknown): Role => {
  const match = /^(\w+)-sg-id$/.exec(String(id));
  assert.ok(match, `not a security group id: ${String(id)}`);
  return match[1] as Role;
};

/** A rule as "role:port<-peer" where peer is a role or a CIDR. */
function describeRule(rule: RecordedResource): string {
  const i = rule.inputs;
  assert.equal(i.ipProtocol, "tcp");
  assert.equal(i.fromPort, i.toPort, "single-port rules only");
  const peer = i.referencedSecurityGroupId ? sgRole(i.referencedSecurityGroupId) : String(i.cidrIpv4);
  assert.ok(!(i.referencedSecurityGroupId && i.cidrIpv4), "one peer per rule");
  return `${sgRole(i.securityGroupId)}:${String(i.fromPort)}<-${peer}`;
}

describe("hosts", () => {
  it("declares the four roles with one web host by default", () => {
    const roles = ofType(snap, INSTANCE).map((r) => (r.inputs.tags as Record<string, string>).Role);
    assert.deepEqual(roles.sort(), [...ROLES].sort());
  });

  it("requires IMDSv2 and encrypts a gp3 root volume on every host", () => {
    for (const host of ofType(snap, INSTANCE)) {
      assert.deepEqual(host.inputs.metadataOptions, {
        httpEndpoint: "enabled",
        httpTokens: "required",
        httpPutResponseHopLimit: 1,
      });
      const root = host.inputs.rootBlockDevice as Record<string, unknown>;
      assert.equal(root.encrypted, true, host.name);
      assert.equal(root.volumeType, "gp3", host.name);
      assert.equal(root.volumeSize, 20, host.name);
      assert.equal(root.deleteOnTermination, true);
    }
  });

  it("gives each host its fixed private IP from the address plan", () => {
    const plan = addressPlan("10.42.0.0/16", 1);
    for (const slot of plan.hosts) assert.equal(one(snap, INSTANCE, slot.name).inputs.privateIp, slot.privateIp);
  });

  it("tags every host per docs/architecture.md", () => {
    for (const host of ofType(snap, INSTANCE)) {
      const tags = host.inputs.tags as Record<string, string>;
      assert.deepEqual(tags, {
        Name: `titan-observability-dev-${host.name}`,
        Role: host.name.replace(/-\d+$/, ""),
        Environment: "dev",
        Project: "titan-observability",
        Scrape: "true",
        ManagedBy: "pulumi",
      });
    }
  });

  it("boots the pinned Debian release, found by publisher and exact name, in the zone that offers the instance types", () => {
    assert.deepEqual(
      snap.invokes.filter((i) => i.token === "aws:ssm/getParameter:getParameter"),
      [],
    );
    const amis = snap.invokes.filter((i) => i.token === "aws:ec2/getAmi:getAmi");
    assert.deepEqual(
      amis.map((i) => i.inputs),
      [
        {
          includeDeprecated: true,
          owners: [DEBIAN_IMAGE.owner],
          filters: [
            { name: "name", values: [DEBIAN_IMAGE.name] },
            { name: "architecture", values: ["x86_64"] },
          ],
        },
      ],
      "no most-recent lookup: a newer build must not change the id",
    );
    assert.match(DEBIAN_IMAGE.name, /^debian-12-amd64-\d{8}-\d+$/);
    for (const host of ofType(snap, INSTANCE)) {
      assert.equal(host.inputs.ami, mockAmiId(DEBIAN_IMAGE.name));
      assert.equal(host.inputs.availabilityZone, "us-east-1b", "zone a lacks t3.small in the mock");
      assert.equal(host.inputs.instanceType, "t3.small");
    }
    assert.equal(one(snap, "aws:ec2/subnet:Subnet", "network-public").inputs.availabilityZone, "us-east-1b");
  });

  it("replaces hosts delete-first (fixed IPs), ignores no input, and never reboots for a changed user data", () => {
    for (const host of ofType(snap, INSTANCE)) {
      assert.equal(host.deleteBeforeReplace, true, host.name);
      // An ignored `ami` would hide a new amiId (tests/updates.test.ts "the image").
      assert.deepEqual(host.ignoreChanges, [], host.name);
      assert.equal(host.inputs.userDataReplaceOnChange, true, host.name);
    }
  });

  it("boots each host with its role's user data, naming its own data volume", () => {
    for (const host of ofType(snap, INSTANCE)) {
      const role = (host.inputs.tags as Record<string, string>).Role as Role;
      const volume = hasDataVolume(role) ? mockVolumeId(`${role}-data`) : undefined;
      assert.equal(host.inputs.userData, renderUserData({ role, dataVolumeId: volume }), host.name);
    }
  });

  it("creates hosts in parallel: no host depends on another", () => {
    const hostUrns = ofType(snap, INSTANCE).map((h) => `::${h.name}`);
    for (const host of ofType(snap, INSTANCE)) {
      for (const dep of host.dependencies) {
        assert.ok(
          !(dep.includes("aws:ec2/instance:Instance") && hostUrns.some((u) => dep.endsWith(u))),
          `${host.name} waits for ${dep}`,
        );
      }
    }
  });

  it("attaches encrypted gp3 data volumes to Prometheus, Loki and Grafana only", () => {
    const volumes = ofType(snap, "aws:ebs/volume:Volume");
    assert.deepEqual(volumes.map((v) => [v.name, v.inputs.size, v.inputs.encrypted, v.inputs.type]).sort(), [
      ["grafana-data", 5, true, "gp3"],
      ["loki-data", 10, true, "gp3"],
      ["prometheus-data", 20, true, "gp3"],
    ]);
    for (const role of ["prometheus", "loki", "grafana"]) {
      const attachment = one(snap, "aws:ec2/volumeAttachment:VolumeAttachment", `${role}-data-attachment`);
      assert.equal(attachment.inputs.instanceId, `${role}-id`);
      assert.equal(attachment.inputs.volumeId, mockVolumeId(`${role}-data`));
      assert.equal(attachment.deleteBeforeReplace, true);
      assert.equal(one(snap, "aws:ebs/volume:Volume", `${role}-data`).inputs.availabilityZone, "us-east-1b");
    }
  });

  it("launches each host only after its security group's rules and the subnet's route out exist", () => {
    const urnOf = (r: RecordedResource) => r.urn;
    const route = [
      one(snap, "aws:ec2/route:Route", "network-default-route"),
      one(snap, "aws:ec2/routeTableAssociation:RouteTableAssociation", "network-public-rta"),
    ].map(urnOf);
    for (const host of ofType(snap, INSTANCE)) {
      const role = (host.inputs.tags as Record<string, string>).Role as Role;
      const rules = [...ofType(snap, INGRESS), ...ofType(snap, EGRESS)].filter(
        (r) => sgRole(r.inputs.securityGroupId) === role,
      );
      assert.ok(
        rules.some((r) => r.type === EGRESS && r.inputs.cidrIpv4 === "0.0.0.0/0"),
        `${role} has a way out`,
      );
      for (const dep of [...rules.map(urnOf), ...route]) {
        assert.ok(dep && host.dependencies.includes(dep), `${host.name} does not wait for ${dep}`);
      }
    }
  });

  it("wraps each host in a Host component that parents its resources", () => {
    for (const host of ofType(snap, INSTANCE)) {
      assert.match(host.parent, new RegExp(`titan:infra:Host::${host.name}$`));
    }
  });
});

describe("network", () => {
  it("builds a dedicated VPC with a public subnet, gateway, default route and S3 endpoint", () => {
    const vpc = one(snap, "aws:ec2/vpc:Vpc", "network-vpc");
    assert.equal(vpc.inputs.cidrBlock, "10.42.0.0/16");
    assert.equal(vpc.inputs.enableDnsHostnames, true);
    const subnet = one(snap, "aws:ec2/subnet:Subnet", "network-public");
    assert.equal(subnet.inputs.cidrBlock, "10.42.0.0/24");
    assert.equal(subnet.inputs.mapPublicIpOnLaunch, true);
    const route = one(snap, "aws:ec2/route:Route", "network-default-route");
    assert.equal(route.inputs.destinationCidrBlock, "0.0.0.0/0");
    assert.equal(route.inputs.gatewayId, "network-igw-id");
    const endpoint = one(snap, "aws:ec2/vpcEndpoint:VpcEndpoint", "network-s3");
    assert.equal(endpoint.inputs.serviceName, "com.amazonaws.us-east-1.s3");
    assert.equal(endpoint.inputs.vpcEndpointType, "Gateway");
    assert.deepEqual(endpoint.inputs.routeTableIds, ["network-public-rt-id"]);
  });

  it("strips every rule from the VPC's default security group", () => {
    const locked = one(snap, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "network-default-sg");
    assert.equal(locked.inputs.ingress, undefined);
    assert.equal(locked.inputs.egress, undefined);
  });
});

describe("security groups", () => {
  it("has one group per role and no inline rules", () => {
    const groups = ofType(snap, SG);
    assert.deepEqual(groups.map((g) => g.name).sort(), ROLES.map((r) => `${r}-sg`).sort());
    for (const g of groups) {
      assert.equal(g.inputs.ingress, undefined);
      assert.equal(g.inputs.egress, undefined);
    }
  });

  it("opens exactly the docs/architecture.md matrix, no rule more, none missing", () => {
    const op = "203.0.113.7/32";
    const p = "prometheus";
    // Written out by hand from docs/architecture.md's matrix, independent of topology.ts.
    const matrix = [
      `web:5000<-${p}`,
      `web:5000<-${op}`,
      `web:12345<-${p}`,
      // The remediation agent: Grafana's signed webhook, and Prometheus' scrape of its metrics.
      "web:9180<-grafana",
      `web:9181<-${p}`,
      ...ROLES.map((r) => `${r}:9100<-${p}`),
      `loki:3100<-${p}`,
      "loki:3100<-web",
      "loki:3100<-grafana",
      "prometheus:9090<-grafana",
      `prometheus:9090<-${op}`,
      `grafana:3000<-${p}`,
      `grafana:3000<-${op}`,
      ...ROLES.map((r) => `${r}:22<-${op}`),
    ];
    assert.deepEqual(ofType(snap, INGRESS).map(describeRule).sort(), matrix.sort());
  });

  it("lets each source open only the connections the matrix grants, plus HTTP(S) out", () => {
    const egress = ofType(snap, EGRESS).map(describeRule).sort();
    const internal = egress.filter((e) => !e.endsWith("<-0.0.0.0/0"));
    const internet = egress.filter((e) => e.endsWith("<-0.0.0.0/0"));
    const expectedInternal = ofType(snap, INGRESS)
      .filter((r) => r.inputs.referencedSecurityGroupId)
      .map(
        (r) =>
          `${sgRole(r.inputs.referencedSecurityGroupId)}:${String(r.inputs.fromPort)}<-${sgRole(r.inputs.securityGroupId)}`,
      )
      .sort();
    assert.deepEqual(internal, expectedInternal);
    assert.deepEqual(internet, ROLES.flatMap((r) => [`${r}:443<-0.0.0.0/0`, `${r}:80<-0.0.0.0/0`]).sort());
  });

  it("opens no port to the world and no internal port to the operator", () => {
    const operatorPorts = new Set<number>([
      SERVICES.ssh.port,
      SERVICES.titan.port,
      SERVICES.prometheus.port,
      SERVICES.grafana.port,
    ]);
    for (const rule of ofType(snap, INGRESS)) {
      assert.notEqual(rule.inputs.cidrIpv4, "0.0.0.0/0", rule.name);
      assert.equal(rule.inputs.cidrIpv6, undefined, rule.name);
      if (rule.inputs.cidrIpv4)
        assert.ok(operatorPorts.has(rule.inputs.fromPort as number), `${rule.name} exposes an internal port`);
    }
  });

  it("derives the rules from the flow table for any CIDR list", () => {
    const specs = ruleSpecs(["198.51.100.0/24", "203.0.113.9/32"]);
    const operatorRules = specs.filter((s) => s.direction === "ingress" && "cidr" in s.peer);
    const operatorFlows = FLOWS.filter((f) => f.from.some((s) => "operator" in s));
    const expected = operatorFlows.reduce((n, f) => n + SERVICES[f.service].runsOn.length * 2, 0);
    assert.equal(operatorRules.length, expected);
    assert.equal(new Set(specs.map((s) => s.name)).size, specs.length, "rule names are unique");
  });

  it("documents every listening port of every role", () => {
    assert.deepEqual(portsOf("web"), [22, 5000, 9100, 9180, 9181, 12345]);
    assert.deepEqual(portsOf("prometheus"), [22, 9090, 9100]);
    assert.deepEqual(portsOf("loki"), [22, 3100, 9100]);
    assert.deepEqual(portsOf("grafana"), [22, 3000, 9100]);
  });
});

describe("IAM", () => {
  const policyOf = (name: string) =>
    JSON.parse(String(one(snap, "aws:iam/rolePolicy:RolePolicy", name).inputs.policy)) as {
      Statement: { Effect: string; Action: string[]; Resource: string | string[] }[];
    };

  it("gives instance profiles to Prometheus and Loki only", () => {
    assert.deepEqual(
      ofType(snap, "aws:iam/instanceProfile:InstanceProfile")
        .map((p) => p.name)
        .sort(),
      ["loki-profile", "prometheus-profile"],
    );
    const profileOf = (name: string) => one(snap, INSTANCE, name).inputs.iamInstanceProfile;
    assert.equal(profileOf("prometheus"), "prometheus-profile-1234567");
    assert.equal(profileOf("loki"), "loki-profile-1234567");
    assert.equal(profileOf("web-1"), undefined);
    assert.equal(profileOf("grafana"), undefined);
  });

  it("lets only EC2 assume the roles and attaches no managed policy", () => {
    for (const role of ofType(snap, "aws:iam/role:Role")) {
      const trust = JSON.parse(String(role.inputs.assumeRolePolicy)) as {
        Statement: { Principal: unknown; Action: string }[];
      };
      assert.deepEqual(
        trust.Statement.map((s) => [s.Principal, s.Action]),
        [[{ Service: "ec2.amazonaws.com" }, "sts:AssumeRole"]],
      );
      assert.equal(role.inputs.managedPolicyArns, undefined);
    }
    assert.equal(ofType(snap, "aws:iam/rolePolicyAttachment:RolePolicyAttachment").length, 0);
  });

  it("allows Prometheus only EC2 discovery", () => {
    const policy = policyOf("prometheus-policy");
    assert.deepEqual(
      policy.Statement.map((s) => [s.Effect, s.Action, s.Resource]),
      [["Allow", ["ec2:DescribeAvailabilityZones", "ec2:DescribeInstances"], "*"]],
    );
  });

  it("allows Loki list/get/put/delete on its own bucket only", () => {
    const bucket = "arn:aws:s3:::titan-observability-dev-loki-1a2b3c4d";
    const policy = policyOf("loki-policy");
    assert.deepEqual(
      policy.Statement.map((s) => [s.Effect, s.Action, s.Resource]),
      [
        ["Allow", ["s3:ListBucket"], bucket],
        ["Allow", ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"], `${bucket}/*`],
      ],
    );
    for (const s of policy.Statement) for (const a of s.Action) assert.ok(!a.includes("*"), a);
  });
});

describe("Loki bucket", () => {
  it("is uniquely named and destroyable with objects in it", () => {
    const bucket = one(snap, "aws:s3/bucket:Bucket", "loki-chunks");
    assert.equal(bucket.inputs.bucket, "titan-observability-dev-loki-1a2b3c4d");
    assert.equal(bucket.inputs.forceDestroy, true);
    assert.equal(ofType(snap, "random:index/randomId:RandomId").length, 1);
  });

  it("blocks every kind of public access and enforces the owner", () => {
    const block = one(snap, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "loki-chunks-public-access");
    for (const k of ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"]) {
      assert.equal(block.inputs[k], true, k);
    }
    const ownership = one(snap, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "loki-chunks-ownership");
    assert.deepEqual(ownership.inputs.rule, { objectOwnership: "BucketOwnerEnforced" });
  });

  it("encrypts by default", () => {
    const sse = one(
      snap,
      "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
      "loki-chunks-sse",
    );
    assert.deepEqual(sse.inputs.rules, [
      { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true },
    ]);
  });

  it("expires objects a day after the Loki retention", () => {
    const lifecycle = one(
      snap,
      "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
      "loki-chunks-lifecycle",
    );
    const [rule] = lifecycle.inputs.rules as { status: string; expiration: { days: number } }[];
    assert.equal(rule.status, "Enabled");
    assert.equal(rule.expiration.days, 8);
  });

  it("denies every request that is not over TLS", () => {
    const policy = JSON.parse(
      String(one(snap, "aws:s3/bucketPolicy:BucketPolicy", "loki-chunks-tls-only").inputs.policy),
    ) as {
      Statement: Record<string, unknown>[];
    };
    assert.deepEqual(policy.Statement, [
      {
        Sid: "DenyInsecureTransport",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:*",
        Resource: [
          "arn:aws:s3:::titan-observability-dev-loki-1a2b3c4d",
          "arn:aws:s3:::titan-observability-dev-loki-1a2b3c4d/*",
        ],
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
    ]);
  });
});

/** The generated (mock) key's digest, as its key pair's name carries it. */
const MOCK_KEY_DIGEST = createHash("sha256").update(MOCK_PUBLIC_KEY.split(" ")[1]).digest("hex").slice(0, 10);

describe("secrets and outputs", () => {
  it("exports the URLs, hosts, bucket and ssh commands in plain text", () => {
    const o = snap.outputs;
    const ipOf = (name: string) => (o.hosts.value as Record<string, { publicIp: string }>)[name].publicIp;
    assert.equal(o.grafanaUrl.value, `http://${ipOf("grafana")}:3000`);
    assert.equal(o.prometheusUrl.value, `http://${ipOf("prometheus")}:9090`);
    assert.deepEqual(o.appUrls.value, [`http://${ipOf("web-1")}:5000`]);
    assert.equal(o.lokiBucket.value, "titan-observability-dev-loki-1a2b3c4d");
    const hosts = o.hosts.value as Record<string, { role: string; privateIp: string; ssh: string }>;
    assert.deepEqual(Object.keys(hosts).sort(), ["grafana", "loki", "prometheus", "web-1"]);
    assert.equal(hosts.loki.privateIp, "10.42.0.11");
    // The generated key's file is named after its key pair: two stacks' keys never share a file.
    const keyFile = `~/.ssh/titan-observability-dev-deploy-${MOCK_KEY_DIGEST}.pem`;
    assert.equal(o.sshKeyFile.value, keyFile);
    assert.equal(hosts.loki.ssh, `ssh -i ${keyFile} admin@${ipOf("loki")}`);
    for (const name of [
      "grafanaUrl",
      "prometheusUrl",
      "appUrls",
      "hosts",
      "lokiBucket",
      "grafanaAdminUser",
      "sshKeyFile",
    ]) {
      assert.equal(o[name].secret, false, name);
    }
  });

  it("keeps the Grafana password and the generated private key secret", () => {
    assert.deepEqual(snap.outputs.grafanaAdminPassword, { value: MOCK_PASSWORD, secret: true });
    assert.deepEqual(snap.outputs.sshPrivateKey, { value: MOCK_PRIVATE_KEY, secret: true });
    assert.equal(snap.outputs.grafanaAdminUser.value, "admin");
    const password = one(snap, "random:index/randomPassword:RandomPassword", "grafana-admin-password");
    assert.ok((password.inputs.length as number) >= 24);
  });

  it("puts no secret into any plain output or resource input", () => {
    const plain = JSON.stringify(Object.values(snap.outputs).filter((o) => !o.secret));
    assert.ok(!plain.includes("SENTINEL"));
    for (const r of snap.resources) assert.ok(!plainInputs(r).includes("SENTINEL"), r.name);
  });

  it("registers the generated key with EC2 under the stack's name and the key's digest", () => {
    const keyPair = one(snap, "aws:ec2/keyPair:KeyPair", "deploy-key");
    // The digest makes a rotated key a new name, which replaces the hosts (tests/updates.test.ts).
    assert.equal(keyPair.inputs.keyName, `titan-observability-dev-deploy-${MOCK_KEY_DIGEST}`);
    assert.match(String(keyPair.inputs.publicKey), /^ssh-ed25519 /);
    assert.deepEqual(one(snap, "tls:index/privateKey:PrivateKey", "deploy-key-generated").inputs, {
      algorithm: "ED25519",
    });
    for (const host of ofType(snap, INSTANCE)) assert.equal(host.inputs.keyName, keyPair.inputs.keyName);
  });
});

describe("the program", () => {
  it("calls only mocked invokes", () => {
    const tokens = new Set(snap.invokes.map((i) => i.token));
    assert.deepEqual([...tokens].sort(), [
      "aws:ec2/getAmi:getAmi",
      "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings",
    ]);
  });

  it("tags every taggable AWS resource with the project, environment and manager", () => {
    for (const r of snap.resources.filter((r) => r.type.startsWith("aws:") && r.inputs.tags)) {
      const tags = r.inputs.tags as Record<string, string>;
      assert.equal(tags.Project, "titan-observability", r.name);
      assert.equal(tags.Environment, "dev", r.name);
      assert.equal(tags.ManagedBy, "pulumi", r.name);
      assert.match(tags.Name, /^titan-observability-dev-/, r.name);
    }
  });
});
