#!/usr/bin/env bash
# Posts the preview's comment (ci-preview.sh's file) on the pull request, or edits the one an
# earlier run of this workflow posted, as pulumi/actions does with edit-pr-comment
# (src/libs/pr.ts): one comment per pull request, always the latest preview.
# Usage: ci-pr-comment.sh <pull-request-number> <comment-file>; needs GITHUB_REPOSITORY and
# GH_TOKEN (the job's token with pull-requests: write).
set -euo pipefail
say() { printf 'titan: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

# The comment's first line: how a later run finds it among the pull request's comments.
marker='<!-- titan-preview -->'
pr=${1:-}
file=${2:-}
[[ "$pr" =~ ^[1-9][0-9]*$ ]] || die "pull request number '$pr': expected a positive integer"
[[ -s "$file" ]] || die "comment file '$file': expected the non-empty file ci-preview.sh writes"
[[ "${GITHUB_REPOSITORY:-}" =~ ^[^/]+/[^/]+$ ]] ||
  die "GITHUB_REPOSITORY='${GITHUB_REPOSITORY:-}': expected owner/name (GitHub Actions sets it)"
command -v gh >/dev/null 2>&1 || die "the GitHub CLI (gh) is not installed: expected it on the runner"

body=$(mktemp)
trap 'rm -f "$body"' EXIT
{
  printf '%s\n' "$marker"
  cat "$file"
} >"$body"

# `-F body=@file` reads the field from the file (cli/cli pkg/cmd/api/api.go, -F/--field).
existing=$(gh api --paginate "repos/$GITHUB_REPOSITORY/issues/$pr/comments" \
  --jq ".[] | select(.body | startswith(\"$marker\")) | .id" | tail -n 1)
if [[ -n "$existing" ]]; then
  gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$existing" -F "body=@$body" >/dev/null
  say "updated the preview comment on pull request #$pr"
else
  gh api --method POST "repos/$GITHUB_REPOSITORY/issues/$pr/comments" -F "body=@$body" >/dev/null
  say "posted the preview comment on pull request #$pr"
fi
