"""Steady background traffic for Titan: a weighted mix over every endpoint.

Run as `python3 -m titan.traffic` (standard library only). Requests are
dispatched on a jittered schedule at a bounded rate by a few worker threads;
when the app is down, connection errors are logged and counted and the
generator backs off exponentially, then resumes once the app answers. SIGTERM
and SIGINT stop it cleanly. Logs are logfmt lines on stderr (the journal).
"""
import argparse
import http.client
import json
import os
import queue
import random
import signal
import sys
import threading
import time
import urllib.parse

from titan.logfmt import format_line

MIN_RATE, MAX_RATE = 0.1, 50.0
MAX_CONCURRENCY = 32
STATS_INTERVAL_S = 60.0
REQUEST_TIMEOUT_S = 5.0
FIRST_BACKOFF_S = 0.5

_JSON = {"Content-Type": "application/json"}
_CURRENCIES = ("EUR", "USD", "GBP", "JPY")


def _valid_transaction(rng):
    body = {"amount": round(rng.uniform(1, 500), 2), "currency": rng.choice(_CURRENCIES),
            "description": rng.choice(("coffee", "train ticket", "books", "groceries"))}
    return "POST", "/api/transactions", json.dumps(body), _JSON


# (weight, request maker). About 8% are bad requests, so the 4xx series and
# error-rate panels always have data.
MIX = (
    (30, lambda rng: ("GET", "/process", None, {})),
    (15, lambda rng: ("GET", "/health", None, {})),
    (5, lambda rng: ("GET", "/", None, {})),
    (10, lambda rng: ("GET", f"/generate_logs?count={rng.randint(1, 20)}", None, {})),
    (12, lambda rng: ("GET", f"/api/transactions?limit={rng.randint(1, 50)}", None, {})),
    (20, _valid_transaction),
    (2, lambda rng: ("POST", "/api/transactions", '{"amount": -5, "currency": "euro"}', _JSON)),
    (1, lambda rng: ("POST", "/api/transactions", '{"amount": 12.5,', _JSON)),
    (2, lambda rng: ("GET", f"/generate_logs?count={rng.choice(('abc', '0', '5000'))}", None, {})),
    (2, lambda rng: ("GET", f"/no-such-page/{rng.randint(1, 10**6)}", None, {})),
    (1, lambda rng: ("DELETE", "/health", None, {})),
)
_WEIGHTS = [w for w, _ in MIX]
_MAKERS = [m for _, m in MIX]


def pick_request(rng):
    """(method, path, body, headers) drawn from the weighted mix."""
    return rng.choices(_MAKERS, _WEIGHTS)[0](rng)


def log(level, msg, **fields):
    sys.stderr.write(format_line(level, msg, fields))
    sys.stderr.flush()


