"""systemd's service watchdog, kept alive by the gunicorn master only while its loop runs.

titan.service sets WatchdogSec=; systemd then hands the main process WATCHDOG_USEC (and
WATCHDOG_PID) and kills and restarts the service when no "WATCHDOG=1" arrives on
NOTIFY_SOCKET for that long. gunicorn 20.1.0 (Debian 12) already sends READY=1 from the
master (Arbiter.start -> gunicorn/systemd.py sd_notify) but never WATCHDOG=1, and it has no
hook that runs on every turn of its loop. So gunicorn.conf.py's when_ready hook calls
start_master_watchdog(): it wraps the arbiter's sleep() so that every turn of the master's
loop records a heartbeat, and a thread pings systemd every WATCHDOG_USEC/2 only while that
heartbeat is fresh. A master that is SIGSTOPped (the thread stops with it) or wedged
somewhere in its loop (the thread runs on, the heartbeat goes stale) stops pinging, and
systemd's WatchdogSec= restarts it.

What this does NOT catch: workers that are wedged while the master lives. gunicorn's worker
`timeout` kills a worker stuck in one request; a wedge that survives worker restarts (the
hang demo's flag) is the remediation agent's restart-app job (AppNotAnswering).

The wire protocol is systemd's sd_notify (man sd_notify; src/libsystemd/sd-daemon/sd-daemon.c,
sd_pid_notify_with_fds and sd_watchdog_enabled): one AF_UNIX datagram of newline-separated
VAR=value assignments to the socket named by $NOTIFY_SOCKET, an absolute path or, when it
starts with '@', an abstract socket name. Debian's python3-systemd would do the same but is not
on the web hosts; this is the dozen lines it would replace.
"""
import logging
import os
import socket
import threading
import time

# gunicorn's arbiter goes round its loop at least once a second when idle: Arbiter.sleep()
# waits in select() with a 1.0 s timeout (gunicorn/arbiter.py, 20.1.0). A heartbeat older
# than two such turns, or than the ping interval if that is longer, means the loop is stuck.
ARBITER_TURN_SECONDS = 1.0
STALE_FLOOR_SECONDS = 2 * ARBITER_TURN_SECONDS

log = logging.getLogger("titan.watchdog")


class WatchdogError(ValueError):
    """systemd's watchdog variables hold something this process cannot use."""


def watchdog_seconds(env, pid):
    """What sd_watchdog_enabled() answers: WatchdogSec= in seconds when the watchdog is meant
    for this pid, None when there is no watchdog (or it is another process's)."""
    raw = env.get("WATCHDOG_USEC")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) <= 0:
        raise WatchdogError(f"WATCHDOG_USEC={raw!r}: expected a positive integer (microseconds)")
    owner = env.get("WATCHDOG_PID")
    if owner is not None:
        if not owner.isascii() or not owner.isdigit():
            raise WatchdogError(f"WATCHDOG_PID={owner!r}: expected a process id")
        if int(owner) != pid:
            return None
    return int(raw) / 1_000_000


def notify_address(env):
    """The socket address of $NOTIFY_SOCKET for sendto(), or None when it is unset."""
    raw = env.get("NOTIFY_SOCKET")
    if not raw:
        return None
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    raise WatchdogError(f"NOTIFY_SOCKET={raw!r}: expected an absolute socket path or an @abstract name")


def notify(address, message):
    """Send one sd_notify datagram (e.g. "WATCHDOG=1") to address."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(message.encode("utf-8"), address)


class MasterWatchdog:
    """Pings every `interval` seconds while the last beat() is at most `stale_after` old."""

    def __init__(self, interval, stale_after, send, clock=time.monotonic):
        self.interval = interval
        self.stale_after = stale_after
        self._send = send
        self._clock = clock
        self._last_beat = clock()
        self._stop = threading.Event()
        self._failing = False

    def beat(self):
        self._last_beat = self._clock()

    def tick(self):
        """One ping if the heartbeat is fresh; True when it was sent."""
        if self._clock() - self._last_beat > self.stale_after:
            return False
        try:
            self._send("WATCHDOG=1")
        except OSError as exc:
            # Logged once per run of failures: systemd will act on the silence anyway.
            if not self._failing:
                log.error("systemd watchdog: cannot notify systemd: %s", exc)
            self._failing = True
            return False
        self._failing = False
        return True

    def run(self):
        self.tick()
        while not self._stop.wait(self.interval):
            self.tick()

    def stop(self):
        self._stop.set()


def start_master_watchdog(arbiter, env=os.environ):
    """From gunicorn's when_ready hook (in the master, right after its READY=1): make every
    turn of the arbiter's loop a heartbeat and start the pinging thread. Returns the
    MasterWatchdog, or None when systemd expects no watchdog pings from this process."""
    seconds = watchdog_seconds(env, os.getpid())
    address = notify_address(env) if seconds is not None else None
    if address is None:
        return None
    # systemd's advice (sd_watchdog_enabled(3)): ping every half of WATCHDOG_USEC.
    interval = seconds / 2
    dog = MasterWatchdog(interval, max(interval, STALE_FLOOR_SECONDS), lambda m: notify(address, m))
    loop_sleep = arbiter.sleep

    def sleep():
        # Arbiter.run calls self.sleep() once per turn; the instance attribute shadows the method.
        loop_sleep()
        dog.beat()

    arbiter.sleep = sleep
    # Started before the first worker is forked; a fork copies only the forking thread, so
    # the workers never ping.
    threading.Thread(target=dog.run, name="systemd-watchdog", daemon=True).start()
    arbiter.log.info("systemd watchdog: WATCHDOG=1 every %.1f s while the master's loop turns (WatchdogSec %.1f s)",
                     interval, seconds)
    return dog
