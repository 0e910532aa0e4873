#!/bin/sh
# Load-burst demo (latency and saturation alerts): CONCURRENCY curl loops hit
# URL+PATH for DURATION seconds, then stop and print the status-code counts.
# Ctrl-C or SIGTERM stops every loop and its curl at once.
#   app/demo/load-burst.sh [-u URL] [-p PATH] [-d SECONDS] [-c CONCURRENCY]
set -eu

url=http://127.0.0.1:5000
path=/process
duration=60
concurrency=8

usage() {
    echo "usage: $0 [-u URL (http://127.0.0.1:5000)] [-p PATH (/process)] [-d SECONDS 1..600 (60)] [-c CONCURRENCY 1..64 (8)]" >&2
    exit 2
}
in_range() { # value lo hi: a decimal integer in [lo, hi]
    case $1 in '' | *[!0-9]*) return 1 ;; esac
    [ "${#1}" -le 6 ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

while getopts u:p:d:c:h opt; do
    case $opt in
        u) url=$OPTARG ;;
        p) path=$OPTARG ;;
        d) duration=$OPTARG ;;
        c) concurrency=$OPTARG ;;
        *) usage ;;
    esac
done
in_range "$duration" 1 600 || { echo "load-burst: -d $duration: expected 1 to 600 seconds" >&2; exit 2; }
in_range "$concurrency" 1 64 || { echo "load-burst: -c $concurrency: expected 1 to 64 loops" >&2; exit 2; }
case $url in http://?* | https://?*) ;; *) echo "load-burst: -u $url: expected an http(s):// URL" >&2; exit 2 ;; esac
case $path in /*) ;; *) echo "load-burst: -p $path: expected a path starting with /" >&2; exit 2 ;; esac
command -v curl >/dev/null || { echo "load-burst: curl is not installed" >&2; exit 1; }

codes=$(mktemp)
cleanup() {
    trap - EXIT INT TERM HUP
    # Every child, found by parent pid, signalled until none is left alive (zombies aside):
    # a signal can arrive between `cmd &` and the recording of $!, or between a child's fork
    # and its exec, where the shell's inherited handler takes it and the child lives on;
    # wait would then block on a child nobody stopped.
    while pkill -TERM -r R,S,D,T,t -P $$ 2>/dev/null; do sleep 0.1; done
    wait 2>/dev/null || :
    echo "load-burst: responses by status code (000: no response):"
    sort "$codes" | uniq -c
    rm -f -- "$codes"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

end=$(($(date +%s) + duration))
echo "load-burst: $concurrency loops on $url$path for $duration s"
i=0
while [ "$i" -lt "$concurrency" ]; do
    (
        # Each loop kills its own in-flight curl when told to stop.
        current=""
        trap '[ -z "$current" ] || kill "$current" 2>/dev/null; exit 0' TERM
        while [ "$(date +%s)" -lt "$end" ]; do
            curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 "$url$path" >>"$codes" &
            current=$!
            wait "$current" || :
            current=""
        done
    ) &
    i=$((i + 1))
done
wait
