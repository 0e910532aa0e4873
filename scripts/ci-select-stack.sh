#!/usr/bin/env bash
# The pull-request preview's first step: the backend, secrets provider and stack-file checks of
# deploy.sh (scripts/pulumi-env.sh), in shared mode only. It selects the stack that deploys
# update and never creates one, so the preview diffs against the real thing or fails.
set -euo pipefail
# shellcheck source=scripts/pulumi-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pulumi-env.sh"

[[ "$TITAN_MODE" == shared ]] ||
  die "the preview needs the shared backend: set the repository variables TITAN_BACKEND_URL and TITAN_SECRETS_PROVIDER to the values deploy.sh uses (docs/team-setup.md)"
require_shared_stack_file
select_stack existing ||
  die "no stack $STACK in $TITAN_BACKEND_URL: deploy it once with npm run deploy (shared mode) and commit $stack_file"
