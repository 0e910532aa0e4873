# shellcheck shell=bash
# Sourced by deploy.sh and ci-preview.sh, after pulumi-env.sh (project_root, die): the policy
# pack every update and pull-request preview runs (docs/policy-pack.md). Pulumi loads a pack
# from the directory that holds its PulumiPolicy.yaml and fails on any other path
# (pulumi/pulumi sdk/go/common/resource/plugin/analyzer_plugin.go, NewPolicyAnalyzer). The path
# is absolute so it does not depend on the directory pulumi is started from.
policy_pack="${project_root:?policy-pack.sh is sourced after pulumi-env.sh}/policy"
[[ -f "$policy_pack/PulumiPolicy.yaml" ]] ||
  die "the policy pack is missing: expected $policy_pack/PulumiPolicy.yaml (docs/policy-pack.md); every update and preview runs it, so restore policy/ (git checkout -- policy) before running pulumi"
