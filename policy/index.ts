/**
 * The stack's guardrails as a Pulumi policy pack: `pulumi preview --policy-pack policy`.
 * Security promises are mandatory (a violation fails the preview or update before anything
 * changes); conventions are advisory (reported, the run goes on). docs/policy-pack.md.
 */
import { PolicyPack } from "@pulumi/policy";
import { PACK_NAME, POLICIES } from "./policies";

new PolicyPack(PACK_NAME, {
  description: "Security promises and conventions of the Titan observability stack",
  policies: POLICIES,
});
