/**
 * The policy pack (policy/), judged through its own server as the engine runs it
 * (tests/support/policyPack.ts): the program's own resources pass every policy, and each
 * policy fails the hand-made resource it exists for, naming the resource and the fix, while
 * every other policy stays quiet about it.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { MOCK_PASSWORD, type Snapshot } from "./support/mockProgram";
import { ROOT } from "./support/files";
import { RunningPack, UNKNOWN, asInputs, asOutputs, type Diagnostic, type PackResource } from "./support/policyPack";
import { snapshot } from "./support/snapshots";

type Props = Record<string, unknown>;

interface ResourceCase {
  readonly policy: string;
  readonly why: string;
  /** The program's resource (type suffix and name) and what the bad version changes. */
  readonly base: readonly [string, string];
  readonly change: (props: Props) => Props;
  /** Declared as another resource type than the base (an older way to say the same thing). */
  readonly asType?: string;
  /** Words the message must contain besides the resource and "Fix:". */
  readonly says: readonly string[];
}

interface StackCase {
  readonly policy: string;
  readonly why: string;
  /** Rewrites the stack's resources (outputs, as AnalyzeStack receives them). */
  readonly change: (resources: PackResource[]) => PackResource[];
  /** The resource the violation is reported on. */
  readonly on: readonly [string, string];
  readonly says: readonly string[];
}

const isType = (suffix: string) => (r: { type: string }) => r.type.endsWith(`:${suffix}`);

function find<T extends { type: string; name: string }>(
  all: readonly T[],
  [suffix, name]: readonly [string, string],
): T {
  const found = all.find((r) => isType(suffix)(r) && r.name === name);
  assert.ok(found, `the program declares no ${suffix} "${name}"`);
  return found;
}

/** `props` without `key`, as if the program had never set it. */
function omit(props: Props, key: string): Props {
  const copy = { ...props };
  delete copy[key];
  return copy;
}

const patchProps = (r: PackResource, change: (props: Props) => Props): PackResource => ({
  ...r,
  props: change(structuredClone(r.props)),
});

const policyDoc = (statement: Props) => JSON.stringify({ Version: "2012-10-17", Statement: [statement] });

const INSTANCE = ["Instance", "web-1"] as const;
const SSH_RULE = ["SecurityGroupIngressRule", "web-in-22-from-203-0-113-7-32"] as const;
const LOKI_PUSH_RULE = ["SecurityGroupIngressRule", "loki-in-3100-from-web"] as const;

