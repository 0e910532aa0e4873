/**
 * Every configuration key of the stack: its type, default, documentation and validation, in
 * one table. `validateConfig` reads all of them from any ConfigSource, collects every bad
 * value at once (key, value, what was expected) and returns one frozen, typed object. No
 * Pulumi here: infra/config.ts reads the running stack's settings and turns problems into a
 * Pulumi error. Pulumi.yaml's `config:` block and the README's reference table are checked
 * against CONFIG_KEYS by the tests.
 */
import { instanceMemoryMiB } from "./instanceMemory";
import { DEFAULT_METRICS_STORE, METRICS_STORES, type MetricsStore } from "./metricsStore";
import { canonicalCidr, isPrivate, parseCidr } from "./cidr";
import { DEFAULT_REMEDIATION_MODE, REMEDIATION_ACTIONS, REMEDIATION_MODES, type RemediationMode } from "./remediation";
import { DATA_VOLUME_ROLES, ROLES, type DataVolumeRole, type Role } from "./topology";
import { DEBIAN_IMAGE, GRAFANA_APT, vendorRepository, type AptRepository } from "./versions";

/** The image hosts boot when neither amiId nor amiSsmParameter is set: one pinned Debian release. */
export type PinnedImage = typeof DEBIAN_IMAGE;

/** The root volume sizes rootVolumeSizeGb accepts; the policy pack holds every instance to the same bound. */
export const ROOT_VOLUME_GB = { min: 8, max: 500 } as const;

export interface StackConfig {
  readonly project: string;
  readonly stack: string;
  readonly environment: string;
  readonly region: string;
  readonly allowedCidrs: readonly string[];
  readonly vpcCidr: string;
  readonly webCount: number;
  readonly instanceTypes: Readonly<Record<Role, string>>;
  readonly rootVolumeSizeGb: number;
  readonly dataVolumeSizeGb: Readonly<Record<DataVolumeRole, number>>;
  readonly thresholds: Readonly<{
    rootDiskCriticalPercent: number;
    cpuWarningPercent: number;
    memoryWarningPercent: number;
    logErrorLinesPerMinute: number;
  }>;
  readonly retention: Readonly<{ prometheusDays: number; lokiDays: number }>;
  /**
   * amiId: exactly that image; ssmParameter: whatever the parameter names at each run (a moving
   * parameter replaces every host when it moves); pinned (the default): DEBIAN_IMAGE.
   */
  readonly image: Readonly<{ amiId: string } | { ssmParameter: string } | { pinned: PinnedImage }>;
  readonly sshUser: string;
  /** Operator-supplied key pair; when absent the stack generates one. */
  readonly sshKey?: Readonly<{ publicKey: string; privateKey: string }>;
  readonly grafanaAdminUser: string;
  /** Raised to generate a new Grafana admin password (the RandomPassword's keeper); unset: never rotated. */
  readonly grafanaAdminPasswordRotation?: number;
  /** Where the alert runbooks are published (docs/runbooks.md on your Git host); optional. */
  readonly runbookBaseUrl?: string;
  /** Plain text here; index.ts wraps it with pulumi.secret before any resource sees it. */
  readonly slackWebhookUrl?: string;
  /** Whether alerts that name a fix reach the web hosts' remediation agents, and whether they act. */
  readonly remediation: RemediationMode;
  /** Raised to replace the key Grafana signs the remediation webhooks with (unset: the first one stays). */
  readonly remediationSecretRotation?: number;
  /** Where grafana, loki and alloy come from: Grafana's repository (GRAFANA_APT) unless a mirror is set. */
  readonly vendorAptRepository: AptRepository;
  /** local: the Prometheus host keeps the metrics; amp: an AMP workspace does (infra/amp.ts). */
  readonly metricsStore: MetricsStore;
}

/** Raw access to the stack's configuration: strings exactly as Pulumi stores them. */
export interface ConfigSource {
  get(key: string): string | undefined;
  /** Whether the key was stored encrypted; undefined when the engine did not say. */
  isSecret(key: string): boolean | undefined;
}

type Problem = { readonly expected: string };
type Check<T> = (raw: string) => T | Problem;

export type ConfigType = "string" | "integer" | "array" | "object";

export interface KeySpec {
  readonly key: string;
  readonly type: ConfigType;
  readonly description: string;
  /** Value used when the key is unset; absent for required and optional keys. */
  readonly default?: string | number;
  readonly required?: boolean;
  readonly secret?: boolean;
  /** Provider keys such as aws:region live outside the project namespace. */
  readonly namespaced?: boolean;
}

