# shellcheck shell=bash
# Sourced by deploy.sh and destroy.sh: a local state backend inside the project and a
# generated secrets passphrase, unless the operator has chosen their own.

project_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state_dir="$project_root/.pulumi-state"

say() { printf 'titan: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

command -v pulumi >/dev/null 2>&1 ||
  die "the Pulumi CLI is not installed (https://www.pulumi.com/docs/iac/download-install/)"

if [[ -z "${PULUMI_BACKEND_URL:-}" ]]; then
  mkdir -p "$state_dir"
  export PULUMI_BACKEND_URL="file://$state_dir"
fi

if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
  passphrase_file="$state_dir/passphrase"
  if [[ ! -s "$passphrase_file" ]]; then
    mkdir -p "$state_dir"
    (umask 077 && head -c 32 /dev/urandom | base64 >"$passphrase_file")
    say "generated the stack's secrets passphrase in $passphrase_file: keep it, the stack's secrets cannot be read without it"
  fi
  export PULUMI_CONFIG_PASSPHRASE_FILE="$passphrase_file"
fi

export STACK="${STACK:-dev}"
cd "$project_root" || die "cannot enter $project_root"