const RESOURCE_CASES: readonly ResourceCase[] = [
  {
    policy: "no-world-ingress",
    why: "SSH open to the internet",
    base: SSH_RULE,
    change: (p) => ({ ...p, cidrIpv4: "0.0.0.0/0" }),
    says: ["port 22", "0.0.0.0/0"],
  },
  {
    policy: "no-world-ingress",
    why: "a legacy rule open to every IPv6 address",
    base: SSH_RULE,
    asType: "aws:ec2/securityGroupRule:SecurityGroupRule",
    change: (p) => ({
      type: "ingress",
      protocol: "tcp",
      fromPort: 443,
      toPort: 443,
      ipv6CidrBlocks: ["::/0"],
      securityGroupId: p.securityGroupId,
    }),
    says: ["::/0"],
  },
  {
    policy: "no-world-ingress",
    why: "a group's inline ingress open to the internet",
    base: ["SecurityGroup", "web-sg"],
    change: (p) => ({ ...p, ingress: [{ protocol: "tcp", fromPort: 80, toPort: 80, cidrBlocks: ["0.0.0.0/0"] }] }),
    says: ["port 80", "0.0.0.0/0"],
  },
  {
    policy: "internal-ports-by-group",
    why: "Loki's push port opened to the VPC's addresses instead of the web group",
    base: LOKI_PUSH_RULE,
    change: (p) => ({ ...omit(p, "referencedSecurityGroupId"), cidrIpv4: "10.20.0.0/16" }),
    says: ["3100", "10.20.0.0/16", "referencedSecurityGroupId"],
  },
  {
    policy: "internal-ports-by-group",
    why: "an all-traffic rule from an address covers node_exporter",
    base: LOKI_PUSH_RULE,
    change: (p) => ({ ...omit(p, "referencedSecurityGroupId"), ipProtocol: "-1", cidrIpv4: "10.20.1.5/32" }),
    says: ["9100"],
  },
  {
    policy: "imdsv2-required",
    why: "IMDSv1 allowed",
    base: INSTANCE,
    change: (p) => ({ ...p, metadataOptions: { httpEndpoint: "enabled", httpTokens: "optional" } }),
    says: ["IMDSv1", "optional", 'httpTokens: "required"'],
  },
  {
    policy: "imdsv2-required",
    why: "no metadata options at all",
    base: INSTANCE,
    change: (p) => omit(p, "metadataOptions"),
    says: ["unset"],
  },
  {
    policy: "encrypted-volumes",
    why: "an unencrypted root volume",
    base: INSTANCE,
    change: (p) => ({ ...p, rootBlockDevice: { ...(p.rootBlockDevice as Props), encrypted: false } }),
    says: ["root volume", "encrypted: true"],
  },
  {
    policy: "encrypted-volumes",
    why: "an unencrypted data volume",
    base: ["Volume", "loki-data"],
    change: (p) => ({ ...p, encrypted: false }),
    says: ["not encrypted"],
  },
  {
    policy: "no-wildcard-iam",
    why: "Loki's policy widened to every S3 action",
    base: ["RolePolicy", "loki-policy"],
    change: (p) => ({ ...p, policy: policyDoc({ Effect: "Allow", Action: "s3:*", Resource: "arn:aws:s3:::loki" }) }),
    says: ["s3:*"],
  },
  {
    policy: "no-wildcard-iam",
    why: 'a scopable action on Resource "*"',
    base: ["RolePolicy", "prometheus-policy"],
    change: (p) => ({
      ...p,
      policy: policyDoc({ Effect: "Allow", Action: ["ec2:DescribeInstances", "s3:GetObject"], Resource: "*" }),
    }),
    says: ["s3:GetObject", 'Resource "*"'],
  },
  {
    policy: "no-wildcard-iam",
    why: "a trust policy any principal can assume",
    base: ["Role", "loki-role"],
    change: (p) => ({
      ...p,
      assumeRolePolicy: policyDoc({ Effect: "Allow", Principal: { AWS: "*" }, Action: "sts:AssumeRole" }),
    }),
    says: ["any principal"],
  },
  {
    policy: "no-wildcard-iam",
    why: "AdministratorAccess among a role's exclusive attachments",
    base: ["RolePolicy", "loki-policy"],
    asType: "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
    change: (p) => ({ roleName: p.role, policyArns: ["arn:aws:iam::aws:policy/AdministratorAccess"] }),
    says: ["AdministratorAccess"],
  },
  {
    policy: "imdsv2-required",
    why: "a launch template that allows IMDSv1",
    base: INSTANCE,
    asType: "aws:ec2/launchTemplate:LaunchTemplate",
    change: () => ({ imageId: "ami-1", metadataOptions: { httpTokens: "optional" } }),
    says: ["IMDSv1"],
  },
  {
    policy: "no-wildcard-iam",
    why: "a policy that is not a JSON document (nothing in it can be judged)",
    base: ["RolePolicy", "loki-policy"],
    change: (p) => ({ ...p, policy: "Allow s3 everything" }),
    says: ["not a JSON policy document"],
  },
  {
    policy: "no-wildcard-iam",
    why: "AdministratorAccess attached",
    base: ["Role", "loki-role"],
    change: (p) => ({ ...p, managedPolicyArns: ["arn:aws:iam::aws:policy/AdministratorAccess"] }),
    says: ["AdministratorAccess"],
  },
  {
    policy: "no-secret-in-user-data-or-tags",
    why: "a Grafana password written into user data",
    base: INSTANCE,
    change: (p) => ({ ...p, userData: `${String(p.userData)}\nGF_SECURITY_ADMIN_PASSWORD=correct-horse-battery\n` }),
    says: ["user data", "password"],
  },
  {
    policy: "no-secret-in-user-data-or-tags",
    why: "a Slack webhook in a tag",
    base: ["Bucket", "loki-chunks"],
    change: (p) => ({
      ...p,
      tags: { ...(p.tags as Props), Alerts: "https://hooks.slack.com/services/T000/B000/XXXXXXXX" },
    }),
    says: ["tag Alerts", "Slack webhook"],
  },
  {
    policy: "hosts-tagged",
    why: "a host Prometheus cannot find",
    base: INSTANCE,
    change: (p) => ({ ...p, tags: { ...omit(p.tags as Props, "Role"), Scrape: "false" } }),
    says: ["Role", "Scrape"],
  },
  {
    policy: "root-volume-size-limit",
    why: "a root volume left to the image",
    base: INSTANCE,
    change: (p) => ({ ...p, rootBlockDevice: omit(p.rootBlockDevice as Props, "volumeSize") }),
    says: ["root volume size"],
  },
  {
    policy: "root-volume-size-limit",
    why: "a 2 TiB root volume",
    base: INSTANCE,
    change: (p) => ({ ...p, rootBlockDevice: { ...(p.rootBlockDevice as Props), volumeSize: 2048 } }),
    says: ["2048 GiB"],
  },
];

