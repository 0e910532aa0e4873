"""Prometheus metrics for Titan, correct across gunicorn workers.

prometheus-client picks its storage when it is imported: with
PROMETHEUS_MULTIPROC_DIR set, every worker writes its values to mmap files in
that directory and /metrics merges them. Without it (tests, the Flask
development server) values live in this process and in a registry private to
the app, so several apps in one process do not collide.
"""
import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

from titan.logfmt import LEVELS

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ

# Fast endpoints answer in about a millisecond; /process sleeps for the
# configured 10-300 ms by default; SQLite writes take a few ms. Buckets are
# dense where those land and reach 5 s to show a saturated server.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self):
        self._registry = None if MULTIPROCESS else CollectorRegistry()
        reg = self._registry
        self._requests = Counter(
            "http_requests_total", "HTTP requests served, by route template and status.",
            ["method", "endpoint", "status"], registry=reg)
        self._duration = Histogram(
            "http_request_duration_seconds", "Time spent serving HTTP requests, by route template.",
            ["method", "endpoint"], buckets=DURATION_BUCKETS, registry=reg)
        # livesum: the sum over live workers; a dead worker's share is dropped
        # by mark_process_dead() in gunicorn's child_exit hook.
        self.in_flight = Gauge(
            "http_requests_in_flight", "HTTP requests being served right now.",
            multiprocess_mode="livesum", registry=reg)
        self.process_failures = Counter(
            "titan_process_failures_total", "Simulated failures returned by /process.", registry=reg)
        self.transactions_created = Counter(
            "titan_transactions_created_total", "Transactions stored by POST /api/transactions.", registry=reg)
        log_lines = Counter(
            "titan_log_lines_total", "Lines written to app.log and error.log, by level.", ["level"], registry=reg)
        # Children are resolved once: labels() takes a lock and validates on every call.
        self._log_lines = {level: log_lines.labels(level) for level in LEVELS}
        self._request_children = {}

    def observe_request(self, method, endpoint, status, seconds):
        key = (method, endpoint, status)
        children = self._request_children.get(key)
        if children is None:
            # Label values are bounded by the caller (route templates, known
            # methods), so this cache stays small.
            children = (self._requests.labels(method, endpoint, status),
                        self._duration.labels(method, endpoint))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_log_line(self, level):
        self._log_lines[level].inc()

    def render(self):
        """The exposition text for /metrics."""
        if self._registry is not None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
