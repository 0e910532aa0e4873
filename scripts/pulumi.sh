#!/usr/bin/env bash
# `npm run pulumi -- <args>`: any Pulumi command against the stack deploy.sh made, from any
# shell: the same backend and secrets (scripts/pulumi-env.sh: .pulumi-state/ and its generated
# passphrase in local mode, the team's backend with TITAN_BACKEND_URL and TITAN_SECRETS_PROVIDER
# in shared mode) and the same stack, $STACK (default dev). The arguments reach `pulumi`
# unchanged. It creates nothing: no state directory, passphrase or stack that deploy.sh has not
# made (npm run deploy first). Capturing the output (`> file`, `$(...)`, a pipe)? Use
# `npm run --silent pulumi -- …`: npm prints its own "> titan-observability pulumi" banner on
# stdout otherwise.
set -euo pipefail
titan_env_existing=1
# shellcheck source=scripts/pulumi-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pulumi-env.sh"

# Without --create, `stack select` fails on a missing stack ("no stack named '<name>' found",
# pulumi/pulumi pkg/cmd/pulumi/stack/stack_select.go) and otherwise only records the selection,
# so a command without --stack runs on $STACK; an explicit --stack/-s in the arguments wins.
# It reads no secret, so a missing stack is named before a stack file that lacks its keys.
select_stack existing >&2 || die "no stack $STACK on this backend ($PULUMI_BACKEND_URL): deploy it first (npm run deploy)"
# `config refresh` is the repair require_shared_stack_file names: it rebuilds the stack file,
# secrets settings included, from the last deployment without reading a secret (pulumi/pulumi
# pkg/cmd/pulumi/config/config_refresh.go), so it runs without them.
if [[ "$TITAN_MODE" == shared && "${1:-} ${2:-}" != "config refresh" ]]; then
  require_shared_stack_file
fi
exec pulumi "$@"
