"""The line a gunicorn worker logs once it serves, and how to read it back.

gunicorn.conf.py's post_worker_init writes it; the tests (and an operator reading
the journal) wait for one per worker instead of for the first answer.
"""
import re

# gunicorn calls post_worker_init after the worker has loaded the app, right before
# it marks itself booted and enters its accept loop (Worker.init_process in
# gunicorn/workers/base.py, benoitc/gunicorn 20.1.0 as Debian 12 ships it).
READY_FORMAT = "Worker ready (pid: %d)"

_READY = re.compile(re.escape(READY_FORMAT).replace("%d", r"(\d+)"))


def ready_pids(text):
    """The pids of every worker that logged READY_FORMAT in text."""
    return {int(pid) for pid in _READY.findall(text)}
