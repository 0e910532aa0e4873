#!/usr/bin/env bash
# Tears the stack down: every host, volume, the Loki bucket with its objects, and the VPC, on
# the same backend and secrets as deploy.sh (local, or shared with TITAN_BACKEND_URL).
# Extra arguments go to `pulumi destroy` (e.g. --yes).
set -euo pipefail
# shellcheck source=scripts/pulumi-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pulumi-env.sh"

[[ "$TITAN_MODE" == local ]] || require_shared_stack_file
pulumi destroy --stack "$STACK" "$@"