const expected = (text: string): Problem => ({ expected: text });
const isProblem = (v: unknown): v is Problem =>
  typeof v === "object" && v !== null && "expected" in v && !Array.isArray(v);

function integer(min: number, max: number): Check<number> {
  return (raw) => {
    const text = raw.trim();
    const value = Number(text);
    return /^-?\d+$/.test(text) && value >= min && value <= max
      ? value
      : expected(`a whole number from ${min} to ${max}`);
  };
}

function pattern(re: RegExp, what: string): Check<string> {
  return (raw) => (re.test(raw) ? raw : expected(what));
}

function oneOf<T extends string>(values: readonly T[]): Check<T> {
  return (raw) =>
    (values as readonly string[]).includes(raw)
      ? (raw as T)
      : expected(`one of ${values.map((v) => JSON.stringify(v)).join(", ")}`);
}

const percent = integer(1, 100);
const instanceType = pattern(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, "an EC2 instance type such as t3.small");

const cidrList: Check<readonly string[]> = (raw) => {
  let items: unknown;
  const text = raw.trim();
  if (text.startsWith("[")) {
    try {
      items = JSON.parse(text);
    } catch {
      return expected('a JSON list of IPv4 CIDRs, e.g. ["203.0.113.7/32"]');
    }
  } else {
    items = text.split(",").map((s) => s.trim());
  }
  if (!Array.isArray(items) || items.length === 0) {
    return expected('at least one IPv4 CIDR, e.g. ["203.0.113.7/32"]');
  }
  const cidrs: string[] = [];
  for (const item of items) {
    if (typeof item !== "string" || !parseCidr(item)) {
      const canonical = typeof item === "string" ? canonicalCidr(item) : undefined;
      const hint = canonical ? ` (did you mean ${canonical}?)` : "";
      return expected(`IPv4 CIDRs in canonical form; ${JSON.stringify(item)} is not one${hint}`);
    }
    if (!cidrs.includes(item)) cidrs.push(item);
  }
  return cidrs;
};

function vpcCidr(raw: string): string | Problem {
  const cidr = parseCidr(raw);
  if (!cidr) return expected(`an IPv4 CIDR in canonical form${hintFor(raw)}`);
  if (cidr.prefix < 16 || cidr.prefix > 24)
    return expected("a prefix length from /16 to /24 (AWS allows /16 to /28; the address plan needs a /24)");
  if (!isPrivate(cidr)) return expected("a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)");
  return raw;
}

function hintFor(raw: string): string {
  const canonical = canonicalCidr(raw);
  return canonical && canonical !== raw ? ` (did you mean ${canonical}?)` : "";
}

function slackWebhook(raw: string): string | Problem {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return expected("an https://hooks.slack.com/... incoming-webhook URL");
  }
  return url.protocol === "https:" && url.hostname === "hooks.slack.com" && url.pathname.length > 1
    ? raw
    : expected("an https://hooks.slack.com/... incoming-webhook URL");
}

function httpsUrl(raw: string): string | Problem {
  try {
    const url = new URL(raw);
    if (url.protocol === "https:" && !url.hash) return raw;
  } catch {
    // reported below
  }
  return expected("an https:// URL without a #fragment");
}

/** Structured config arrives as JSON text (Pulumi's getObject does the same parse). */
const vendorApt: Check<AptRepository> = (raw) => {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  const result = vendorRepository(value);
  return "expected" in result ? expected(result.expected) : result;
};

const SSH_PUBLIC_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*( .*)?$/;
const SSH_PRIVATE_KEY =
  /^-----BEGIN (OPENSSH|RSA|EC) PRIVATE KEY-----[\s\S]+-----END (OPENSSH|RSA|EC) PRIVATE KEY-----\s*$/;

