#!/bin/sh
# Disk-fill demo (disk alert): fills the filesystem of --path (default
# /var/tmp) to --target-pct (default 67, never above 90) for --hold seconds
# (default 300), then removes the file. The logic, its limits and its cleanup
# on signals live in titan/diskfill.py, where they are tested.
#   app/demo/disk-fill.sh [--path DIR] [--target-pct PCT] [--hold SECONDS]
set -eu

app_dir=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
export PYTHONPATH="$app_dir${PYTHONPATH:+:$PYTHONPATH}"
# No __pycache__ inside the (possibly read-only) application tree.
export PYTHONDONTWRITEBYTECODE=1
exec "${TITAN_PYTHON:-/usr/bin/python3}" -m titan.diskfill "$@"
