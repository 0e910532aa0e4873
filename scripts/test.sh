#!/usr/bin/env bash
# The one test command (`npm test`): installs what is missing, then checks formatting, lint
# and types, runs the Titan app's and the AMP relay's pytest suites, and ends with every Node test and its summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }

# Before anything is installed or built: what every run needs, fleet or not. Not root, the
# end-to-end run (a network namespace), the sandbox proof (daemons started as their own users)
# and the data-volume test (a loop device) fail as surely as the fleet, so TITAN_SKIP_FLEET=1
# cannot help there; and Debian 12's own nodejs is 18, older than package.json's engines.
if [[ "$(id -u)" != 0 ]]; then
  echo "npm test: it needs root, and this is uid $(id -u): the end-to-end run, the sandbox proof and the data-volume test need it, not only the fleet (TITAN_SKIP_FLEET=1 leaves out the fleet alone). Run it as root in a VM or a privileged container (docs/testing.md)." >&2
  exit 1
fi
node_version=$(node -p process.versions.node 2>/dev/null) || node_version=none
if [[ ! "$node_version" =~ ^[0-9]+\. ]] || ((${node_version%%.*} < 20)); then
  echo "npm test: it needs Node.js 20 or newer (package.json engines), and node here is $node_version; Debian 12's nodejs package is 18: install Node 20 (docs/testing.md)." >&2
  exit 1
fi

step "dependencies"
scripts/install-deps.sh

# The local fleet (`npm run fleet`) boots Debian 12 hosts with systemd-nspawn: it needs root and
# the tools scripts/debian-packages.txt lists. Where it cannot run, the test command fails here,
# at once, unless TITAN_SKIP_FLEET=1 says to run everything else (and then says so, loudly).
# Fleet test files that boot containers or need root (awsEndpoints, ampRemoteWrite: a bridge, a
# namespace and 169.254.169.254); the others in build/tests/fleet run everywhere.
FLEET_BOOT_TESTS=(build/tests/fleet/fleet.test.js build/tests/fleet/checks.test.js
  build/tests/fleet/awsEndpoints.test.js build/tests/fleet/ampRemoteWrite.test.js)
fleet_blocker() {
  local tool
  for tool in systemd-nspawn debootstrap apt-cacher-ng losetup nsenter ssh nft; do
    if ! command -v "$tool" >/dev/null; then
      echo "$tool is missing (scripts/install-deps.sh installs scripts/debian-packages.txt)"
      return
    fi
  done
}
skip_fleet_banner() {
  printf '\n%s\n' "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
  printf '!!! FLEET SKIPPED (TITAN_SKIP_FLEET=1): no host was booted, no bootstrap, push,\n' >&2
  printf '%s\n' '!!! unit or fault was checked on Debian 12. Run "npm run fleet" as root for that.' >&2
  printf '%s\n' "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
}
skip_fleet=
if [[ "${TITAN_SKIP_FLEET:-}" == 1 ]]; then
  skip_fleet=1
  skip_fleet_banner
elif blocker=$(fleet_blocker) && [[ -n "$blocker" ]]; then
  echo "npm test: the local fleet cannot run on this machine: $blocker." >&2
  echo "Run it where that works (a VM, or a privileged container; docs/fleet.md), or run everything else with" >&2
  echo "  TITAN_SKIP_FLEET=1 npm test" >&2
  exit 1
fi

step "format (prettier)"
npx --no-install prettier --check --log-level warn .

step "lint (eslint)"
npx --no-install eslint --max-warnings 0 .

step "typecheck and build (tsc)"
rm -rf build
npx --no-install tsc -p .

step "Titan app (pytest on Debian's Python)"
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider app/tests

step "AMP signing relay (pytest on Debian's Python and python3-botocore)"
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider relay/tests

step "Pulumi program, templates and scripts (node --test)"
# Most test files spend their time waiting on daemons, timers and child processes, so they run
# three at a time (node's default on 2 cores is one). Beside them, in the background, run the
# FLEET_BOOT_TESTS (one at a time: they share the machine's bridge, fleet lock and
# 169.254.169.254, and each checks that it left no titan interface behind) and then the fleet
# itself: no other test file makes a titan interface or takes the fleet lock, and both spend
# most of their time waiting on boots, timers and alert pending periods, as the longest Node
# file (the e2e pipeline) does. Their reports follow the Node tests', the fleet's summary last.
mapfile -t tests < <(find build/tests -name '*.test.js' | sort)
for boot in "${FLEET_BOOT_TESTS[@]}"; do
  for i in "${!tests[@]}"; do
    if [[ "${tests[$i]}" == "$boot" ]]; then unset 'tests[i]'; fi
  done
done
fleet_dir=
fleet_pid=
if [[ -z "$skip_fleet" ]]; then
  fleet_dir=$(mktemp -d /tmp/titan-fleet-tests.XXXXXX)
  # Its own session (setsid), so stopping this script stops the whole chain; the fleet and the
  # boot tests remove what they made on SIGTERM.
  # shellcheck disable=SC2016 # the inner script expands its own arguments
  setsid bash -c '
    node --test --test-concurrency=1 "${@:2}" >"$1/boot.log" 2>&1
    echo $? >"$1/boot.status"
    node build/tests/fleet/main.js >"$1/fleet.log" 2>&1
    echo $? >"$1/fleet.status"
  ' fleet-chain "$fleet_dir" "${FLEET_BOOT_TESTS[@]}" &
  fleet_pid=$!
  trap 'if [[ -n "$fleet_pid" ]]; then kill -TERM -- "-$fleet_pid" 2>/dev/null || true; fi' EXIT
fi
node_status=0
node --test --test-concurrency=3 "${tests[@]}" || node_status=$?
if [[ -n "$skip_fleet" ]]; then
  skip_fleet_banner
  ((node_status == 0)) || exit 1
  exit 0
fi
wait "$fleet_pid" || true
fleet_pid=
step "Tests that boot fleet hosts (node --test, one file at a time, run beside the step above)"
cat "$fleet_dir/boot.log"
step "local fleet (npm run fleet): every host of the plan on Debian 12 under systemd-nspawn (run beside the Node tests)"
cat "$fleet_dir/fleet.log"
boot_status=$(cat "$fleet_dir/boot.status" 2>/dev/null || echo missing)
fleet_status=$(cat "$fleet_dir/fleet.status" 2>/dev/null || echo missing)
rm -rf "$fleet_dir"
if [[ "$node_status" != 0 || "$boot_status" != 0 || "$fleet_status" != 0 ]]; then
  echo "npm test: FAILED: node tests exit $node_status, fleet-boot tests exit $boot_status, fleet exit $fleet_status (see above)" >&2
  exit 1
fi
