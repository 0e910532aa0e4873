#!/bin/sh
# Hang demo (AppNotAnswering -> the remediation agent's restart-app): creates the flag file
# `hang` in Titan's runtime directory. While it exists every request waits, /health and
# /metrics included: the app is alive but answers nothing (titan/hang.py). Restarting
# titan.service clears it (systemd removes /run/titan when the unit stops).
#   sudo app/demo/hang.sh           create the flag
#   sudo app/demo/hang.sh --clear   remove it (when nothing restarted the app)
#   sudo app/demo/hang.sh --master  SIGSTOP the gunicorn master instead: no alert needed,
#                                   systemd's watchdog kills and restarts it after WatchdogSec=
# Root (sudo) or the titan user: /run/titan belongs to titan.
set -eu

run_dir=${TITAN_RUN_DIR:-/run/titan}
unit=titan.service

usage() {
    echo "usage: $0 [--clear | --master]" >&2
    exit 2
}

[ $# -le 1 ] || usage
mode=${1:-flag}
case $mode in
    flag | --clear | --master) ;;
    *) usage ;;
esac

if [ "$mode" = --master ]; then
    pid=$(systemctl show -p MainPID --value "$unit")
    case $pid in
        '' | 0 | *[!0-9]*)
            echo "hang: $unit has no main process (MainPID=${pid:-none}): is it running?" >&2
            exit 1
            ;;
    esac
    watchdog=$(systemctl show -p WatchdogUSec --value "$unit")
    kill -STOP "$pid"
    echo "hang: stopped the gunicorn master (pid $pid) with SIGSTOP; its workers still answer for now."
    echo "hang: systemd's watchdog (WatchdogSec=${watchdog:-unset}) kills and restarts $unit once the master's pings stop;"
    echo "hang: follow it with: journalctl -u $unit -f   (look for 'Watchdog timeout' and a new main PID)"
    exit 0
fi

if [ ! -d "$run_dir" ]; then
    echo "hang: $run_dir is not a directory: is $unit running? (TITAN_RUN_DIR overrides the path)" >&2
    exit 1
fi

flag=$run_dir/hang
if [ "$mode" = --clear ]; then
    rm -f -- "$flag"
    echo "hang: removed $flag; the app answers again."
    exit 0
fi

: >"$flag"
echo "hang: created $flag; every request to the app now waits (the processes stay alive)."
echo "hang: Prometheus' scrape of job titan fails, AppNotAnswering fires after 1 minute, and the"
echo "hang: remediation agent restarts $unit, which removes $flag. To undo by hand: $0 --clear"