/** Every key: documentation, default and check. */
export const CONFIG_KEYS = [
  {
    key: "allowedCidrs",
    type: "array",
    required: true,
    description:
      "Operator IPv4 CIDRs allowed to reach SSH, Grafana, the Prometheus UI and the app. No default: deploy.sh sets your public IP/32 on first use.",
  },
  {
    key: "vpcCidr",
    type: "string",
    default: "10.42.0.0/16",
    description: "Private IPv4 range of the VPC (/16 to /24); hosts live in its first /24.",
  },
  { key: "webCount", type: "integer", default: 1, description: "Number of web hosts running the Titan app (1-10)." },
  ...ROLES.map((role) => ({
    key: `${role}InstanceType`,
    type: "string" as const,
    default: "t3.small",
    description: `EC2 instance type of the ${role} host${role === "web" ? "s" : ""}.`,
  })),
  {
    key: "rootVolumeSizeGb",
    type: "integer",
    default: 20,
    description: `Encrypted gp3 root volume of every host, in GiB (${ROOT_VOLUME_GB.min}-${ROOT_VOLUME_GB.max}).`,
  },
  {
    key: "prometheusDataVolumeSizeGb",
    type: "integer",
    default: 20,
    description: "Encrypted gp3 volume for the Prometheus TSDB, in GiB (1-1000).",
  },
  {
    key: "lokiDataVolumeSizeGb",
    type: "integer",
    default: 10,
    description: "Encrypted gp3 volume for Loki's WAL, index cache and compactor state, in GiB (1-1000).",
  },
  {
    key: "grafanaDataVolumeSizeGb",
    type: "integer",
    default: 5,
    description: "Encrypted gp3 volume for Grafana's database, in GiB (1-1000).",
  },
  {
    key: "environment",
    type: "string",
    description: "Environment tag and label (lower-case letters, digits, '-'; default: the stack name).",
  },
  {
    key: "slackWebhookUrl",
    type: "string",
    secret: true,
    description:
      "Slack incoming-webhook URL for alert notifications (set with --secret). Optional: without it alerts show only in Grafana.",
  },
  {
    key: "runbookBaseUrl",
    type: "string",
    description:
      "Optional https URL of docs/runbooks.md as published (e.g. on your Git host); alerts then link to its runbook sections. The steps travel in every alert either way.",
  },
  {
    key: "remediation",
    type: "string",
    default: DEFAULT_REMEDIATION_MODE,
    description: `Self-healing, one of ${REMEDIATION_MODES.join(", ")}: on lets each web host's remediation agent act on the alerts that name a fix (${REMEDIATION_ACTIONS.join(", ")}); dry-run only logs and counts what it would do; off routes no alert to it.`,
  },
  {
    key: "remediationSecretRotation",
    type: "integer",
    description:
      "Set, then raise (1, 2, ...), to generate a new key for the signed webhooks from Grafana to the remediation agents: the next `pulumi up` gives it to Grafana and every web host at once. Unset, the key generated on the first `up` stays (1-1000000).",
  },
  {
    key: "rootDiskCriticalPercent",
    type: "integer",
    default: 65,
    description: "Root filesystem used % above which the critical disk alert fires (1-100).",
  },
  {
    key: "cpuWarningPercent",
    type: "integer",
    default: 80,
    description: "CPU utilisation % sustained for 5 minutes that raises a warning (1-100).",
  },
  {
    key: "memoryWarningPercent",
    type: "integer",
    default: 85,
    description: "Memory used % sustained for 5 minutes that raises a warning (1-100).",
  },
  {
    key: "logErrorLinesPerMinute",
    type: "integer",
    default: 60,
    description:
      "Error-level log lines a minute from one web host, sustained for 5 minutes, that raise the log-based warning (1-100000).",
  },
  {
    key: "prometheusRetentionDays",
    type: "integer",
    default: 15,
    description: "Days of metrics Prometheus keeps (1-3650).",
  },
  {
    key: "lokiRetentionDays",
    type: "integer",
    default: 7,
    description: "Days of logs Loki keeps; the S3 lifecycle expiry follows it (1-3650).",
  },
  {
    key: "amiSsmParameter",
    type: "string",
    description: `SSM parameter that names the OS image; unset, hosts boot the pinned Debian release ${DEBIAN_IMAGE.name}. A parameter that moves (…/latest/…) replaces every host when it moves.`,
  },
  {
    key: "amiId",
    type: "string",
    description: "Explicit AMI id; overrides amiSsmParameter. Must be a Debian 12 image.",
  },
  {
    key: "sshUser",
    type: "string",
    default: "admin",
    description: "Login user of the image (Debian's AMIs use admin).",
  },
  {
    key: "sshPublicKey",
    type: "string",
    description: "Your own OpenSSH public key; set together with sshPrivateKey, otherwise a key is generated.",
  },
  {
    key: "sshPrivateKey",
    type: "string",
    secret: true,
    description: "Private key matching sshPublicKey (set with --secret), used by the configuration push.",
  },
  {
    key: "grafanaAdminUser",
    type: "string",
    default: "admin",
    description: "Grafana admin login; its password is generated and exported as a secret.",
  },
  {
    key: "grafanaAdminPasswordRotation",
    type: "integer",
    description:
      "Set, then raise (1, 2, ...), to generate a new Grafana admin password: the next `pulumi up` resets it in Grafana. Unset, the password generated on the first `up` stays (1-1000000).",
  },
  {
    key: "vendorAptRepository",
    type: "object",
    description:
      "Optional mirror of Grafana's APT repository (Artifactory, Nexus, aptly...) for grafana, loki and alloy: {uri, keyUrl, keyFingerprint, suite?, components?}, set with --path (e.g. `vendorAptRepository.uri`); suite defaults to stable, components to [main]. Unset: Grafana's own, apt.grafana.com. A change replaces the web, loki and grafana hosts.",
  },
  {
    key: "metricsStore",
    type: "string",
    default: DEFAULT_METRICS_STORE,
    description: `Where metrics are kept, one of ${METRICS_STORES.join(", ")}: local keeps them on the Prometheus host for prometheusRetentionDays; amp creates an Amazon Managed Service for Prometheus workspace with the stack, Prometheus writes every sample to it (keeping only the last day locally) and Grafana reads from it (docs/metrics-store.md).`,
  },
  {
    key: "aws:region",
    type: "string",
    namespaced: true,
    description:
      "AWS region (provider key). Pulumi.dev.yaml sets us-east-1; npm run deploy writes AWS_REGION (or AWS_DEFAULT_REGION) into a new stack that has none.",
  },
] as const satisfies readonly KeySpec[];

