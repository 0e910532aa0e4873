#!/usr/bin/env bash
# Tears the stack down: every host, volume, the Loki bucket with its objects, and the VPC.
# Extra arguments go to `pulumi destroy` (e.g. --yes).
set -euo pipefail
# shellcheck source=scripts/pulumi-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pulumi-env.sh"

pulumi destroy --stack "$STACK" "$@"
