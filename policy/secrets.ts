/**
 * No secret where AWS shows it to anyone who can describe the resource: user data (readable
 * with ec2:DescribeInstanceAttribute and by every process on the host through the metadata
 * service) and tags (listed everywhere). Secrets reach the hosts over SSH (infra/delivery).
 */
import { Instance } from "@pulumi/aws/ec2/instance";
import { LaunchTemplate } from "@pulumi/aws/ec2/launchTemplate";
import type { PolicyResource, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { RandomBytes } from "@pulumi/random/randomBytes";
import { RandomPassword } from "@pulumi/random/randomPassword";
import { PrivateKey } from "@pulumi/tls/privateKey";
import { subject, withFix } from "./subject";

/** Secret shapes, named by what they are; a finding never repeats the value. */
const SECRET_SHAPES: readonly { readonly what: string; readonly pattern: RegExp }[] = [
  { what: "a private key", pattern: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/ },
  { what: "an AWS access key id", pattern: /\b(AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { what: "an AWS secret access key", pattern: /aws_secret_access_key\s*[=:]\s*\S/i },
  { what: "a Slack webhook URL", pattern: /https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9_/-]+/ },
  { what: "a Grafana service-account token", pattern: /\bglsa_[A-Za-z0-9_]{20,}/ },
  {
    // key=value or key: value with a literal, not a path, a variable or a file reference.
    what: "a password, secret or token assignment",
    pattern:
      /[\w.-]*(password|passwd|secret|token|api[_-]?key)[\w.-]*["']?\s*[=:]\s*["']?(?![/$%{]|\s|["']|$)[^\s"']{6,}/i,
  },
];

/** What kinds of secret `text` holds (empty when none). */
export function secretFindings(text: string): string[] {
  return SECRET_SHAPES.filter((shape) => shape.pattern.test(text)).map((shape) => shape.what);
}

const decode = (base64: string) => Buffer.from(base64, "base64").toString("utf8");

/** The user data of a host-creating resource as the host will read it, or undefined. */
function userDataOf(r: { type: string; props: Record<string, unknown> } & Pick<PolicyResource, "isType">) {
  if (r.isType(Instance)) {
    if (typeof r.props.userData === "string") return r.props.userData;
    if (typeof r.props.userDataBase64 === "string") return decode(r.props.userDataBase64);
  }
  // A launch template's user data is base64 on the wire (EC2 API: RequestLaunchTemplateData).
  if (r.isType(LaunchTemplate) && typeof r.props.userData === "string") return decode(r.props.userData);
  return undefined;
}

const tagsOf = (props: Record<string, unknown>): Record<string, string> => {
  const tags = props.tags;
  return tags && typeof tags === "object" ? { ...(tags as Record<string, string>) } : {};
};

const SECRET_FIX =
  "deliver it over SSH as a file (infra/delivery pushes the Grafana password and Slack webhook that way) and keep only its path in user data";

export const noSecretInUserDataOrTags: ResourceValidationPolicy = {
  name: "no-secret-in-user-data-or-tags",
  description:
    "User data and tags hold no private key, AWS key, Slack webhook URL, Grafana token or literal password/secret/token assignment.",
  enforcementLevel: "mandatory",
  validateResource: (args, report) => {
    const userData = userDataOf(args);
    for (const what of userData === undefined ? [] : secretFindings(userData)) {
      report(withFix(`${subject(args)}'s user data contains ${what}`, SECRET_FIX));
    }
    for (const [key, value] of Object.entries(tagsOf(args.props))) {
      for (const what of secretFindings(`${key}=${value}`)) {
        report(withFix(`${subject(args)}'s tag ${key} contains ${what}`, "tags are public metadata: drop it"));
      }
    }
  },
};

/** Outputs that hold what a resource generated as a secret (each provider marks them Sensitive). */
const GENERATED_SECRETS: readonly {
  readonly kind: Parameters<PolicyResource["isType"]>[0];
  readonly outputs: string[];
}[] = [
  { kind: RandomPassword, outputs: ["result", "bcryptHash"] },
  { kind: RandomBytes, outputs: ["hex", "base64"] },
  { kind: PrivateKey, outputs: ["privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"] },
];

/** Shorter values would match by chance. */
const MIN_SECRET_LENGTH = 8;

export const noGeneratedSecretInUserDataOrTags: StackValidationPolicy = {
  name: "no-generated-secret-in-user-data-or-tags",
  description:
    "No value the stack generated as a secret (random passwords and bytes, TLS private keys) appears in user data or tags.",
  enforcementLevel: "mandatory",
  validateStack: (args, report) => {
    const secrets: { value: string; from: string }[] = [];
    for (const r of args.resources) {
      const source = GENERATED_SECRETS.find((s) => r.isType(s.kind));
      for (const output of source?.outputs ?? []) {
        const value: unknown = r.props[output];
        if (typeof value === "string" && value.length >= MIN_SECRET_LENGTH) {
          secrets.push({ value, from: `${subject(r)}.${output}` });
        }
      }
    }
    for (const r of args.resources) {
      const places: [string, string][] = [];
      const userData = userDataOf(r);
      if (userData !== undefined) places.push(["user data", userData]);
      for (const [key, value] of Object.entries(tagsOf(r.props))) places.push([`tag ${key}`, value]);
      for (const [where, text] of places) {
        for (const secret of secrets.filter((s) => text.includes(s.value))) {
          report(withFix(`${subject(r)}'s ${where} contains the secret ${secret.from}`, SECRET_FIX), r.urn);
        }
      }
    }
  },
};
