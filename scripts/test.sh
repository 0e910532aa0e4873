#!/usr/bin/env bash
# The one test command (`npm test`): installs what is missing, then checks formatting, lint
# and types, runs the Titan app's pytest suite, and ends with every Node test and its summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }

step "dependencies"
scripts/install-deps.sh

# The local fleet (`npm run fleet`) boots Debian 12 hosts with systemd-nspawn: it needs root and
# the tools scripts/debian-packages.txt lists. Where it cannot run, the test command fails here,
# at once, unless TITAN_SKIP_FLEET=1 says to run everything else (and then says so, loudly).
# Fleet test files that boot containers or need root (awsEndpoints: a bridge, a namespace and
# 169.254.169.254); the others in build/tests/fleet run everywhere.
FLEET_BOOT_TESTS=(build/tests/fleet/fleet.test.js build/tests/fleet/checks.test.js build/tests/fleet/provision.test.js
  build/tests/fleet/awsEndpoints.test.js)
fleet_blocker() {
  if [[ "$(id -u)" != 0 ]]; then
    echo "it needs root (systemd-nspawn, loop devices, a bridge) and this is uid $(id -u)"
    return
  fi
  local tool
  for tool in systemd-nspawn debootstrap apt-cacher-ng losetup nsenter ssh; do
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
  echo "Run the test command as root on Debian 12 (as CI does), or run everything else with" >&2
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

step "Pulumi program, templates and scripts (node --test)"
# Most test files spend their time waiting on daemons, timers and child processes, so they run
# three at a time (node's default on 2 cores is one). FLEET_BOOT_TESTS run one at a time among
# themselves (they share the machine's bridge, fleet lock and 169.254.169.254, and each checks
# that it left no titan interface behind), in a second runner beside the first: no other test
# file makes a titan interface or takes the fleet lock, and the longest file of the first runner
# (the e2e pipeline) spends minutes waiting on an alert's pending period. Their report follows.
mapfile -t tests < <(find build/tests -name '*.test.js' | sort)
for boot in "${FLEET_BOOT_TESTS[@]}"; do
  for i in "${!tests[@]}"; do
    if [[ "${tests[$i]}" == "$boot" ]]; then unset 'tests[i]'; fi
  done
done
boot_log=
boot_pid=
if [[ -z "$skip_fleet" ]]; then
  boot_log=$(mktemp /tmp/titan-boot-tests.XXXXXX)
  node --test --test-concurrency=1 "${FLEET_BOOT_TESTS[@]}" >"$boot_log" 2>&1 &
  boot_pid=$!
  # Stopped with this script (its files clean up on SIGTERM): never left booting hosts behind.
  trap 'if [[ -n "$boot_pid" ]]; then kill "$boot_pid" 2>/dev/null || true; fi' EXIT
fi
node_status=0
node --test --test-concurrency=3 "${tests[@]}" || node_status=$?
boot_status=0
if [[ -n "$boot_pid" ]]; then
  wait "$boot_pid" || boot_status=$?
  boot_pid=
fi
if [[ -n "$skip_fleet" ]]; then
  skip_fleet_banner
else
  step "Tests that boot fleet hosts (node --test, one file at a time, run beside the step above)"
  cat "$boot_log"
  rm -f "$boot_log"
fi
if ((node_status != 0 || boot_status != 0)); then
  echo "npm test: node tests failed (exit $node_status), fleet-boot tests (exit $boot_status)" >&2
  exit 1
fi
if [[ -z "$skip_fleet" ]]; then
  step "local fleet (npm run fleet): every host of the plan on Debian 12 under systemd-nspawn"
  node build/tests/fleet/main.js
fi