const BUCKET = ["Bucket", "loki-chunks"] as const;
const without = (suffix: string) => (all: PackResource[]) => all.filter((r) => !isType(suffix)(r));
const changing =
  (suffix: string, change: (props: Props) => Props) =>
  (all: PackResource[]): PackResource[] =>
    all.map((r) => (isType(suffix)(r) ? patchProps(r, change) : r));

const STACK_CASES: readonly StackCase[] = [
  {
    policy: "private-encrypted-buckets",
    why: "no public access block",
    change: without("BucketPublicAccessBlock"),
    on: BUCKET,
    says: ["no public access block"],
  },
  {
    policy: "private-encrypted-buckets",
    why: "a public access block with public policies allowed",
    change: changing("BucketPublicAccessBlock", (p) => ({ ...p, blockPublicPolicy: false })),
    on: BUCKET,
    says: ["blockPublicPolicy"],
  },
  {
    policy: "private-encrypted-buckets",
    why: "ACLs still honoured",
    change: changing("BucketOwnershipControls", (p) => ({ ...p, rule: { objectOwnership: "ObjectWriter" } })),
    on: BUCKET,
    says: ["BucketOwnerEnforced"],
  },
  {
    policy: "private-encrypted-buckets",
    why: "a public-read canned ACL on the bucket",
    change: changing("Bucket", (p) => ({ ...p, acl: "public-read" })),
    on: BUCKET,
    says: ["canned ACL public-read"],
  },
  {
    policy: "private-encrypted-buckets",
    why: "no default encryption",
    change: without("BucketServerSideEncryptionConfiguration"),
    on: BUCKET,
    says: ["default encryption"],
  },
  {
    policy: "bucket-tls-only",
    why: "no bucket policy",
    change: without("BucketPolicy"),
    on: BUCKET,
    says: ["plain-HTTP", "aws:SecureTransport"],
  },
  {
    policy: "bucket-tls-only",
    why: "a TLS rule that leaves the objects out",
    change: changing("BucketPolicy", (p) => {
      const doc = JSON.parse(String(p.policy)) as { Statement: { Resource: string[] }[] };
      doc.Statement[0].Resource = doc.Statement[0].Resource.filter((arn) => !arn.endsWith("/*"));
      return { ...p, policy: JSON.stringify(doc) };
    }),
    on: BUCKET,
    says: ["plain-HTTP"],
  },
  {
    policy: "no-generated-secret-in-user-data-or-tags",
    why: "the generated Grafana password in a host's user data, with no telltale key name",
    change: changing("Instance", (p) =>
      String((p.tags as Props).Role) === "grafana"
        ? { ...p, userData: `${String(p.userData)}\n# ${MOCK_PASSWORD}\n` }
        : p,
    ),
    on: ["Instance", "grafana"],
    says: ["user data", "RandomPassword", ".result"],
  },
  {
    policy: "loki-bucket-expires",
    why: "the expiry rule disabled",
    change: changing("BucketLifecycleConfiguration", (p) => ({
      ...p,
      rules: (p.rules as Props[]).map((rule) => ({ ...rule, status: "Disabled" })),
    })),
    on: BUCKET,
    says: ["forever", "expiration.days"],
  },
];

