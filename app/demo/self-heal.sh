#!/bin/sh
# Self-healing demo, on a web host: starts a failure the remediation agent knows how to fix,
# then follows the loop (alert -> Grafana's signed webhook -> agent -> its audit line -> fixed)
# until it is fixed or the deadline passes, printing what happens and what to watch.
#   sudo app/demo/self-heal.sh hang [--timeout SECONDS]
#       the app stops answering (demo/hang.sh); AppNotAnswering -> restart-app
#   sudo app/demo/self-heal.sh disk [--threshold PCT] [--timeout SECONDS]
#       /var/tmp's filesystem (the root disk) goes just above PCT (the stack's
#       rootDiskCriticalPercent, default 65) with demo/disk-fill.sh; RootDiskAlmostFull -> free-disk
# root (sudo): it reads the journal and writes /run/titan. On a deadline, an error or Ctrl-C it
# undoes its own condition (removes the hang flag, stops the fill) and says so.
set -eu

demo_dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
app_url=${TITAN_APP_URL:-http://127.0.0.1:5000}
run_dir=${TITAN_RUN_DIR:-/run/titan}
poll=${SELF_HEAL_POLL_SECONDS:-5}
agent_unit=titan-remediation.service
app_unit=titan.service
fill_path=/var/tmp
timeout=600
threshold=65

usage() {
    echo "usage: $0 hang|disk [--timeout SECONDS 1..3600 (600)] [--threshold PCT 1..88 (65), disk only]" >&2
    exit 2
}
in_range() { # value lo hi: a decimal integer in [lo, hi]
    case $1 in '' | *[!0-9]*) return 1 ;; esac
    [ "${#1}" -le 6 ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

[ $# -ge 1 ] || usage
mode=$1
shift
case $mode in hang | disk) ;; *) usage ;; esac
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case $1 in
        --timeout) timeout=$2 ;;
        --threshold) [ "$mode" = disk ] || usage; threshold=$2 ;;
        *) usage ;;
    esac
    shift 2
done
in_range "$timeout" 1 3600 || { echo "self-heal: --timeout $timeout: expected 1 to 3600 seconds" >&2; exit 2; }
# The fill goes 2 points above the threshold and disk-fill.sh never goes above 90%.
in_range "$threshold" 1 88 || { echo "self-heal: --threshold $threshold: expected a whole percentage from 1 to 88" >&2; exit 2; }
for tool in curl journalctl systemctl; do
    command -v "$tool" >/dev/null || { echo "self-heal: $tool is not installed (run this on a web host)" >&2; exit 1; }
done

start=$(date +%s)
deadline=$((start + timeout))
since=$(date '+%Y-%m-%d %H:%M:%S')
say() { echo "self-heal [$(($(date +%s) - start))s]: $*"; }

answers() { curl -fsS -o /dev/null -m 3 "$app_url/health" 2>/dev/null; }

