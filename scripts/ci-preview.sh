#!/usr/bin/env bash
# The pull-request preview (.github/workflows/pull-request.yml), after ci-select-stack.sh:
# `pulumi preview` of the shared stack with the policy pack, its output written as the
# pull-request comment that ci-pr-comment.sh posts. Exits with pulumi's status: a mandatory
# policy violation fails the preview (docs/policy-pack.md), and the comment shows it anyway.
# Usage: ci-preview.sh <comment-file>
set -euo pipefail
[[ $# -eq 1 && -n "$1" ]] ||
  { echo "titan: usage: ci-preview.sh <comment-file>: expected the file to write the pull-request comment to" >&2; exit 2; }
comment=$(realpath -m "$1") # pulumi-env.sh changes directory
# shellcheck source=scripts/pulumi-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pulumi-env.sh"
[[ "$TITAN_MODE" == shared ]] ||
  die "the preview needs the shared backend: set the repository variables TITAN_BACKEND_URL and TITAN_SECRETS_PROVIDER (docs/team-setup.md)"
# shellcheck source=scripts/policy-pack.sh
source "$project_root/scripts/policy-pack.sh"

# GitHub refuses a comment over 65,536 characters; pulumi/actions keeps 64,000 of the output
# (src/libs/pr.ts). Less here, leaving room for the policy summary shown above it.
max_output=56000

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# No --diff: it selects the diff display, which has no "Policies:" summary (pulumi/pulumi
# pkg/cmd/pulumi/operations/preview.go; the summary is pkg/backend/display/progress.go's).
pulumi preview --stack "$STACK" --non-interactive --color never --policy-pack "$policy_pack" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# The "Policies:" block of the summary: the headline, then indented lines up to the next
# headline (pulumi/pulumi pkg/backend/display/progress.go, printPolicies).
policies=$(awk '/^Policies:/ { on = 1; print; next } on && /^[^ \t]/ { on = 0 } on' "$log")
output=$(cat "$log")
trimmed=""
if ((${#output} > max_output)); then
  # The end holds the policies and the resource summary: keep it, drop the start.
  output=${output: -max_output}
  trimmed="(the output was longer than $max_output characters: its start is cut)"
fi

# shellcheck disable=SC2016 # literal backticks: Markdown code
command='`pulumi preview`'
{
  if ((status == 0)); then
    printf '#### %s of %s with the policy pack: passed\n\n' "$command" "$STACK"
  else
    printf '#### %s of %s with the policy pack: **failed** (exit %d)\n\n' "$command" "$STACK" "$status"
    printf 'A mandatory policy violation (listed below) or an error stops the preview; nothing would be deployed.\n\n'
  fi
  if [[ -n "$policies" ]]; then
    printf '~~~~text\n%s\n~~~~\n\n' "$policies"
  fi
  printf '<details>\n<summary>Full preview output</summary>\n\n%s\n~~~~text\n%s\n~~~~\n\n</details>\n' "$trimmed" "$output"
} >"$comment"
exit "$status"
