"""Helpers shared by the tests: a strict logfmt parser, ports, servers."""
import contextlib
import ctypes
import http.client
import http.server
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import threading
import time
import typing

from titan.readiness import ready_pids

APP_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_BARE = re.compile(r'[^\s"=\\\x00-\x1f\x7f]+')


def parse_logfmt(line):
    """Parse one logfmt line strictly: key=value pairs separated by one space;
    a value is bare (no space, quote, '=', backslash or control character) or a
    double-quoted string with JSON escapes. Duplicate keys are errors."""
    line = line[:-1] if line.endswith("\n") else line
    fields, i, n = {}, 0, len(line)
    if n == 0:
        raise ValueError("empty line")
    while i < n:
        m = _KEY.match(line, i)
        if not m:
            raise ValueError(f"bad key at {i}: {line!r}")
        key, i = m.group(), m.end()
        if line[i:i + 1] != "=":
            raise ValueError(f"missing '=' after {key!r}: {line!r}")
        i += 1
        if line[i:i + 1] == '"':
            j = i + 1
            while True:
                if j >= n:
                    raise ValueError(f"unterminated quote: {line!r}")
                c = line[j]
                if c == "\\":
                    j += 2
                    continue
                if c == '"':
                    break
                if ord(c) < 0x20:
                    raise ValueError(f"raw control character in quoted value: {line!r}")
                j += 1
            value, i = json.loads(line[i:j + 1]), j + 1
        else:
            m = _BARE.match(line, i)
            if not m:
                raise ValueError(f"empty or invalid bare value for {key!r}: {line!r}")
            value, i = m.group(), m.end()
        if key in fields:
            raise ValueError(f"duplicate key {key!r}: {line!r}")
        fields[key] = value
        if i < n:
            if line[i] != " " or i + 1 == n:
                raise ValueError(f"expected a single space between pairs at {i}: {line!r}")
            i += 1
    return fields


def read_log(path):
    with open(path, encoding="utf-8") as f:
        return [parse_logfmt(line) for line in f]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=10):
    """(status, headers, body bytes) of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def child_env(**overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TITAN_", "PROMETHEUS_"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=APP_DIR)
    env.update(overrides)
    return env


def stop_process(proc):
    """Stop a process started with start_new_session=True, with its group, by pid."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# include/uapi/linux/prctl.h (torvalds/linux): while set, orphaned descendants are
# re-parented to this process instead of to init (Linux 3.4 and later).
PR_SET_CHILD_SUBREAPER = 36


def _children():
    """{pid: state letter} of this process's children (each thread has its own list)."""
    found = {}
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(FileNotFoundError):
            with open(f"/proc/self/task/{tid}/children") as f:
                for pid in f.read().split():
                    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                        with open(f"/proc/{pid}/stat") as stat:
                            found[int(pid)] = stat.read().rsplit(") ", 1)[1][0]
    return found


@contextlib.contextmanager
def adopting_orphans():
    """Make this process a child subreaper while inside. Yields leftovers(): the live
    processes that something started here left behind when it exited (they are now our
    children, whatever process group or session they moved to). On the way out the
    leftovers are killed and every adopted zombie is reaped."""
    libc = ctypes.CDLL(None, use_errno=True)
    before = set(_children())
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER, 1)")

    def leftovers():
        return sorted(pid for pid, state in _children().items() if pid not in before and state != "Z")

    try:
        yield leftovers
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        for pid in leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in set(_children()) - before:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def worker_pids(master_pid):
    """The pids of gunicorn's current workers (the master's children)."""
    with open(f"/proc/{master_pid}/task/{master_pid}/children") as f:
        return {int(p) for p in f.read().split()}


class Server(typing.NamedTuple):
    port: int
    proc: subprocess.Popen
    mp_dir: str
    log: pathlib.Path  # gunicorn's own output (stderr)


def wait_workers_ready(server, count, replacing=()):
    """Wait until the master has exactly `count` workers, none of them in `replacing`,
    and every one has logged that it serves (titan.readiness). Returns their pids.
    A first answer proves only that one worker serves: the others may still be
    importing the app, and a test that needs them all then races their boot."""

    def ready():
        assert server.proc.poll() is None, server.log.read_text()
        workers = worker_pids(server.proc.pid)
        if len(workers) != count or workers & set(replacing):
            return None
        return workers if workers <= ready_pids(server.log.read_text()) else None

    return wait_for(ready, 60, f"{count} gunicorn workers to log that they serve")


@contextlib.contextmanager
def titan_server(tmp_path, **env):
    """Run app/bin/titan-serve on a free loopback port; yields a Server once every
    worker serves. No request is sent: the tests count every request themselves."""
    port = free_port()
    mp_dir = env.pop("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prom"))
    settings = dict(TITAN_BIND="127.0.0.1", TITAN_PORT=str(port), TITAN_WORKERS="2",
                    TITAN_LOG_DIR=str(tmp_path / "log"), TITAN_DATA_DIR=str(tmp_path / "data"),
                    TITAN_FAILURE_RATE="0", TITAN_LATENCY_MIN_MS="0", TITAN_LATENCY_MAX_MS="0",
                    PROMETHEUS_MULTIPROC_DIR=mp_dir)
    settings.update(env)
    log = tmp_path / f"server-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([os.path.join(APP_DIR, "bin", "titan-serve")], env=child_env(**settings),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        server = Server(port, proc, mp_dir, log)
        wait_workers_ready(server, int(settings["TITAN_WORKERS"]))
        yield server
    finally:
        stop_process(proc)


class StubServer:
    """A tiny threaded HTTP server on loopback that counts the requests it gets."""

    def __init__(self, port=0):
        self.requests = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                stub.requests.append((self.command, self.path))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_DELETE = do_PUT = _answer

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