class TrafficGenerator:
    def __init__(self, target, rate, concurrency=4, max_backoff=30.0, rng=None):
        url = urllib.parse.urlsplit(target)
        self._host, self._port = url.hostname, url.port or 80
        self._prefix = url.path.rstrip("/")
        self._rate = rate
        self._max_backoff = max_backoff
        self._rng = rng or random.Random()
        # One slot per worker: when all workers are busy a tick is skipped
        # instead of queueing, so a slow app never causes a catch-up burst.
        self._queue = queue.Queue(maxsize=concurrency)
        self._workers = [threading.Thread(target=self._work, daemon=True) for _ in range(concurrency)]
        self._lock = threading.Lock()
        self._failures = 0
        self._backoff_until = 0.0
        self.stats = {"sent": 0, "ok": 0, "http_4xx": 0, "http_5xx": 0, "connection_errors": 0, "skipped": 0}

    def run(self, stop, duration=0.0):
        """Dispatch until `stop` is set or `duration` seconds (0: forever) have passed."""
        log("info", "traffic started", target=f"http://{self._host}:{self._port}{self._prefix}", rate=self._rate)
        for w in self._workers:
            w.start()
        start = next_at = next_stats = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if duration and now - start >= duration:
                break
            if now >= next_stats + STATS_INTERVAL_S:
                next_stats = now
                self._log_stats()
            with self._lock:
                due = max(next_at, self._backoff_until)
            if now < due:
                stop.wait(min(due - now, 1.0))
                continue
            try:
                self._queue.put_nowait(pick_request(self._rng))
            except queue.Full:
                self._count("skipped")
            # Jitter of +-50% around the mean interval; the schedule never
            # catches up on missed ticks, so the rate stays at or under the bound.
            next_at = max(next_at, now) + self._rng.uniform(0.5, 1.5) / self._rate
        for _ in self._workers:
            self._queue.put(None)
        for w in self._workers:
            w.join(REQUEST_TIMEOUT_S + 1)
        self._log_stats()
        log("info", "traffic stopped")

    def _work(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._send(*item)

    def _send(self, method, path, body, headers):
        self._count("sent")
        conn = http.client.HTTPConnection(self._host, self._port, timeout=REQUEST_TIMEOUT_S)
        try:
            conn.request(method, self._prefix + path, body=body, headers=headers)
            status = conn.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            self._connection_failed(method, path, exc)
            return
        finally:
            conn.close()
        with self._lock:
            self._failures = 0
        self._count("http_5xx" if status >= 500 else "http_4xx" if status >= 400 else "ok")

    def _connection_failed(self, method, path, exc):
        with self._lock:
            self._failures += 1
            self.stats["connection_errors"] += 1
            delay = min(self._max_backoff, FIRST_BACKOFF_S * 2 ** min(self._failures - 1, 16))
            self._backoff_until = time.monotonic() + delay
        log("warning", "request failed", method=method, path=path, error=f"{type(exc).__name__}: {exc}",
            backoff_s=round(delay, 2))

    def _count(self, key):
        with self._lock:
            self.stats[key] += 1

    def _log_stats(self):
        with self._lock:
            snapshot = dict(self.stats)
        log("info", "traffic stats", **snapshot)


def _parse_args(argv, env):
    p = argparse.ArgumentParser(prog="python3 -m titan.traffic", description=__doc__.splitlines()[0])
    p.add_argument("--target", default=env.get("TITAN_TRAFFIC_TARGET", "http://127.0.0.1:5000"),
                   help="base URL of the app (env TITAN_TRAFFIC_TARGET)")
    p.add_argument("--rate", default=env.get("TITAN_TRAFFIC_RATE", "3"),
                   help=f"mean requests per second, {MIN_RATE}..{MAX_RATE} (env TITAN_TRAFFIC_RATE)")
    p.add_argument("--concurrency", default=env.get("TITAN_TRAFFIC_CONCURRENCY", "4"),
                   help=f"requests in flight at most, 1..{MAX_CONCURRENCY} (env TITAN_TRAFFIC_CONCURRENCY)")
    p.add_argument("--max-backoff", default=env.get("TITAN_TRAFFIC_MAX_BACKOFF", "30"),
                   help="longest pause in seconds after connection errors, 0.1..300 (env TITAN_TRAFFIC_MAX_BACKOFF)")
    p.add_argument("--duration", default="0", help="stop after this many seconds, 0..86400 (0: run until SIGTERM)")
    args = p.parse_args(argv)
    url = urllib.parse.urlsplit(args.target)
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"--target/TITAN_TRAFFIC_TARGET={args.target!r}: expected an http:// URL with a host")
    try:
        url.port
    except ValueError:
        raise ValueError(f"--target/TITAN_TRAFFIC_TARGET={args.target!r}: invalid port") from None
    return {
        "target": args.target,
        "rate": _bounded(args.rate, "--rate/TITAN_TRAFFIC_RATE", MIN_RATE, MAX_RATE, float),
        "concurrency": _bounded(args.concurrency, "--concurrency/TITAN_TRAFFIC_CONCURRENCY", 1, MAX_CONCURRENCY, int),
        "max_backoff": _bounded(args.max_backoff, "--max-backoff/TITAN_TRAFFIC_MAX_BACKOFF", 0.1, 300, float),
        "duration": _bounded(args.duration, "--duration", 0, 86400, float),
    }


def _bounded(raw, name, lo, hi, kind):
    try:
        value = kind(raw)
    except ValueError:
        value = None
    # "nan" parses as a float but fails both comparisons.
    if value is None or not lo <= value <= hi:
        raise ValueError(f"{name}={raw!r}: expected {'an integer' if kind is int else 'a number'} from {lo} to {hi}")
    return value


def main(argv=None):
    try:
        opts = _parse_args(argv, os.environ)
    except ValueError as exc:
        print(f"titan.traffic: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    duration = opts.pop("duration")
    TrafficGenerator(**opts).run(stop, duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
