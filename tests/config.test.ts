import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";
import { ROOT } from "./support/files";
import { CONFIG_KEYS, isArmInstanceType, type ConfigSource } from "../facts/config";
import { ConfigError, loadConfig } from "../infra/config";
import { DEBIAN_IMAGE, GRAFANA_APT } from "../facts/versions";

const ctx = { project: "titan-observability", stack: "dev" };

function source(values: Record<string, string>, secretKeys: string[] = []): ConfigSource {
  return { get: (key) => values[key], isSecret: (key) => secretKeys.includes(key) };
}

const valid = { allowedCidrs: '["203.0.113.7/32"]', "aws:region": "us-east-1" };
/** An internal mirror of Grafana's APT repository, signed with the mirror's own key. */
const MIRROR = {
  uri: "https://artifactory.example.com/artifactory/grafana-apt",
  keyUrl: "https://artifactory.example.com/artifactory/api/gpg/key/public",
  keyFingerprint: "0123456789ABCDEF0123456789ABCDEF01234567",
};

function problemsOf(values: Record<string, string>, secretKeys: string[] = []): string[] {
  try {
    loadConfig(source({ ...valid, ...values }, secretKeys), ctx);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return [...err.problems];
  }
  return [];
}

describe("loadConfig", () => {
  it("applies the documented defaults", () => {
    const config = loadConfig(source(valid), ctx);
    assert.deepEqual(config.allowedCidrs, ["203.0.113.7/32"]);
    assert.equal(config.vpcCidr, "10.42.0.0/16");
    assert.equal(config.webCount, 1);
    assert.equal(config.environment, "dev");
    assert.equal(config.region, "us-east-1");
    assert.deepEqual(config.thresholds, {
      rootDiskCriticalPercent: 65,
      cpuWarningPercent: 80,
      memoryWarningPercent: 85,
      logErrorLinesPerMinute: 60,
    });
    assert.deepEqual(config.retention, { prometheusDays: 15, lokiDays: 7 });
    assert.deepEqual(config.image, { pinned: DEBIAN_IMAGE }, "one exact Debian release, not a moving parameter");
    assert.equal(config.vendorAptRepository, GRAFANA_APT, "vendor packages from Grafana's own repository");
    assert.deepEqual(config.instanceTypes, {
      web: "t3.small",
      prometheus: "t3.small",
      loki: "t3.small",
      grafana: "t3.small",
    });
    assert.equal(config.rootVolumeSizeGb, 20);
    assert.deepEqual(config.dataVolumeSizeGb, { prometheus: 20, loki: 10, grafana: 5 });
    assert.equal(config.sshUser, "admin");
    assert.equal(config.slackWebhookUrl, undefined);
    assert.equal(config.sshKey, undefined);
    assert.equal(config.remediation, "on", "self-healing on unless turned off");
    assert.equal(config.metricsStore, "local", "metrics stay on the Prometheus host unless amp is chosen");
  });

  it("reads both metrics stores", () => {
    for (const store of ["local", "amp"]) {
      assert.equal(loadConfig(source({ ...valid, metricsStore: store }), ctx).metricsStore, store);
    }
  });

  it("reads every remediation mode", () => {
    for (const mode of ["off", "dry-run", "on"]) {
      assert.equal(loadConfig(source({ ...valid, remediation: mode }), ctx).remediation, mode);
    }
  });

  it("returns a frozen object", () => {
    const config = loadConfig(source(valid), ctx);
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.thresholds) && Object.isFrozen(config.instanceTypes));
  });

  it("reads every key when set", () => {
    const config = loadConfig(
      source(
        {
          ...valid,
          allowedCidrs: '["203.0.113.7/32", "198.51.100.0/24", "203.0.113.7/32"]',
          vpcCidr: "172.20.0.0/20",
          webCount: "4",
          environment: "staging-eu",
          slackWebhookUrl: "https://hooks.slack.com/services/T000/B000/XXXX",
          rootDiskCriticalPercent: "70",
          cpuWarningPercent: "90",
          memoryWarningPercent: "95",
          prometheusRetentionDays: "30",
          lokiRetentionDays: "14",
          amiId: "ami-0abcdef1234567890",
          webInstanceType: "t3.medium",
        },
        ["slackWebhookUrl"],
      ),
      ctx,
    );
    assert.deepEqual(config.allowedCidrs, ["203.0.113.7/32", "198.51.100.0/24"], "duplicates are dropped");
    assert.equal(config.vpcCidr, "172.20.0.0/20");
    assert.equal(config.webCount, 4);
    assert.equal(config.environment, "staging-eu");
    assert.equal(config.slackWebhookUrl, "https://hooks.slack.com/services/T000/B000/XXXX");
    assert.equal(config.thresholds.rootDiskCriticalPercent, 70);
    assert.equal(config.retention.lokiDays, 14);
    assert.deepEqual(config.image, { amiId: "ami-0abcdef1234567890" });
    assert.equal(config.instanceTypes.web, "t3.medium");
  });

  it("accepts a comma-separated CIDR list", () => {
    const config = loadConfig(source({ ...valid, allowedCidrs: "203.0.113.7/32, 198.51.100.0/24" }), ctx);
    assert.deepEqual(config.allowedCidrs, ["203.0.113.7/32", "198.51.100.0/24"]);
  });

  it("falls back to AWS_REGION when aws:region is unset", () => {
    const saved = process.env.AWS_REGION;
    process.env.AWS_REGION = "eu-west-1";
    try {
      const config = loadConfig(source({ allowedCidrs: valid.allowedCidrs }), ctx);
      assert.equal(config.region, "eu-west-1");
    } finally {
      if (saved === undefined) delete process.env.AWS_REGION;
      else process.env.AWS_REGION = saved;
    }
  });

  // Each bad input must name the key, the value and what was expected.
  const mirror = (fields: Record<string, unknown>) =>
    JSON.stringify({ uri: MIRROR.uri, keyUrl: MIRROR.keyUrl, keyFingerprint: MIRROR.keyFingerprint, ...fields });
  const badInputs: [string, Record<string, string>, RegExp][] = [
    [
      "a vendor repository given as a bare URL",
      { vendorAptRepository: "https://mirror.example.com/grafana" },
      /^vendorAptRepository = "https:\/\/mirror\.example\.com\/grafana": expected an object \{uri, keyUrl, keyFingerprint, suite\?, components\?\}/,
    ],
    [
      "a vendor repository over ftp",
      { vendorAptRepository: mirror({ uri: "ftp://mirror.example.com/grafana" }) },
      /^vendorAptRepository = ".*ftp:\/\/mirror.*": expected uri to be an http:\/\/, https:\/\/ .* or file:\/\/\/absolute\/path URI; got "ftp:\/\/mirror\.example\.com\/grafana"$/,
    ],
    [
      "credentials in the vendor repository's URI",
      { vendorAptRepository: mirror({ uri: "https://ci:hunter2@mirror.example.com/grafana" }) },
      /^vendorAptRepository = .*: expected uri to be .*no user@/,
    ],
    [
      "a vendor repository without a key URL",
      { vendorAptRepository: mirror({ keyUrl: undefined }) },
      /^vendorAptRepository = .*: expected keyUrl \(the ASCII-armored signing key\) to be .*; got undefined$/,
    ],
    [
      "a lower-case, spaced key fingerprint",
      { vendorAptRepository: mirror({ keyFingerprint: "0123 4567 89ab cdef 0123  4567 89ab cdef 0123 4567" }) },
      /^vendorAptRepository = .*: expected keyFingerprint to be the signing key's full fingerprint, 40 upper-case hex digits without spaces; got "0123 4567 .*" \(did you mean 0123456789ABCDEF0123456789ABCDEF01234567\?\)$/,
    ],
    [
      "a short key id for a fingerprint",
      { vendorAptRepository: mirror({ keyFingerprint: "10458545" }) },
      /^vendorAptRepository = .*: expected keyFingerprint to be .*; got "10458545"$/,
    ],
    [
      "two words for a suite",
      { vendorAptRepository: mirror({ suite: "stable main" }) },
      /^vendorAptRepository = .*: expected suite to be one APT suite name such as "stable" .*; got "stable main"$/,
    ],
    [
      "no components",
      { vendorAptRepository: mirror({ components: [] }) },
      /^vendorAptRepository = .*: expected components to be a non-empty list of APT component names such as \["main"\]; got \[\]$/,
    ],
    [
      "components as one string",
      { vendorAptRepository: mirror({ components: "main" }) },
      /^vendorAptRepository = .*: expected components to be a non-empty list .*; got "main"$/,
    ],
    [
      "a misspelt vendor repository field",
      { vendorAptRepository: mirror({ keyFingerPrint: "x" }) },
      /^vendorAptRepository = .*: expected an object \{uri, keyUrl, keyFingerprint, suite\?, components\?\} .*; "keyFingerPrint" is not one of its fields$/,
    ],
    [
      "a keyring path in the vendor repository",
      { vendorAptRepository: mirror({ keyringPath: "/tmp/k.gpg" }) },
      /; "keyringPath" is not one of its fields$/,
    ],
    ["missing allowedCidrs", { allowedCidrs: "" }, /^allowedCidrs is not set: expected/],
    [
      "CIDR with host bits",
      { allowedCidrs: '["203.0.113.7/24"]' },
      /^allowedCidrs = .*203\.0\.113\.7\/24.*did you mean 203\.0\.113\.0\/24/,
    ],
    ["not a CIDR", { allowedCidrs: '["my-laptop"]' }, /^allowedCidrs = .*my-laptop.*: expected IPv4 CIDRs/],
    ["empty CIDR list", { allowedCidrs: "[]" }, /^allowedCidrs = "\[\]": expected at least one IPv4 CIDR/],
    ["broken JSON list", { allowedCidrs: '["1.2.3.4/32"' }, /^allowedCidrs = .*: expected a JSON list/],
    ["public VPC range", { vpcCidr: "8.8.0.0/16" }, /^vpcCidr = "8\.8\.0\.0\/16": expected a private range/],
    [
      "VPC too small",
      { vpcCidr: "10.0.0.0/26" },
      /^vpcCidr = "10\.0\.0\.0\/26": expected a prefix length from \/16 to \/24/,
    ],
    [
      "VPC not canonical",
      { vpcCidr: "10.0.0.1/16" },
      /^vpcCidr = "10\.0\.0\.1\/16": expected .*did you mean 10\.0\.0\.0\/16/,
    ],
    ["webCount zero", { webCount: "0" }, /^webCount = "0": expected a whole number from 1 to 10/],
    ["webCount too large", { webCount: "11" }, /^webCount = "11": expected a whole number from 1 to 10/],
    ["webCount not a number", { webCount: "two" }, /^webCount = "two": expected a whole number/],
    ["webCount fractional", { webCount: "1.5" }, /^webCount = "1\.5": expected a whole number/],
    [
      "threshold above 100",
      { rootDiskCriticalPercent: "101" },
      /^rootDiskCriticalPercent = "101": expected a whole number from 1 to 100/,
    ],
    ["threshold zero", { cpuWarningPercent: "0" }, /^cpuWarningPercent = "0": expected a whole number from 1 to 100/],
    [
      "threshold negative",
      { memoryWarningPercent: "-5" },
      /^memoryWarningPercent = "-5": expected a whole number from 1 to 100/,
    ],
    [
      "log error rate zero",
      { logErrorLinesPerMinute: "0" },
      /^logErrorLinesPerMinute = "0": expected a whole number from 1 to 100000/,
    ],
    ["retention zero", { lokiRetentionDays: "0" }, /^lokiRetentionDays = "0": expected a whole number from 1 to 3650/],
    ["remediation not a mode", { remediation: "yes" }, /^remediation = "yes": expected one of "off", "dry-run", "on"$/],
    ["remediation in capitals", { remediation: "On" }, /^remediation = "On": expected one of "off", "dry-run", "on"$/],
    ["metrics store unknown", { metricsStore: "thanos" }, /^metricsStore = "thanos": expected one of "local", "amp"$/],
    ["metrics store in capitals", { metricsStore: "AMP" }, /^metricsStore = "AMP": expected one of "local", "amp"$/],
    [
      "bad instance type",
      { grafanaInstanceType: "large" },
      /^grafanaInstanceType = "large": expected an EC2 instance type/,
    ],
    [
      "arm type on amd64 image",
      { lokiInstanceType: "t4g.small" },
      /^lokiInstanceType = "t4g\.small": expected an x86_64 instance type/,
    ],
    [
      "Loki on a type whose memory is unknown (its WAL replay ceiling follows it)",
      { lokiInstanceType: "x2iedn.large" },
      /^lokiInstanceType = "x2iedn\.large": expected a t2\/t3\/t3a\/t4g type .* whose memory is known/,
    ],
    [
      "root volume too small",
      { rootVolumeSizeGb: "4" },
      /^rootVolumeSizeGb = "4": expected a whole number from 8 to 500/,
    ],
    ["bad environment", { environment: "Prod_1" }, /^environment = "Prod_1": expected 1-32 lower-case letters/],
    ["bad AMI id", { amiId: "debian-12" }, /^amiId = "debian-12": expected an AMI id/],
    ["bad region", { "aws:region": "Virginia" }, /^aws:region = "Virginia": expected an AWS region name/],
    [
      "half an SSH key pair",
      { sshPublicKey: "ssh-ed25519 AAAAC3Nza me@laptop" },
      /^sshPublicKey and sshPrivateKey: expected both or neither/,
    ],
    [
      "plain-http runbook URL",
      { runbookBaseUrl: "http://git.example.com/README.md" },
      /^runbookBaseUrl = "http:\/\/git\.example\.com\/README\.md": expected an https:\/\/ URL/,
    ],
    ["bad SSH user", { sshUser: "Admin User" }, /^sshUser = "Admin User": expected a Unix user name/],
  ];
  for (const [what, values, message] of badInputs) {
    it(`rejects ${what}`, () => {
      const problems = problemsOf(values);
      assert.ok(
        problems.some((p) => message.test(p)),
        `no problem matched ${message}; got:\n${problems.join("\n")}`,
      );
    });
  }

  it("takes a mirror of Grafana's APT repository as structured config, with Grafana's suite and component by default", () => {
    // `pulumi config set --path vendorAptRepository.uri ...` stores an object; the program reads it as JSON text.
    const config = loadConfig(source({ ...valid, vendorAptRepository: JSON.stringify(MIRROR) }), ctx);
    assert.deepEqual(config.vendorAptRepository, {
      name: GRAFANA_APT.name,
      uri: MIRROR.uri,
      suite: "stable",
      components: ["main"],
      keyUrl: MIRROR.keyUrl,
      keyFingerprint: MIRROR.keyFingerprint,
      keyringPath: GRAFANA_APT.keyringPath,
    });
    const aptly = { ...MIRROR, uri: "file:///srv/aptly/public", keyUrl: "file:///srv/aptly/public/key.asc" };
    const custom = loadConfig(
      source({
        ...valid,
        vendorAptRepository: JSON.stringify({ ...aptly, suite: "grafana-2026", components: ["main", "extra"] }),
      }),
      ctx,
    ).vendorAptRepository;
    assert.equal(custom.uri, "file:///srv/aptly/public");
    assert.equal(custom.suite, "grafana-2026");
    assert.deepEqual(custom.components, ["main", "extra"]);
    assert.ok(Object.isFrozen(custom) && Object.isFrozen(custom.components));
  });

  it("rejects a non-Slack webhook without echoing the secret", () => {
    const secret = "http://example.com/hooks/very-secret-token";
    const problems = problemsOf({ slackWebhookUrl: secret }, ["slackWebhookUrl"]);
    assert.equal(problems.length, 1);
    assert.match(problems[0], /^slackWebhookUrl = <secret, 42 characters>: expected an https:\/\/hooks\.slack\.com/);
    assert.ok(!problems[0].includes("very-secret-token"));
  });

  it("rejects a webhook stored in plain text", () => {
    const problems = problemsOf({ slackWebhookUrl: "https://hooks.slack.com/services/T/B/X" });
    assert.deepEqual(problems, [
      "slackWebhookUrl is stored in plain text: set it with `npm run pulumi -- config set --secret slackWebhookUrl ...`",
    ]);
  });

  it("trusts the webhook when the engine does not say which keys are secret", () => {
    const unknown: ConfigSource = {
      get: (key) => ({ ...valid, slackWebhookUrl: "https://hooks.slack.com/services/T/B/X" })[key],
      isSecret: () => undefined,
    };
    assert.equal(loadConfig(unknown, ctx).slackWebhookUrl, "https://hooks.slack.com/services/T/B/X");
  });

  it("requires an environment when the stack name is not a valid one", () => {
    assert.throws(
      () => loadConfig(source(valid), { project: "titan-observability", stack: "My_Stack" }),
      /environment is not set and the stack name "My_Stack" is not a valid environment name/,
    );
    const config = loadConfig(source({ ...valid, environment: "demo" }), { project: "p", stack: "My_Stack" });
    assert.equal(config.environment, "demo");
  });

  it("reports every problem at once, in one message", () => {
    const problems = problemsOf({ webCount: "0", vpcCidr: "8.8.0.0/16", cpuWarningPercent: "200" });
    assert.equal(problems.length, 3);
    try {
      loadConfig(source({ ...valid, webCount: "0", vpcCidr: "8.8.0.0/16" }), ctx);
      assert.fail("expected a ConfigError");
    } catch (err) {
      assert.match((err as Error).message, /^Invalid stack configuration \(nothing was created\):\n {2}- /);
    }
  });

  it("accepts arm instance types with an arm64 image", () => {
    const arm = Object.fromEntries(
      ["web", "prometheus", "loki", "grafana"].map((r) => [`${r}InstanceType`, "t4g.small"]),
    );
    const config = loadConfig(
      source({ ...valid, ...arm, amiSsmParameter: "/aws/service/debian/release/12/latest/arm64" }),
      ctx,
    );
    assert.equal(config.instanceTypes.web, "t4g.small");
    assert.match(
      problemsOf({ amiSsmParameter: "/aws/service/debian/release/12/latest/arm64" }).join("\n"),
      /expected an arm64/,
    );
  });

  it("recognises Graviton instance families", () => {
    for (const t of ["t4g.small", "m7g.large", "c6gn.xlarge", "r8gd.medium", "x2gd.large"])
      assert.ok(isArmInstanceType(t), t);
    for (const t of ["t3.small", "m5.large", "g4dn.xlarge", "c7i.large", "m6gd"]) assert.ok(!isArmInstanceType(t), t);
  });
});