export type ConfigKey = (typeof CONFIG_KEYS)[number]["key"];

const SPECS: ReadonlyMap<string, KeySpec> = new Map(CONFIG_KEYS.map((s) => [s.key, s]));

/** The stack's configuration, or every problem found in it. */
export type ConfigResult =
  { readonly ok: true; readonly config: StackConfig } | { readonly ok: false; readonly problems: readonly string[] };

/** Reads and validates every key, reporting all problems rather than the first. */
export function validateConfig(source: ConfigSource, ctx: { project: string; stack: string }): ConfigResult {
  const problems: string[] = [];
  const shown = (key: string, raw: string) =>
    SPECS.get(key)?.secret ? `<secret, ${raw.length} characters>` : JSON.stringify(raw);

  function read<T>(key: ConfigKey, check: Check<T>): T | undefined {
    const raw = source.get(key);
    const spec = SPECS.get(key) as KeySpec;
    if (raw === undefined || raw === "") {
      if (spec.required) problems.push(`${key} is not set: expected ${spec.description}`);
      if (spec.default === undefined) return undefined;
      const fallback = check(String(spec.default));
      return isProblem(fallback) ? undefined : fallback;
    }
    if (spec.secret && source.isSecret(key) === false) {
      problems.push(`${key} is stored in plain text: set it with \`npm run pulumi -- config set --secret ${key} ...\``);
    }
    const value = check(raw);
    if (isProblem(value)) {
      problems.push(`${key} = ${shown(key, raw)}: expected ${value.expected}`);
      return undefined;
    }
    return value;
  }

  const environment = read(
    "environment",
    pattern(
      /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/,
      "1-32 lower-case letters, digits or '-', not starting or ending with '-'",
    ),
  );
  const stackEnvironment = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/.test(ctx.stack) ? ctx.stack : undefined;
  if (environment === undefined && source.get("environment") === undefined && !stackEnvironment) {
    problems.push(
      `environment is not set and the stack name ${JSON.stringify(ctx.stack)} is not a valid environment name: set environment to 1-32 lower-case letters, digits or '-'`,
    );
  }

  const region = source.get("aws:region") ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (region === undefined) {
    problems.push(
      "aws:region is not set: expected an AWS region, e.g. `npm run pulumi -- config set aws:region us-east-1` (or AWS_REGION)",
    );
  } else if (!/^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/.test(region)) {
    problems.push(`aws:region = ${JSON.stringify(region)}: expected an AWS region name such as us-east-1`);
  }

  const instanceTypes = Object.fromEntries(
    ROLES.map((role) => [role, read(`${role}InstanceType`, instanceType)]),
  ) as Record<Role, string | undefined>;

  // Loki's WAL replay ceiling follows its host's memory (templates/loki/config.ts): a type whose
  // memory is unknown is refused here, before any resource exists, not when Loki's file renders.
  const lokiType = instanceTypes.loki;
  const lokiMemory = lokiType === undefined ? undefined : instanceMemoryMiB(lokiType);
  if (lokiMemory !== undefined && typeof lokiMemory !== "number") {
    problems.push(`lokiInstanceType = ${JSON.stringify(lokiType)}: expected ${lokiMemory.expected}`);
  }

  const amiId = read("amiId", pattern(/^ami-[0-9a-f]{8}([0-9a-f]{9})?$/, "an AMI id such as ami-0123456789abcdef0"));
  const ssmParameter = read(
    "amiSsmParameter",
    pattern(/^\/[A-Za-z0-9_.\-/]+$/, "an SSM parameter path starting with /"),
  );
  if (amiId === undefined) {
    // The pinned default is an amd64 build (DEBIAN_IMAGE.architecture).
    const armParameter = ssmParameter !== undefined && /arm64/.test(ssmParameter);
    const imageKey =
      ssmParameter !== undefined ? `amiSsmParameter ${ssmParameter}` : `the default image ${DEBIAN_IMAGE.name}`;
    for (const role of ROLES) {
      const type = instanceTypes[role];
      if (type && isArmInstanceType(type) !== armParameter) {
        problems.push(
          `${role}InstanceType = ${JSON.stringify(type)}: expected an ${armParameter ? "arm64 (Graviton)" : "x86_64"} instance type to match ${imageKey}`,
        );
      }
    }
  }

  const publicKey = read(
    "sshPublicKey",
    pattern(SSH_PUBLIC_KEY, "an OpenSSH public key line (ssh-ed25519, ssh-rsa or ecdsa-sha2-*)"),
  );
  const privateKey = read("sshPrivateKey", pattern(SSH_PRIVATE_KEY, "a PEM or OpenSSH private key"));
  const keySet = [source.get("sshPublicKey"), source.get("sshPrivateKey")].filter((v) => v);
  if (keySet.length === 1) {
    problems.push(
      "sshPublicKey and sshPrivateKey: expected both or neither (the configuration push needs the private half)",
    );
  }

  const config = {
    project: ctx.project,
    stack: ctx.stack,
    environment: environment ?? stackEnvironment ?? "",
    region: region ?? "",
    allowedCidrs: read("allowedCidrs", cidrList) ?? [],
    vpcCidr: read("vpcCidr", vpcCidr) ?? "",
    webCount: read("webCount", integer(1, 10)) ?? 0,
    instanceTypes: Object.freeze(instanceTypes as Record<Role, string>),
    rootVolumeSizeGb: read("rootVolumeSizeGb", integer(ROOT_VOLUME_GB.min, ROOT_VOLUME_GB.max)) ?? 0,
    dataVolumeSizeGb: Object.freeze(
      Object.fromEntries(
        DATA_VOLUME_ROLES.map((role) => [role, read(`${role}DataVolumeSizeGb`, integer(1, 1000)) ?? 0]),
      ) as Record<DataVolumeRole, number>,
    ),
    thresholds: Object.freeze({
      rootDiskCriticalPercent: read("rootDiskCriticalPercent", percent) ?? 0,
      cpuWarningPercent: read("cpuWarningPercent", percent) ?? 0,
      memoryWarningPercent: read("memoryWarningPercent", percent) ?? 0,
      logErrorLinesPerMinute: read("logErrorLinesPerMinute", integer(1, 100_000)) ?? 0,
    }),
    retention: Object.freeze({
      prometheusDays: read("prometheusRetentionDays", integer(1, 3650)) ?? 0,
      lokiDays: read("lokiRetentionDays", integer(1, 3650)) ?? 0,
    }),
    image: Object.freeze(amiId ? { amiId } : ssmParameter ? { ssmParameter } : { pinned: DEBIAN_IMAGE }),
    sshUser: read("sshUser", pattern(/^[a-z_][a-z0-9_-]{0,31}$/, "a Unix user name such as admin")) ?? "",
    sshKey: publicKey && privateKey ? Object.freeze({ publicKey, privateKey }) : undefined,
    grafanaAdminUser:
      read("grafanaAdminUser", pattern(/^[A-Za-z0-9_.@-]{1,64}$/, "1-64 letters, digits or _.@-")) ?? "",
    grafanaAdminPasswordRotation: read("grafanaAdminPasswordRotation", integer(1, 1_000_000)),
    slackWebhookUrl: read("slackWebhookUrl", slackWebhook),
    remediation: read("remediation", oneOf(REMEDIATION_MODES)) ?? DEFAULT_REMEDIATION_MODE,
    remediationSecretRotation: read("remediationSecretRotation", integer(1, 1_000_000)),
    runbookBaseUrl: read("runbookBaseUrl", httpsUrl),
    vendorAptRepository: read("vendorAptRepository", vendorApt) ?? GRAFANA_APT,
    metricsStore: read("metricsStore", oneOf(METRICS_STORES)) ?? DEFAULT_METRICS_STORE,
  };
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, config: Object.freeze(config) };
}

/** Graviton families carry a "g" right after the generation digit: t4g, m7g, c6gn, r8gd. */
export function isArmInstanceType(type: string): boolean {
  return /^[a-z]+\d+g[a-z]*\./.test(type);
}
