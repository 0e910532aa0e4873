"""The hang demo: while the flag exists the app is alive but answers nothing."""
import os
import signal
import socket
import subprocess

import pytest

from titan.config import ConfigError, load_config
from titan.hang import MAX_HOLD_SECONDS, flag_path, hold_while_flagged

from support import APP_DIR, child_env, read_log, request, stop_process, titan_server, wait_for

HANG = os.path.join(APP_DIR, "demo", "hang.sh")


def test_the_flag_lives_in_the_runtime_directory():
    assert load_config({}).run_dir == "/run/titan"
    assert load_config({"RUNTIME_DIRECTORY": "/run/x"}).run_dir == "/run/x"
    assert load_config({"RUNTIME_DIRECTORY": "/run/x", "TITAN_RUN_DIR": "/tmp/y/"}).run_dir == "/tmp/y"
    assert flag_path("/run/titan") == "/run/titan/hang"
    with pytest.raises(ConfigError, match=r"^TITAN_RUN_DIR='run': expected an absolute directory path"):
        load_config({"TITAN_RUN_DIR": "run"})


def test_holding_stops_when_the_flag_goes_or_at_the_cap(tmp_path):
    flag = tmp_path / "hang"
    slept = []
    assert hold_while_flagged(str(flag), clock=lambda: 0.0, sleep=slept.append) == 0
    assert slept == []  # no flag: no wait
    flag.touch()
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds
        if now[0] >= 3:
            flag.unlink()

    assert 3 <= hold_while_flagged(str(flag), clock=lambda: now[0], sleep=sleep) < 3.5
    flag.touch()
    now[0] = 0.0
    waited = hold_while_flagged(str(flag), clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert MAX_HOLD_SECONDS <= waited < MAX_HOLD_SECONDS + 1  # far past gunicorn's 30 s worker timeout


def test_every_request_waits_while_the_flag_exists(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with titan_server(tmp_path, TITAN_RUN_DIR=str(run)) as server:
        assert request(server.port, "GET", "/health")[0] == 200
        (run / "hang").touch()
        for path in ("/health", "/metrics", "/"):
            with pytest.raises((TimeoutError, socket.timeout)):
                request(server.port, "GET", path, timeout=1.5)
        assert server.proc.poll() is None  # alive, only not answering
        (run / "hang").unlink()
        # The held requests finish and new ones are answered at once.
        wait_for(lambda: request(server.port, "GET", "/health", timeout=5)[0] == 200, 20, "an answer")
        held = [r for r in read_log(tmp_path / "log" / "app.log") if r.get("msg", "").startswith("hang demo")]
        assert held and {r["flag"] for r in held} == {str(run / "hang")}


def run_hang(*args, env=None, **kw):
    return subprocess.run([HANG, *args], capture_output=True, text=True, timeout=30,
                          env=child_env(**(env or {})), **kw)


def test_hang_script_creates_and_clears_the_flag(tmp_path):
    result = run_hang(env={"TITAN_RUN_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "hang").exists()
    assert "AppNotAnswering" in result.stdout
    result = run_hang("--clear", env={"TITAN_RUN_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "hang").exists()


@pytest.mark.parametrize("args", [["--nope"], ["--clear", "--master"], ["hang"]])
def test_hang_script_refuses_unknown_arguments(args, tmp_path):
    result = run_hang(*args, env={"TITAN_RUN_DIR": str(tmp_path)})
    assert result.returncode == 2 and "usage:" in result.stderr
    assert not (tmp_path / "hang").exists()


def test_hang_script_needs_the_runtime_directory(tmp_path):
    result = run_hang(env={"TITAN_RUN_DIR": str(tmp_path / "missing")})
    assert result.returncode == 1
    assert "is not a directory: is titan.service running?" in result.stderr


FAKE_SYSTEMCTL = """#!/bin/sh
# systemctl show -p PROP --value UNIT
case $3 in
  MainPID) echo "$FAKE_MAIN_PID" ;;
  WatchdogUSec) echo 30s ;;
esac
"""


def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(") ", 1)[1][0]


def test_hang_script_master_stops_the_units_main_process(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(FAKE_SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"
    master = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        result = run_hang("--master", env={"PATH": path, "FAKE_MAIN_PID": str(master.pid)})
        assert result.returncode == 0, result.stderr
        wait_for(lambda: state(master.pid) == "T", 10, "the main process to be stopped")
        assert "WatchdogSec=30s" in result.stdout
        result = run_hang("--master", env={"PATH": path, "FAKE_MAIN_PID": "0"})
        assert result.returncode == 1 and "has no main process (MainPID=0)" in result.stderr
    finally:
        os.kill(master.pid, signal.SIGCONT)
        stop_process(master)
