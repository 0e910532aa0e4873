"""gunicorn settings for Titan, all taken from the environment (see titan.config).

bin/titan-serve runs gunicorn with this file, locally and under systemd alike.
"""
import os
import sys

from titan.config import ConfigError, load_config
from titan.readiness import READY_FORMAT

try:
    _cfg = load_config(os.environ)
except ConfigError as exc:
    sys.stderr.write(f"titan: invalid configuration: {exc}\n")
    sys.exit(2)

bind = [_cfg.bind_address]
workers = _cfg.workers
# Plain sync workers are the fastest for short requests; threads let a worker
# overlap /process sleeps when TITAN_THREADS > 1.
worker_class = "gthread" if _cfg.threads > 1 else "sync"
threads = _cfg.threads
proc_name = "titan"
# The app writes its own access.log; gunicorn's own messages go to stderr (the journal).
accesslog = None
errorlog = "-"
# A /process request sleeps at most 10 s (TITAN_LATENCY_MAX_MS bound).
timeout = 30
graceful_timeout = 15
# Workers heartbeat by touching a temp file on every request loop; keep it in
# memory rather than on the disk-backed /tmp.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def child_exit(server, worker):
    # Drops the dead worker's live gauge files so that http_requests_in_flight
    # (livesum) does not keep its last value; its counters stay, as they must.
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def when_ready(server):
    # In the master, right after gunicorn's own READY=1 (Arbiter.start): under systemd's
    # WatchdogSec= the master pings WATCHDOG=1 while its loop turns (titan/watchdog.py).
    from titan.watchdog import start_master_watchdog

    start_master_watchdog(server)


def post_worker_init(worker):
    # One line per worker that serves (not gunicorn's "Booting worker", logged before
    # the app is even imported): the journal shows when each is ready, and the tests
    # wait for all of them.
    worker.log.info(READY_FORMAT, worker.pid)
