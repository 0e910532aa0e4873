#!/usr/bin/env bash
# The one test command (`npm test`): installs what is missing, then checks formatting, lint
# and types, runs the Titan app's pytest suite, and ends with every Node test and its summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }

step "dependencies"
scripts/install-deps.sh

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
node --test build/tests/
