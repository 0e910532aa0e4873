"""systemd's watchdog: the gunicorn master pings WATCHDOG=1 only while its loop turns."""
import contextlib
import os
import signal
import socket
import struct
import time

import pytest

from titan.watchdog import STALE_FLOOR_SECONDS, MasterWatchdog, WatchdogError, notify_address, watchdog_seconds

from support import APP_DIR, titan_server, wait_for


def test_watchdog_seconds_follows_sd_watchdog_enabled():
    assert watchdog_seconds({}, 42) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000"}, 42) == 30.0
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 42) == 30.0
    # Another process's watchdog (e.g. inherited from the shell that exec'd us elsewhere).
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "41"}, 42) is None


@pytest.mark.parametrize("env,named", [
    ({"WATCHDOG_USEC": "0"}, "WATCHDOG_USEC='0'"),
    ({"WATCHDOG_USEC": "30s"}, "WATCHDOG_USEC='30s'"),
    ({"WATCHDOG_USEC": "-5"}, "WATCHDOG_USEC='-5'"),
    ({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "me"}, "WATCHDOG_PID='me'"),
])
def test_bad_watchdog_variables_are_named(env, named):
    with pytest.raises(WatchdogError, match=named):
        watchdog_seconds(env, 42)


def test_notify_address_takes_paths_and_abstract_names():
    assert notify_address({}) is None
    assert notify_address({"NOTIFY_SOCKET": "/run/systemd/notify"}) == "/run/systemd/notify"
    assert notify_address({"NOTIFY_SOCKET": "@sd-notify"}) == "\0sd-notify"
    with pytest.raises(WatchdogError, match="NOTIFY_SOCKET='relative'"):
        notify_address({"NOTIFY_SOCKET": "relative"})


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_pings_stop_when_the_heartbeat_goes_stale_and_resume_with_it():
    clock, sent = Clock(), []
    dog = MasterWatchdog(interval=15, stale_after=15, send=sent.append, clock=clock)
    assert dog.tick()
    clock.now += 14
    dog.beat()
    clock.now += 15
    assert dog.tick()  # beat 15 s ago: fresh
    clock.now += 0.5
    assert not dog.tick()  # the loop has not turned for longer than stale_after: silence
    clock.now += 60
    assert not dog.tick()
    dog.beat()
    assert dog.tick()
    assert sent == ["WATCHDOG=1"] * 3


def test_a_failing_socket_is_logged_once_and_retried(caplog):
    calls = []

    def send(message):
        calls.append(message)
        if len(calls) <= 2:
            raise ConnectionRefusedError(111, "Connection refused")

    dog = MasterWatchdog(interval=1, stale_after=5, send=send, clock=Clock())
    assert not dog.tick() and not dog.tick()
    assert dog.tick()
    assert len(calls) == 3
    assert [r.getMessage() for r in caplog.records] == [
        "systemd watchdog: cannot notify systemd: [Errno 111] Connection refused"]


# struct ucred (include/linux/socket.h): pid, uid, gid.
_UCRED = struct.Struct("iII")


class NotifySocket:
    """A datagram socket standing in for systemd's: each message with its sender's pid."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)

    def receive(self, deadline):
        """(pid, text) of the next message, or None once the monotonic deadline has passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        self.sock.settimeout(remaining)
        try:
            data, ancdata, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(_UCRED.size))
        except TimeoutError:
            return None
        pid = next(_UCRED.unpack(d[:_UCRED.size])[0] for level, kind, d in ancdata
                   if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS)
        return pid, data.decode()

    def wait_for(self, wanted, timeout):
        deadline = time.monotonic() + timeout
        seen = []
        while (got := self.receive(deadline)) is not None:
            seen.append(got)
            if wanted in got[1].split("\n"):
                return got
        raise AssertionError(f"no {wanted} within {timeout} s; got {seen}")

    def drain(self):
        self.sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.sock.recv(4096)

    def close(self):
        self.sock.close()


def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(") ", 1)[1][0]


def test_the_master_pings_only_while_it_runs(tmp_path):
    interval = 0.5  # WATCHDOG_USEC / 2
    notify = NotifySocket(tmp_path / "notify")
    try:
        with titan_server(tmp_path, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="1000000") as server:
            master = server.proc.pid  # titan-serve execs gunicorn: the unit's main PID
            # From the master itself, so NotifyAccess=main accepts both.
            assert notify.wait_for("READY=1", 10)[0] == master
            for _ in range(3):
                assert notify.wait_for("WATCHDOG=1", 3 * interval)[0] == master
            try:
                os.kill(master, signal.SIGSTOP)
                wait_for(lambda: state(master) == "T", 10, "the master to stop")
                notify.drain()  # a ping sent just before the stop
                assert notify.receive(time.monotonic() + 3 * interval) is None, "a stopped master kept pinging"
            finally:
                os.kill(master, signal.SIGCONT)
            assert notify.wait_for("WATCHDOG=1", 3 * interval)[0] == master
    finally:
        notify.close()


# Loaded by every Python process the server starts (sitecustomize on PYTHONPATH): while the
# file named by WEDGE_FLAG exists, the master's loop is stuck in murder_workers (called on
# every turn), as in a deadlock; its other threads run on.
WEDGE = """
import os, time
if os.environ.get("WEDGE_FLAG"):
    from gunicorn import arbiter
    murder_workers = arbiter.Arbiter.murder_workers

    def wedged_murder_workers(self):
        while os.path.exists(os.environ["WEDGE_FLAG"]):
            time.sleep(0.05)
        murder_workers(self)

    arbiter.Arbiter.murder_workers = wedged_murder_workers
"""


def test_a_wedged_master_loop_stops_the_pings_though_the_process_runs(tmp_path):
    interval = 0.5
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(WEDGE)
    flag = tmp_path / "wedge"
    notify = NotifySocket(tmp_path / "notify")
    try:
        with titan_server(tmp_path, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="1000000", WEDGE_FLAG=str(flag),
                          PYTHONPATH=f"{hooks}:{APP_DIR}") as server:
            notify.wait_for("WATCHDOG=1", 3 * interval)
            flag.touch()
            # Pings go on until the heartbeat is STALE_FLOOR_SECONDS old, then stop for good.
            deadline = time.monotonic() + STALE_FLOOR_SECONDS + 10
            while True:
                got = notify.receive(time.monotonic() + 3 * interval)
                if got is None:
                    break
                assert time.monotonic() < deadline, "the wedged master kept pinging"
            assert state(server.proc.pid) in "RS"  # alive: only the loop is stuck
            assert notify.receive(time.monotonic() + 3 * interval) is None
            flag.unlink()
            notify.wait_for("WATCHDOG=1", STALE_FLOOR_SECONDS + 3 * interval)
    finally:
        notify.close()


def test_no_watchdog_no_pings(tmp_path):
    notify = NotifySocket(tmp_path / "notify")
    try:
        with titan_server(tmp_path, NOTIFY_SOCKET=notify.path):
            notify.wait_for("READY=1", 10)
            assert notify.receive(time.monotonic() + 2) is None
    finally:
        notify.close()
