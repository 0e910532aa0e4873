"""The two allowed actions, through one injectable command runner and clock.

The agent runs unprivileged; the polkit rule on the host grants its user
exactly `restart` of titan.service and `start` of titan-free-disk.service.
--no-ask-password makes systemctl fail instead of waiting for an agent that
does not exist when polkit says no.
"""
import dataclasses
import os
import subprocess
import time as _time
import urllib.error
import urllib.request

from remediation import config as C


@dataclasses.dataclass(frozen=True)
class Result:
    returncode: int  # -1 when the command did not finish (timeout, not found)
    stdout: str
    stderr: str


class SubprocessRunner:
    """Runs argv directly (no shell) with a timeout."""

    def run(self, argv, timeout):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return Result(-1, "", f"timed out after {timeout:g} s")
        except OSError as exc:
            return Result(-1, "", f"cannot run {argv[0]}: {exc.strerror}")
        return Result(done.returncode, done.stdout, done.stderr)


class SystemClock:
    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)
    sleep = staticmethod(_time.sleep)


def http_status(url, timeout):
    """The HTTP status of GET url, or None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def root_available_bytes(statvfs=os.statvfs):
    """Bytes available to unprivileged users on / (node_exporter's avail_bytes)."""
    st = statvfs("/")
    return st.f_bavail * st.f_frsize


def _tail(text, limit=300):
    text = " ".join(text.split())
    return text if len(text) <= limit else "..." + text[-limit:]


class Actions:
    def __init__(self, cfg, runner=None, clock=None, http_get=http_status, statvfs=os.statvfs):
        self.cfg = cfg
        self.runner = runner or SubprocessRunner()
        self.clock = clock or SystemClock()
        self.http_get = http_get
        self.statvfs = statvfs

    def _systemctl(self, *args):
        return self.runner.run(["systemctl", "--no-ask-password", *args], C.SYSTEMCTL_TIMEOUT_S)

    def _show(self, prop, unit):
        res = self.runner.run(["systemctl", "show", "-p", prop, "--value", unit], C.SYSTEMCTL_TIMEOUT_S)
        return res.stdout.strip() if res.returncode == 0 else None

    def run(self, action):
        """(ok, reason, measured fields)."""
        if action == C.RESTART_APP:
            return self.restart_app()
        if action == C.FREE_DISK:
            return self.free_disk()
        raise ValueError(f"action {action!r} is not on the allow-list")  # the policy checks first

    def restart_app(self):
        old = self._show("MainPID", C.APP_UNIT)
        res = self._systemctl("restart", C.APP_UNIT)
        if res.returncode != 0:
            return False, f"systemctl restart {C.APP_UNIT} exited {res.returncode}: {_tail(res.stderr)}", \
                {"old_pid": old}
        url = self.cfg.app_url + C.HEALTH_PATH
        deadline = self.clock.monotonic() + self.cfg.restart_deadline_s
        new, status = None, None
        while True:
            new = self._show("MainPID", C.APP_UNIT)
            if new and new not in ("0", old):
                status = self.http_get(url, C.HEALTH_TIMEOUT_S)
                if status == 200:
                    return True, f"{C.APP_UNIT} restarted and {url} answers 200", {"old_pid": old, "new_pid": new}
            if self.clock.monotonic() >= deadline:
                break
            self.clock.sleep(C.RESTART_POLL_S)
        why = (f"MainPID is still {new!r} (was {old!r})" if not new or new in ("0", old)
               else f"{url} answered {status if status is not None else 'nothing'}")
        return False, f"{why} {self.cfg.restart_deadline_s:g} s after the restart", {"old_pid": old, "new_pid": new}

    def free_disk(self):
        before = root_available_bytes(self.statvfs)
        res = self._systemctl("start", C.FREE_DISK_UNIT)
        after = root_available_bytes(self.statvfs)
        measured = {"avail_before": before, "avail_after": after, "bytes_freed": after - before}
        if res.returncode != 0:
            result = self._show("Result", C.FREE_DISK_UNIT)
            return False, (f"systemctl start {C.FREE_DISK_UNIT} exited {res.returncode} "
                           f"(unit Result={result}): {_tail(res.stderr)}"), measured
        return True, f"{C.FREE_DISK_UNIT} ran; {after - before} bytes freed on /", measured
