"""The hang demo's flag: while `hang` exists in the runtime directory, every request waits.

The app stays alive (its processes run, the port accepts connections) but answers nothing,
not even /health or /metrics: Prometheus' scrape of job titan fails, up{job="titan"} drops to
0 and AppNotAnswering fires, which the remediation agent answers with restart-app. A restart
clears the flag, because systemd removes RuntimeDirectory=titan (/run/titan) when the unit
stops, restarts included, unless RuntimeDirectoryPreserve= says otherwise (default no;
systemd src/core/service.c service_enter_dead -> unit_destroy_runtime_data in src/core/unit.c).
demo/hang.sh creates it.

A request waits far past gunicorn's worker timeout (30 s), so with sync workers the master
kills each stuck worker and the next one gets stuck in turn: restarting workers does not help,
only restarting the unit does.
"""
import os
import time

HANG_FLAG = "hang"
MAX_HOLD_SECONDS = 600.0
POLL_SECONDS = 0.2


def flag_path(run_dir):
    return os.path.join(run_dir, HANG_FLAG)


def hold_while_flagged(path, max_seconds=MAX_HOLD_SECONDS, clock=time.monotonic, sleep=time.sleep):
    """Wait while path exists, at most max_seconds; the seconds waited."""
    start = clock()
    while os.path.exists(path) and clock() - start < max_seconds:
        sleep(POLL_SECONDS)
    return clock() - start