describe("Pulumi.yaml", () => {
  const project = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as {
    name: string;
    runtime: { name: string; options: { typescript: boolean } };
    config: Record<string, { type: string; default?: unknown; description: string; items?: { type: string } }>;
  };

  it("is a TypeScript Node.js project", () => {
    assert.equal(project.name, "titan-observability");
    assert.equal(project.runtime.name, "nodejs");
    assert.equal(project.runtime.options.typescript, true);
  });

  it("declares exactly the keys that have a default or are required, with the same type, default and description", () => {
    const declarable = CONFIG_KEYS.filter(
      (k) => !("namespaced" in k) && ("default" in k || ("required" in k && k.required)),
    );
    assert.deepEqual(Object.keys(project.config).sort(), declarable.map((k) => k.key).sort());
    for (const spec of declarable) {
      const declared = project.config[spec.key];
      assert.equal(declared.type, spec.type, spec.key);
      assert.equal(declared.description, spec.description, spec.key);
      assert.equal(declared.default, "default" in spec ? spec.default : undefined, spec.key);
      if (spec.type === "array") assert.deepEqual(declared.items, { type: "string" });
    }
  });

  it("keeps secrets out of the dev stack file", () => {
    const stack = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")) as {
      config: Record<string, unknown>;
    };
    for (const spec of CONFIG_KEYS.filter((k) => "secret" in k && k.secret)) {
      assert.equal(stack.config[`titan-observability:${spec.key}`], undefined, spec.key);
    }
    assert.equal(stack.config["aws:region"], "us-east-1");
  });
});
