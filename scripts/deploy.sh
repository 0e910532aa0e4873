#!/usr/bin/env bash
# One command from AWS credentials to a running stack: local state, the dev stack created if
# missing, allowedCidrs set to your public IP on first use, then `pulumi up`.
# Extra arguments go to `pulumi up` (e.g. --yes).
set -euo pipefail
# shellcheck source=scripts/pulumi-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pulumi-env.sh"

[[ -d node_modules/@pulumi/pulumi ]] || npm ci --no-audit --no-fund

pulumi stack select --create "$STACK"

if ! pulumi config get --stack "$STACK" allowedCidrs >/dev/null 2>&1; then
  ip=$(curl -fsS --max-time 10 https://checkip.amazonaws.com | tr -d '[:space:]') ||
    die "allowedCidrs is unset and your public IP could not be looked up; set it: pulumi config set --path 'allowedCidrs[0]' <your-ip>/32"
  [[ "$ip" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ ]] ||
    die "allowedCidrs is unset and the IP lookup answered '$ip', not an IPv4 address; set allowedCidrs yourself"
  pulumi config set --stack "$STACK" --path 'allowedCidrs[0]' "$ip/32"
  say "allowedCidrs was unset: set it to your public IP $ip/32 (SSH, Grafana, Prometheus and the app are open to it alone)"
fi

pulumi up --stack "$STACK" "$@"