/** Cases on resources only a metricsStore=amp stack declares (judged against that program). */
const AMP_WORKSPACE = ["Workspace", "metrics"] as const;
const AMP_RESOURCE_CASES: readonly ResourceCase[] = [
  {
    policy: "no-wildcard-iam",
    why: "Grafana's AMP query actions on every workspace",
    base: ["RolePolicy", "grafana-policy"],
    change: (p) => ({ ...p, policy: policyDoc({ Effect: "Allow", Action: ["aps:QueryMetrics"], Resource: "*" }) }),
    says: ["aps:QueryMetrics", 'Resource "*"'],
  },
  {
    policy: "no-wildcard-iam",
    why: "Prometheus' remote write on a wildcard ARN instead of its workspace",
    base: ["RolePolicy", "prometheus-policy"],
    change: (p) => ({
      ...p,
      policy: policyDoc({
        Effect: "Allow",
        Action: ["aps:RemoteWrite"],
        Resource: "arn:aws:aps:us-east-1:123456789012:*",
      }),
    }),
    says: ["aps:RemoteWrite", "arn:aws:aps:us-east-1:123456789012:*", "AMP workspace"],
  },
  {
    policy: "no-wildcard-iam",
    why: "an aps action on a resource that is not a workspace",
    base: ["RolePolicy", "grafana-policy"],
    change: (p) => ({
      ...p,
      policy: policyDoc({ Effect: "Allow", Action: ["aps:GetSeries"], Resource: "arn:aws:s3:::titan-bucket" }),
    }),
    says: ["aps:GetSeries", "arn:aws:s3:::titan-bucket"],
  },
  {
    policy: "amp-workspace-tagged",
    why: "a workspace without the ownership tags",
    base: AMP_WORKSPACE,
    change: (p) => ({ ...p, tags: { Name: "metrics" } }),
    says: ["Environment", "Project", "ManagedBy"],
  },
  {
    policy: "amp-workspace-tagged",
    why: "a workspace without an alias",
    base: AMP_WORKSPACE,
    change: (p) => omit(p, "alias"),
    says: ["alias"],
  },
];

/** docs/policy-pack.md's policy table: `| \`name\` | level | ... |` rows under its header. */
function readmeTable(): { name: string; level: string }[] {
  const readme = fs.readFileSync(path.join(ROOT, "docs", "policy-pack.md"), "utf8");
  const start = readme.search(/^\| *Policy *\| *Level *\| *Refuses *\| *Fix *\|/m);
  assert.ok(start >= 0, "docs/policy-pack.md has no policy table");
  const rows: { name: string; level: string }[] = [];
  for (const line of readme.slice(start).split("\n").slice(2)) {
    const row = /^\| *`([a-z0-9-]+)` *\| *(\w+) *\|/.exec(line);
    if (!row) break;
    rows.push({ name: row[1], level: row[2] });
  }
  return rows;
}

function assertNamesResourceAndFix(d: Diagnostic, name: string) {
  assert.match(d.message, new RegExp(`"${name}"`), `the message names the resource: ${d.message}`);
  assert.match(d.message, /Fix: /, `the message says what to do: ${d.message}`);
}

