# shellcheck shell=bash
# Sourced by deploy.sh, destroy.sh, verify.sh, pulumi.sh and ci-select-stack.sh: where the
# stack's state and secrets live, in one of two modes (docs/operations.md "Deploy" and docs/team-setup.md):
#   local  (default) state in .pulumi-state/ (or $PULUMI_BACKEND_URL), secrets under a
#          generated passphrase: the operator's own stack, nothing to configure.
#   shared (TITAN_BACKEND_URL + TITAN_SECRETS_PROVIDER) the team's S3 backend and KMS key, the
#          same the pull-request preview uses; the committed stack file is the team's.
# A caller that only uses what deploy.sh made (pulumi.sh) sets titan_env_existing=1 before
# sourcing: a missing local state directory or passphrase is then an error naming
# `npm run deploy`, never created (a new passphrase cannot read the stack's secrets).

project_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state_dir="$project_root/.pulumi-state"

say() { printf 'titan: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

command -v pulumi >/dev/null 2>&1 ||
  die "the Pulumi CLI is not installed (https://www.pulumi.com/docs/iac/download-install/)"

export STACK="${STACK:-dev}"
cd "$project_root" || die "cannot enter $project_root"
stack_file="Pulumi.$STACK.yaml"

# A top-level `key: value` of the stack file. Pulumi writes its secrets settings there:
# `encryptionsalt` for a passphrase, `secretsprovider` + `encryptedkey` (the data key, encrypted
# by KMS) for a cloud provider (pulumi/pulumi sdk/pkg/secrets/cloud/manager.go, EditProjectStack).
stack_file_value() {
  [[ -f "$stack_file" ]] || return 0
  sed -n "s/^$1:[[:space:]]*//p" "$stack_file" | head -n 1
}

if [[ -n "${TITAN_BACKEND_URL:-}${TITAN_SECRETS_PROVIDER:-}" ]]; then
  TITAN_MODE=shared
  [[ -n "${TITAN_BACKEND_URL:-}" ]] ||
    die "TITAN_SECRETS_PROVIDER is set but TITAN_BACKEND_URL is empty: expected both, the shared backend and its KMS key (docs/team-setup.md)"
  [[ -n "${TITAN_SECRETS_PROVIDER:-}" ]] ||
    die "TITAN_BACKEND_URL is set but TITAN_SECRETS_PROVIDER is empty: expected both, the shared backend and its KMS key (docs/team-setup.md)"
  [[ "$TITAN_BACKEND_URL" =~ ^s3://[^/?]+ ]] ||
    die "TITAN_BACKEND_URL=$TITAN_BACKEND_URL: expected an s3:// URL such as s3://my-team-pulumi-state/titan?region=us-east-1"
  [[ "$TITAN_SECRETS_PROVIDER" =~ ^awskms://[^?]+ ]] ||
    die "TITAN_SECRETS_PROVIDER=$TITAN_SECRETS_PROVIDER: expected an awskms:// key such as awskms://alias/titan-pulumi?region=us-east-1"
  if [[ -n "${PULUMI_BACKEND_URL:-}" && "$PULUMI_BACKEND_URL" != "$TITAN_BACKEND_URL" ]]; then
    die "PULUMI_BACKEND_URL=$PULUMI_BACKEND_URL and TITAN_BACKEND_URL=$TITAN_BACKEND_URL disagree: expected one backend; unset PULUMI_BACKEND_URL"
  fi
  # The CLI takes PULUMI_BACKEND_URL over the project's backend and the stored login
  # (pulumi/pulumi pkg/workspace/creds.go), so `pulumi login` and ~/.pulumi stay untouched.
  export PULUMI_BACKEND_URL="$TITAN_BACKEND_URL"
  [[ -z "$(stack_file_value encryptionsalt)" ]] ||
    die "$stack_file has an encryptionsalt, the mark of a passphrase stack, but the shared stack's secrets are under $TITAN_SECRETS_PROVIDER and its file must be the same for every operator: remove that line and commit $stack_file (if the shared stack itself was created with a passphrase, move it once, with that passphrase and your own Pulumi CLI: PULUMI_BACKEND_URL='$TITAN_BACKEND_URL' pulumi stack change-secrets-provider --stack $STACK '$TITAN_SECRETS_PROVIDER')"
  committed_provider=$(stack_file_value secretsprovider)
  [[ -z "$committed_provider" || "$committed_provider" == "$TITAN_SECRETS_PROVIDER" ]] ||
    die "$stack_file has secretsprovider: $committed_provider but TITAN_SECRETS_PROVIDER=$TITAN_SECRETS_PROVIDER: expected the same key; set TITAN_SECRETS_PROVIDER=$committed_provider"
else
  TITAN_MODE=local
  committed_provider=$(stack_file_value secretsprovider)
  [[ -z "$committed_provider" ]] ||
    die "$stack_file belongs to a shared stack (secretsprovider: $committed_provider): set TITAN_BACKEND_URL and TITAN_SECRETS_PROVIDER=$committed_provider (docs/team-setup.md); a local deploy would build a second copy of it"
  if [[ -z "${PULUMI_BACKEND_URL:-}" ]]; then
    [[ -z "${titan_env_existing:-}" || -d "$state_dir" ]] ||
      die "no local stack state in $state_dir: deploy first (npm run deploy); for the team's shared stack set TITAN_BACKEND_URL and TITAN_SECRETS_PROVIDER (docs/team-setup.md)"
    mkdir -p "$state_dir"
    export PULUMI_BACKEND_URL="file://$state_dir"
  fi
  if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
    passphrase_file="$state_dir/passphrase"
    if [[ ! -s "$passphrase_file" ]]; then
      [[ -z "${titan_env_existing:-}" ]] ||
        die "$passphrase_file is missing or empty: expected the passphrase npm run deploy generates with the stack; deploy first (npm run deploy), or, if this stack was deployed from here and the file is lost, its secrets cannot be read without it"
      mkdir -p "$state_dir"
      (umask 077 && head -c 32 /dev/urandom | base64 >"$passphrase_file")
      say "generated the stack's secrets passphrase in $passphrase_file: keep it, the stack's secrets cannot be read without it"
    fi
    export PULUMI_CONFIG_PASSPHRASE_FILE="$passphrase_file"
  fi
fi
export TITAN_MODE

# `select_stack existing` selects $STACK; `select_stack create` creates it first when the backend
# lacks it (pulumi/pulumi pkg/cmd/pulumi/stack/stack_select.go: --secrets-provider applies to
# that creation only).
select_stack() {
  if [[ "$1" == existing ]]; then
    pulumi stack select "$STACK"
  elif [[ "$TITAN_MODE" == shared ]]; then
    pulumi stack select --create --secrets-provider "$TITAN_SECRETS_PROVIDER" "$STACK"
  else
    pulumi stack select --create "$STACK"
  fi
}

# Without secretsprovider/encryptedkey in the stack file the CLI falls back to a passphrase for
# an existing stack (pulumi/pulumi pkg/cmd/pulumi/stack/secrets.go, GetSecretsManager) and
# fails far from the cause: say what is missing instead. `pulumi config refresh` restores them
# from the deployment (pulumi/pulumi pkg/cmd/pulumi/config/config_refresh.go).
require_shared_stack_file() {
  [[ -n "$(stack_file_value secretsprovider)" && -n "$(stack_file_value encryptedkey)" ]] ||
    die "$stack_file lacks the shared stack's secretsprovider and encryptedkey: pull the $stack_file committed by whoever created the stack, or rebuild it from the last deployment (keeps a .bak): npm run pulumi -- config refresh --stack $STACK"
}
