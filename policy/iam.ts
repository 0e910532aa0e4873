/**
 * Least privilege: no IAM document grants a wildcard action, NotAction, a wildcard resource to
 * an action that can be scoped, or a trust to any principal; no AWS-managed admin policy is
 * attached. infra/iam.ts holds the two documents this stack needs.
 */
import { GroupPolicy } from "@pulumi/aws/iam/groupPolicy";
import { GroupPolicyAttachment } from "@pulumi/aws/iam/groupPolicyAttachment";
import { Policy } from "@pulumi/aws/iam/policy";
import { PolicyAttachment } from "@pulumi/aws/iam/policyAttachment";
import { Role } from "@pulumi/aws/iam/role";
import { RolePolicy } from "@pulumi/aws/iam/rolePolicy";
import { RolePolicyAttachment } from "@pulumi/aws/iam/rolePolicyAttachment";
import { RolePolicyAttachmentsExclusive } from "@pulumi/aws/iam/rolePolicyAttachmentsExclusive";
import { UserPolicy } from "@pulumi/aws/iam/userPolicy";
import { UserPolicyAttachment } from "@pulumi/aws/iam/userPolicyAttachment";
import { validateResourceOfType, type ResourceValidationPolicy, type ReportViolation } from "@pulumi/policy";
import { many, statementsOf } from "./documents";
import { subject, withFix } from "./subject";

/**
 * Actions AWS authorizes only against Resource "*" (the Service Authorization Reference lists
 * no resource type for EC2's Describe* calls), so "*" there is not a wildcard grant.
 */
const UNSCOPABLE_ACTION = /^ec2:Describe[A-Za-z]+$/;

/**
 * Amazon Managed Service for Prometheus: the stack's aps actions (facts/metricsStore.ts) act on a
 * workspace, so a statement granting any aps action names workspace ARNs, no wildcard in them
 * (arn:<partition>:aps:<region>:<account>:workspace/<id>, AWS's API_WorkspaceDescription pattern).
 */
const AMP_ACTION = /^aps:/i;
const AMP_WORKSPACE_ARN = /^arn:aws[a-z-]*:aps:[a-z0-9-]+:\d{12}:workspace\/[^*?/]+$/;

/** AWS-managed policies that grant whole services or the account. */
const BROAD_MANAGED_POLICY =
  /^arn:aws[a-z-]*:iam::aws:policy\/(.*\/)?(AdministratorAccess|PowerUserAccess|[A-Za-z0-9]*FullAccess)$/;

/** A policy document's problems; `document` is what the provider takes: JSON text or an object. */
export function documentProblems(document: unknown): string[] {
  const statements = statementsOf(document);
  if (statements === undefined) return ["is not a JSON policy document"];
  const problems: string[] = [];
  for (const [i, s] of statements.entries()) {
    if (s.Effect !== "Allow") continue;
    const at = `statement ${i + 1}`;
    const actions = many(s.Action);
    if (s.NotAction !== undefined) problems.push(`${at} allows everything except ${many(s.NotAction).join(", ")}`);
    const wild = actions.filter((a) => a.includes("*"));
    if (wild.length > 0) problems.push(`${at} allows the wildcard action ${wild.join(", ")}`);
    if (s.NotResource !== undefined)
      problems.push(`${at} applies to every resource except ${many(s.NotResource).join(", ")}`);
    const everyResource = many(s.Resource).includes("*");
    const scopable = actions.filter((a) => !UNSCOPABLE_ACTION.test(a));
    if (everyResource && scopable.length > 0) problems.push(`${at} grants ${scopable.join(", ")} on Resource "*"`);
    const amp = actions.filter((a) => AMP_ACTION.test(a));
    const notWorkspaces = many(s.Resource).filter((r) => r !== "*" && !AMP_WORKSPACE_ARN.test(r));
    if (amp.length > 0 && notWorkspaces.length > 0) {
      problems.push(`${at} grants ${amp.join(", ")} on ${notWorkspaces.join(", ")}, not on one AMP workspace's ARN`);
    }
    if (principalIsAnyone(s.Principal)) problems.push(`${at} trusts any principal ("*")`);
  }
  return problems;
}

function principalIsAnyone(principal: unknown): boolean {
  if (principal === "*") return true;
  if (principal && typeof principal === "object") {
    return Object.values(principal as Record<string, unknown>).some((v) => many(v).includes("*"));
  }
  return false;
}

const DOCUMENT_FIX =
  'name each action and the ARNs it needs (infra/iam.ts: Prometheus gets ec2:DescribeInstances and ec2:DescribeAvailabilityZones on "*", Loki its own bucket only, aps actions the stack\'s AMP workspace only)';

function reportDocument(what: string, field: string, document: unknown, report: ReportViolation) {
  for (const problem of documentProblems(document)) report(withFix(`${what}: ${field} ${problem}`, DOCUMENT_FIX));
}

function reportManaged(what: string, arn: string | undefined, report: ReportViolation) {
  if (arn !== undefined && BROAD_MANAGED_POLICY.test(arn)) {
    report(withFix(`${what} attaches the AWS-managed ${arn}`, "an inline policy with the actions the host needs"));
  }
}

export const noWildcardIam: ResourceValidationPolicy = {
  name: "no-wildcard-iam",
  description:
    'No IAM document allows a wildcard action, NotAction/NotResource, Resource "*" on an action that can be scoped, an aps (AMP) action on anything but a workspace ARN, or any principal; no AWS-managed admin or full-access policy is attached.',
  enforcementLevel: "mandatory",
  validateResource: [
    validateResourceOfType(Role, (role, args, report) => {
      reportDocument(subject(args), "assumeRolePolicy", role.assumeRolePolicy, report);
      for (const inline of role.inlinePolicies ?? []) {
        reportDocument(subject(args), `inline policy ${inline.name ?? ""}`.trim(), inline.policy, report);
      }
      for (const arn of role.managedPolicyArns ?? []) reportManaged(subject(args), arn, report);
    }),
    validateResourceOfType(RolePolicy, (p, args, report) => reportDocument(subject(args), "policy", p.policy, report)),
    validateResourceOfType(UserPolicy, (p, args, report) => reportDocument(subject(args), "policy", p.policy, report)),
    validateResourceOfType(GroupPolicy, (p, args, report) => reportDocument(subject(args), "policy", p.policy, report)),
    validateResourceOfType(Policy, (p, args, report) => reportDocument(subject(args), "policy", p.policy, report)),
    validateResourceOfType(RolePolicyAttachment, (a, args, report) =>
      reportManaged(subject(args), a.policyArn, report),
    ),
    validateResourceOfType(UserPolicyAttachment, (a, args, report) =>
      reportManaged(subject(args), a.policyArn, report),
    ),
    validateResourceOfType(GroupPolicyAttachment, (a, args, report) =>
      reportManaged(subject(args), a.policyArn, report),
    ),
    validateResourceOfType(RolePolicyAttachmentsExclusive, (a, args, report) => {
      for (const arn of a.policyArns ?? []) reportManaged(subject(args), arn, report);
    }),
    validateResourceOfType(PolicyAttachment, (a, args, report) => reportManaged(subject(args), a.policyArn, report)),
  ],
};
