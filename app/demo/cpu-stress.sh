#!/bin/sh
# CPU-stress demo (CPU alert): WORKERS busy loops for DURATION seconds, then
# every loop is killed; Ctrl-C or SIGTERM kills them at once.
#   app/demo/cpu-stress.sh [-d SECONDS] [-w WORKERS]
set -eu

cores=$(nproc)
duration=120
workers=$cores

usage() {
    echo "usage: $0 [-d SECONDS 1..1800 (120)] [-w WORKERS 1..$((4 * cores)) ($cores)]" >&2
    exit 2
}
in_range() { # value lo hi: a decimal integer in [lo, hi]
    case $1 in '' | *[!0-9]*) return 1 ;; esac
    [ "${#1}" -le 6 ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

while getopts d:w:h opt; do
    case $opt in
        d) duration=$OPTARG ;;
        w) workers=$OPTARG ;;
        *) usage ;;
    esac
done
in_range "$duration" 1 1800 || { echo "cpu-stress: -d $duration: expected 1 to 1800 seconds" >&2; exit 2; }
in_range "$workers" 1 $((4 * cores)) || { echo "cpu-stress: -w $workers: expected 1 to $((4 * cores)) workers" >&2; exit 2; }

pids=""
cleanup() {
    trap - EXIT INT TERM HUP
    # Every child, found by parent pid, signalled until none is left alive (zombies aside):
    # a signal can arrive between `cmd &` and the recording of $!, or between a child's fork
    # and its exec, where the shell's inherited handler takes it and the child lives on;
    # wait would then block on a child nobody stopped.
    while pkill -TERM -r R,S,D,T,t -P $$ 2>/dev/null; do sleep 0.1; done
    wait 2>/dev/null || :
    echo "cpu-stress: stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

i=0
while [ "$i" -lt "$workers" ]; do
    (while :; do :; done) &
    pids="$pids $!"
    i=$((i + 1))
done
echo "cpu-stress: $workers busy loops (pids$pids) for $duration s"
# sleep in the background so that a signal interrupts wait immediately.
sleep "$duration" &
pids="$pids $!"
wait "$!"
