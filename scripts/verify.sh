#!/usr/bin/env bash
# `npm run verify`: the post-deploy verification again, against the running stack, on the same
# backend and secrets as deploy.sh (local, or shared with TITAN_BACKEND_URL). Each web host logs a
# fresh marker line over SSH and Prometheus, Loki (through Grafana) and Grafana are checked as
# at the end of `pulumi up` (tools/verifyStack.ts). Nothing in the stack changes.
set -euo pipefail
# Only what deploy.sh made: no state directory or passphrase is created for a stack not deployed.
titan_env_existing=1
# shellcheck source=scripts/pulumi-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pulumi-env.sh"

[[ "$TITAN_MODE" == local ]] || require_shared_stack_file
select_stack existing || die "no stack $STACK on this backend: deploy it first (npm run deploy)"
[[ -d node_modules/@pulumi/pulumi ]] || npm ci --no-audit --no-fund

# The outputs hold the Grafana password and possibly the SSH key: a private file, removed on exit.
outputs=$(umask 077 && mktemp)
trap 'rm -f "$outputs"' EXIT
pulumi stack output --stack "$STACK" --json --show-secrets >"$outputs"
node --require ts-node/register/transpile-only tools/verifyStack.ts "$outputs"
