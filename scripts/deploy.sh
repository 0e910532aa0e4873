#!/usr/bin/env bash
# One command from AWS credentials to a running stack: the backend and secrets of the mode
# (scripts/pulumi-env.sh), the stack created if missing (its aws:region pinned from AWS_REGION or
# AWS_DEFAULT_REGION when its file has none), a check that your public IP is inside
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
# The arguments are read as the CLI's flag library reads them (spf13/pflag parseShortArg): in a
# group such as -yf each letter is a flag until one that takes a value, which takes the rest of
# the group (-sf is --stack=f) or, ending it, the next argument. Flags that take a value are
# those of pulumi/pulumi pkg/cmd/pulumi/operations/up.go and pkg/cmd/pulumi/pulumi.go (-r, and
# --refresh, --suppress-permalink and --attach-debugger, have an optional value: NoOptDefVal).
value_shorts=scmtpCv
value_longs=" stack config-file config secrets-provider client message target exclude replace target-replace policy-pack policy-pack-config parallel plan event-log exec-kind exec-agent output cwd tracing otel-traces profiling memprofilerate verbose color tracing-header "
refuse_skip_preview() {
  die "pulumi up argument '$1': deploy.sh does not skip the preview, expected no --skip-preview/-f; the policy pack checks every resource in the preview, before anything changes"
}
value_next=
for arg in "$@"; do
  if [[ -n "$value_next" ]]; then
    value_next=
    continue
  fi
  case "$arg" in
    --) break ;;
    --skip-preview | --skip-preview=*) refuse_skip_preview "$arg" ;;
    --*=*) ;;
    --*) [[ "$value_longs" != *" ${arg#--} "* ]] || value_next=1 ;;
    -?*)
      for ((i = 1; i < ${#arg}; i++)); do
        letter=${arg:i:1}
        [[ "$letter" != f ]] || refuse_skip_preview "$arg"
        [[ "$letter" != "=" ]] || break
        if [[ "$value_shorts" == *"$letter"* ]]; then
          ((i + 1 < ${#arg})) || value_next=1
          break
        fi
      done
      ;;
  esac
done

[[ -d node_modules/@pulumi/pulumi ]] || npm ci --no-audit --no-fund

# A plain `key: value` under the stack file's `config:` (where the CLI keeps a file-backend
# stack's settings), quotes removed; empty when the file or key is missing.
stack_config_value() {
  [[ -f "$stack_file" ]] || return 0
  awk -v key="$1:" '
    /^config:/ { inside = 1; next }
    /^[^ #]/ { inside = 0 }
    inside && $1 == key { sub(/^[ ]+[^ ]+[ ]*/, ""); gsub(/^["'\'']|["'\'']$/, ""); print; exit }
  ' "$stack_file"
}
# The stack's region is pinned in its file before anything is created. The program would fall
# back to AWS_REGION on each run (facts/config.ts), so a stack without aws:region would follow
# whatever shell deploys it next, into another region. A new stack gets the region of this shell;
# without one, nothing is created (not even the stack).
region=$(stack_config_value aws:region)
env_region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
region_source=AWS_REGION
[[ -n "${AWS_REGION:-}" ]] || region_source=AWS_DEFAULT_REGION
[[ -n "$region" || -n "$env_region" ]] ||
  die "aws:region is not set in $stack_file and neither AWS_REGION nor AWS_DEFAULT_REGION is: expected the AWS region to deploy stack $STACK into; run again with it, e.g. AWS_REGION=us-east-1 STACK=$STACK npm run deploy (it is then kept in $stack_file)"

key_before=$(stack_file_value encryptedkey)
select_stack create
if [[ -z "$region" ]]; then
  pulumi config set --stack "$STACK" aws:region "$env_region"
  say "aws:region was unset for stack $STACK: set it to $env_region (from $region_source); the stack stays there"
fi
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