# Root filesystem use as node_exporter and the alert count it: 1 - avail/size (reserved blocks are used).
used_pct() { df -k --output=size,avail "$fill_path" | awk 'NR == 2 { printf "%.1f", 100 * (1 - $2 / $1) }'; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# The agent's decisions about $action since the demo started: one JSON line each ("event":"remediation").
seen=0
decisions() {
    journalctl -u "$agent_unit" --since "$since" -o cat --no-pager 2>/dev/null |
        grep '"event" *: *"remediation"' | grep "\"action\" *: *\"$action\"" || :
}
field() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p"; }
# Prints the decisions not printed yet; sets $last to the newest one's decision.
follow_agent() {
    lines=$(decisions)
    [ -n "$lines" ] || return 0
    total=$(printf '%s\n' "$lines" | wc -l)
    [ "$total" -gt "$seen" ] || return 0
    printf '%s\n' "$lines" | tail -n "$((total - seen))" | while IFS= read -r line; do
        say "agent: $(printf '%s' "$line" | field decision) $action for $(printf '%s' "$line" | field alertname):" \
            "$(printf '%s' "$line" | field reason)"
    done
    seen=$total
    last=$(printf '%s\n' "$lines" | tail -n 1 | field decision)
}

fill_pid=""
fill_log=""
cleanup() {
    status=$?
    trap - EXIT INT TERM HUP
    if [ "$mode" = hang ] && [ -e "$run_dir/hang" ]; then
        "$demo_dir/hang.sh" --clear >/dev/null
        say "removed the hang flag myself: the app answers again without the agent"
    fi
    if [ -n "$fill_pid" ] && kill -0 "$fill_pid" 2>/dev/null && ! grep -q '^disk-fill: removed' "$fill_log"; then
        kill -TERM "$fill_pid" 2>/dev/null || :
        wait "$fill_pid" 2>/dev/null || :
        say "stopped the disk fill myself (it removes its file)"
    fi
    [ -z "$fill_log" ] || rm -f -- "$fill_log"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

give_up() { # why
    say "$1"
    say "no fix within the demo; see docs/self-healing.md (journalctl -u $agent_unit, mode on/dry-run/off)"
    exit 1
}
# Stops early on a decision that means nothing will be fixed; `duplicate` (a resent
# notification) and `acted` are followed further.
check_last() {
    case ${last:-} in
        failed | refused | rate_limited | dry_run | disabled) give_up "the agent decided '$last': it will not fix this one" ;;
    esac
}

# One line every 30 s while nothing else is said, so a quiet wait still shows it is alive.
noted=$(date +%s)
note() { # what is awaited
    [ "$(date +%s)" -ge "$((noted + 30))" ] || return 0
    noted=$(date +%s)
    say "still waiting: $1 (deadline in $((deadline - noted)) s)"
}

watch_hint() { # alertname
    say "watch in Grafana: Alerting > Alert rules > $1 (Pending, then Firing) and the Application dashboard's remediation panel;"
    say "Slack (if the stack has slackWebhookUrl) gets a FIRING message for $1, then a RESOLVED one. Waiting at most $timeout s."
}

last=""
if [ "$mode" = hang ]; then
    action=restart-app
    answers || { echo "self-heal: the app does not answer at $app_url/health before the demo: fix that first" >&2; exit 1; }
    before=$(systemctl show -p MainPID --value "$app_unit")
    "$demo_dir/hang.sh"
    watch_hint AppNotAnswering
    down_said=""
    while :; do
        [ "$(date +%s)" -lt "$deadline" ] || give_up "deadline: the app still does not answer after $timeout s"
        follow_agent
        check_last
        if answers; then
            if [ "$last" = acted ] && [ ! -e "$run_dir/hang" ]; then
                after=$(systemctl show -p MainPID --value "$app_unit")
                say "fixed: the agent restarted $app_unit (main PID $before -> $after) and the app answers again"
                say "Grafana resolves AppNotAnswering once Prometheus scrapes the app again; Slack then gets RESOLVED."
                exit 0
            fi
        elif [ -z "$down_said" ]; then
            say "app: not answering at $app_url/health (alive, every request waits); Prometheus' scrape fails too"
            down_said=1
        fi
        note "the app is down; AppNotAnswering fires after 1 minute of failed scrapes, then the agent acts"
        sleep "$poll"
    done
fi

action=free-disk
now=$(used_pct)
below "$now" "$threshold" || { echo "self-heal: $fill_path's filesystem is already ${now}% used, not below the ${threshold}% threshold" >&2; exit 1; }
target=$((threshold + 2))
hold=$((timeout + 120))
[ "$hold" -le 3600 ] || hold=3600
fill_log=$(mktemp)
"$demo_dir/disk-fill.sh" --path "$fill_path" --target-pct "$target" --hold "$hold" >"$fill_log" 2>&1 &
fill_pid=$!
say "disk: ${now}% used; filling $fill_path's filesystem to ${target}% (threshold ${threshold}%) for up to $hold s (pid $fill_pid)"
while ! grep -q '^disk-fill: now' "$fill_log"; do
    if ! kill -0 "$fill_pid" 2>/dev/null || grep -q '^disk-fill: removed' "$fill_log"; then
        cat "$fill_log" >&2
        fill_pid=""
        give_up "the disk fill did not start"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || give_up "deadline: the disk fill did not finish allocating"
    sleep 1
done
say "$(grep '^disk-fill: now' "$fill_log")"
watch_hint RootDiskAlmostFull
while :; do
    [ "$(date +%s)" -lt "$deadline" ] || give_up "deadline: the disk is still $(used_pct)% used after $timeout s"
    follow_agent
    check_last
    now=$(used_pct)
    if [ "$last" = acted ] && below "$now" "$threshold"; then
        grep -q '^disk-fill: removed' "$fill_log" && fill_pid=""
        say "fixed: the agent ran free-disk; the disk is back to ${now}% used (threshold ${threshold}%)"
        say "Grafana resolves RootDiskAlmostFull at its next evaluations; Slack then gets RESOLVED."
        exit 0
    fi
    note "the disk is ${now}% used; RootDiskAlmostFull fires after 1 minute above ${threshold}%, then the agent acts"
    sleep "$poll"
done
