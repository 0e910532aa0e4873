#!/usr/bin/env bash
# One command from AWS credentials to a running stack: the backend and secrets of the mode
# (scripts/pulumi-env.sh), the stack created if missing, a check that your public IP is inside
# allowedCidrs (set to it on first use in local mode), then `pulumi up` with the policy pack.
# Extra arguments go to `pulumi up` (e.g. --yes). TITAN_OPERATOR_IP=<ip> skips the IP lookup.
set -euo pipefail
# shellcheck source=scripts/pulumi-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pulumi-env.sh"
# shellcheck source=scripts/policy-pack.sh
source "$project_root/scripts/policy-pack.sh"

# `pulumi up` previews first and stops there on a mandatory violation, before any step runs
# (pulumi/pulumi pkg/backend/apply.go PreviewThenPromptThenExecute; a preview only records the
# violation, pkg/resource/deploy/analyze_snapshot.go analyzeResource). Without that preview a
# violating resource fails only when its turn comes, and stack policies run after every step
# (pkg/resource/deploy/deployment_executor.go, AnalyzeResources): half the stack could change.
for arg in "$@"; do
  [[ "$arg" != --skip-preview* && ! "$arg" =~ ^-[yrf]*f[yrf]*$ ]] ||
    die "pulumi up argument '$arg': deploy.sh does not skip the preview, expected no --skip-preview/-f; the policy pack checks every resource in the preview, before anything changes"
done

[[ -d node_modules/@pulumi/pulumi ]] || npm ci --no-audit --no-fund

key_before=$(stack_file_value encryptedkey)
select_stack create
if [[ "$TITAN_MODE" == shared ]]; then
  require_shared_stack_file
  [[ -n "$key_before" ]] ||
    say "created the shared stack $STACK: commit $stack_file now; its secretsprovider and encryptedkey (the stack's data key, encrypted by KMS) are the same for every operator and the pull-request preview needs them"
fi

# SSH from here must be allowed, or the configuration push times out minutes into `pulumi up`.
if [[ -n "${TITAN_OPERATOR_IP:-}" ]]; then
  ip=$TITAN_OPERATOR_IP ip_source=TITAN_OPERATOR_IP
else
  ip_source=https://checkip.amazonaws.com
  ip=$(curl -fsS --max-time 10 "$ip_source" | tr -d '[:space:]') ||
    die "your public IP could not be looked up at $ip_source, and deploy.sh checks it against allowedCidrs before pulumi up; give it yourself: TITAN_OPERATOR_IP=<your-ip> npm run deploy"
fi
cidrs=$(pulumi config get --stack "$STACK" allowedCidrs 2>/dev/null) || cidrs=""
first_cidr=$(node --require ts-node/register/transpile-only tools/operatorAccess.ts \
  --ip "$ip" --ip-source "$ip_source" --allowed-cidrs "$cidrs" --stack "$STACK" --mode "$TITAN_MODE") || exit 1
if [[ -n "$first_cidr" ]]; then
  pulumi config set --stack "$STACK" --path 'allowedCidrs[0]' "$first_cidr"
  say "allowedCidrs was unset: set it to your public IP $first_cidr (SSH, Grafana, Prometheus and the app are open to it alone)"
fi

pulumi up --stack "$STACK" --policy-pack "$policy_pack" "$@"