describe("the policy pack, run by its own server", () => {
  let pack: RunningPack;
  let program: Snapshot;
  let ampProgram: Snapshot;
  let policies: Awaited<ReturnType<RunningPack["policies"]>>;

  before(async () => {
    [pack, program, ampProgram] = await Promise.all([
      RunningPack.start(),
      snapshot(),
      snapshot({ metricsStore: "amp" }),
    ]);
    assert.equal(program.error, undefined);
    assert.equal(ampProgram.error, undefined);
    policies = await pack.policies();
  });
  after(async () => pack?.stop());

  const levelOf = (policy: string) => {
    const found = policies.find((p) => p.name === policy);
    assert.ok(found, `the pack has no policy ${policy}`);
    return found.level;
  };

  /** The stack as AnalyzeStack receives it: every custom resource's outputs. */
  const stackOutputs = () => program.resources.filter((r) => r.custom).map(asOutputs);

  /** A bad case's verdict: its policy alone speaks, at its level, about `resource`, with a fix. */
  function assertOnly(
    diagnostics: Diagnostic[],
    c: { policy: string; says: readonly string[] },
    resource: { name: string; urn?: string },
  ) {
    assert.ok(diagnostics.length > 0, `${c.policy} let it pass`);
    for (const d of diagnostics) {
      assert.equal(d.policy, c.policy, `only ${c.policy} speaks: ${d.message}`);
      assert.equal(d.level, levelOf(c.policy));
      if (resource.urn !== undefined) assert.equal(d.urn, resource.urn, "reported on the resource at fault");
      assertNamesResourceAndFix(d, resource.name);
    }
    const text = diagnostics.map((d) => d.message).join("\n");
    for (const word of c.says) assert.ok(text.includes(word), `"${word}" missing from: ${text}`);
    for (const secret of ["correct-horse-battery", MOCK_PASSWORD]) {
      assert.ok(!text.includes(secret), "a finding never repeats the secret");
    }
  }

  it("docs/policy-pack.md's table lists exactly the pack's policies and levels, security mandatory", () => {
    assert.deepEqual(
      readmeTable(),
      policies.map((p) => ({ name: p.name, level: p.level })),
    );
    for (const p of policies) assert.ok(["mandatory", "advisory"].includes(p.level), `${p.name}: ${p.level}`);
  });

  it("every case below is covered: each policy has a failing case", () => {
    const covered = new Set([...RESOURCE_CASES, ...AMP_RESOURCE_CASES, ...STACK_CASES].map((c) => c.policy));
    assert.deepEqual(
      policies.map((p) => p.name).filter((name) => !covered.has(name)),
      [],
    );
  });

  for (const [label, config] of [
    ["the default configuration", {}],
    ["several web hosts and operator ranges", { webCount: "3", allowedCidrs: '["203.0.113.7/32","198.51.100.0/24"]' }],
    ["metricsStore=amp", { metricsStore: "amp" }],
  ] as const) {
    it(`the program's own resources pass every policy (${label})`, async () => {
      const snap = Object.keys(config).length === 0 ? program : await snapshot(config);
      assert.equal(snap.error, undefined);
      const custom = snap.resources.filter((r) => r.custom);
      const perResource = (await Promise.all(custom.map((r) => pack.analyze(asInputs(r))))).flat();
      assert.deepEqual(perResource, []);
      assert.deepEqual(await pack.analyzeStack(custom.map(asOutputs)), []);
    });
  }

  for (const c of RESOURCE_CASES) {
    it(`${c.policy} fails ${c.why}`, async () => {
      const base = find(program.resources, c.base);
      const bad = { ...patchProps(asInputs(base), c.change), type: c.asType ?? base.type };
      assertOnly(await pack.analyze(bad), c, { name: base.name });
    });
  }

  for (const c of AMP_RESOURCE_CASES) {
    it(`${c.policy} fails ${c.why} (metricsStore=amp)`, async () => {
      const base = find(ampProgram.resources, c.base);
      const bad = { ...patchProps(asInputs(base), c.change), type: c.asType ?? base.type };
      assertOnly(await pack.analyze(bad), c, { name: base.name });
    });
  }

  for (const c of STACK_CASES) {
    it(`${c.policy} fails ${c.why}`, async () => {
      assertOnly(await pack.analyzeStack(c.change(stackOutputs())), c, find(program.resources, c.on));
    });
  }

  it("in a preview, a policy that needs a value not known yet says it cannot run (advisory), not that all is well", async () => {
    const web = asInputs(find(program.resources, INSTANCE));
    const diagnostics = await pack.analyze({ ...web, props: { ...web.props, userData: UNKNOWN } });
    assert.deepEqual(
      diagnostics.map((d) => [d.policy, d.level]),
      [["no-secret-in-user-data-or-tags", "advisory"]],
    );
    assert.match(diagnostics[0].message, /can't run policy 'no-secret-in-user-data-or-tags'.*during preview/);
  });

  it("an instance that takes its metadata options and root volume from a launch template is judged through the template", async () => {
    const web = asInputs(find(program.resources, INSTANCE));
    const props = omit(omit(web.props, "metadataOptions"), "rootBlockDevice");
    const fromTemplate = { ...web, props: { ...props, launchTemplate: { id: "lt-1", version: "$Latest" } } };
    assert.deepEqual(
      (await pack.analyze(fromTemplate)).map((d) => d.policy),
      ["root-volume-size-limit"],
      "only the size, which the template does not bound for the instance, is left to say",
    );
  });

  it("a bucket's companions named by a literal bucket name are linked by that name (the SDK sends an empty dependency list)", async () => {
    const all = stackOutputs();
    const bucket = find(all, BUCKET);
    const literal = all.map((r) =>
      r.propertyDependencies.bucket?.includes(bucket.urn)
        ? {
            ...r,
            propertyDependencies: { ...r.propertyDependencies, bucket: [] },
            props: { ...r.props, bucket: bucket.props.bucket },
          }
        : r,
    );
    assert.deepEqual(await pack.analyzeStack(literal), []);
  });

  it("a TLS-only policy in another partition (aws-cn) counts", async () => {
    const all = stackOutputs();
    const cn = changing("BucketPolicy", (p) => ({
      ...p,
      policy: String(p.policy).replaceAll("arn:aws:s3", "arn:aws-cn:s3"),
    }))(all);
    assert.notDeepEqual(cn, all);
    assert.deepEqual(await pack.analyzeStack(cn), []);
  });

  it("in the first preview (a new bucket, its computed outputs unknown), the bucket is still judged; only what needs its name cannot run", async () => {
    const all = stackOutputs();
    const bucket = find(all, BUCKET);
    // What a preview sends for resources about to be created: inputs, computed outputs unknown
    // (acl is Optional+Computed; the name comes from a RandomId; the companions take bucket.id).
    const preview = all.map((r) => {
      if (r === bucket) return { ...r, props: { ...r.props, acl: UNKNOWN, arn: UNKNOWN, bucket: UNKNOWN } };
      if (r.propertyDependencies.bucket?.includes(bucket.urn)) {
        return {
          ...r,
          props: { ...r.props, bucket: UNKNOWN, ...(isType("BucketPolicy")(r) ? { policy: UNKNOWN } : {}) },
        };
      }
      return isType("RandomPassword")(r) || isType("RandomBytes")(r) || isType("PrivateKey")(r)
        ? { ...r, props: Object.fromEntries(Object.keys(r.props).map((k) => [k, UNKNOWN])) }
        : r;
    });
    const quiet = await pack.analyzeStack(preview);
    assert.deepEqual(quiet.map((d) => [d.policy, d.level]).sort(), [
      ["bucket-tls-only", "advisory"],
      ["no-generated-secret-in-user-data-or-tags", "advisory"],
    ]);
    for (const d of quiet) assert.match(d.message, /can't run policy .* during preview/);
    const open = await pack.analyzeStack(without("BucketPublicAccessBlock")(preview));
    assert.deepEqual(
      open.filter((d) => d.policy === "private-encrypted-buckets").map((d) => [d.level, d.urn]),
      [["mandatory", bucket.urn]],
    );
  });

  it("in a first preview, rules between groups are judged although the groups' ids are not known yet", async () => {
    const rule = asInputs(find(program.resources, LOKI_PUSH_RULE));
    const preview = { ...rule, props: { ...rule.props, securityGroupId: UNKNOWN, referencedSecurityGroupId: UNKNOWN } };
    assert.deepEqual(await pack.analyze(preview), []);
    const open = { ...preview, props: { ...preview.props, cidrIpv4: "0.0.0.0/0" } };
    assert.deepEqual(
      (await pack.analyze(open)).map((d) => d.policy),
      ["no-world-ingress", "internal-ports-by-group"],
    );
  });
});
