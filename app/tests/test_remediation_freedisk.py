"""The root free-disk worker against a temporary fill directory: it stops the
processes holding the demo's files, removes those files and nothing else, and
forces a rotation of the app's logs."""
import gzip
import json
import os
import subprocess
import textwrap
import threading
import types

from support import APP_DIR, PYTHON, child_env, stop_process
from remediation import freedisk
from remediation.freedisk import FILL_PREFIX
from titan import diskfill

HOLDER = textwrap.dedent("""
    import os, signal, sys
    path, on_term = sys.argv[1], sys.argv[2]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"x" * 65536)
    def term(*_):
        os.unlink(path)  # what titan/diskfill.py does on SIGTERM
        os._exit(0)
    signal.signal(signal.SIGTERM, term if on_term == "exit" else signal.SIG_IGN)
    print("ready", flush=True)
    while True:
        signal.pause()
""")


def start_holder(path, on_term="exit"):
    proc = subprocess.Popen([PYTHON, "-c", HOLDER, str(path), on_term], stdout=subprocess.PIPE, text=True,
                            env=child_env(), start_new_session=True)
    assert proc.stdout.readline() == "ready\n"
    return proc


def fake_logrotate(tmp_path, rc=0):
    script = tmp_path / "logrotate"
    record = tmp_path / "logrotate.args"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\n"
                      f"[ {rc} -eq 0 ] || echo 'error: simulated failure' >&2\nexit {rc}\n")
    script.chmod(0o755)
    return script, record


def layout(tmp_path, policy_dir=None):
    fill, logs, state = tmp_path / "fill", tmp_path / "logs", tmp_path / "state"
    for d in (fill, logs, state):
        d.mkdir()
    policy = tmp_path / "titan.logrotate"
    policy.write_text(f"{policy_dir or logs}/*.log {{\n    compress\n}}\n")
    return fill, logs, state, policy


def run_worker(fill, logs, state, policy, logrotate, *extra):
    done = subprocess.run([PYTHON, "-m", "remediation.freedisk", "--fill-dir", str(fill), "--log-dir", str(logs),
                           "--state-dir", str(state), "--logrotate-config", str(policy),
                           "--logrotate", str(logrotate), *extra],
                          capture_output=True, text=True, env=child_env(), timeout=60, cwd=APP_DIR)
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done
    return done.returncode, json.loads(lines[0])


def test_prefix_is_the_one_the_disk_fill_demo_writes(tmp_path):
    # titan/diskfill.py builds its file name inline; create a real (tiny) fill
    # with a pretend 1000-byte disk and look at the name it used.
    disk = types.SimpleNamespace(f_blocks=1000, f_bavail=1000, f_frsize=1)
    seen = []

    def say(msg):
        if "holding" in msg:
            seen.extend(os.listdir(tmp_path))

    stop = threading.Event()
    stop.set()
    diskfill.fill(str(tmp_path), 1.0, 1.0, stop, statvfs=lambda _: disk, say=say)
    assert len(seen) == 1 and seen[0] == f"{FILL_PREFIX}{os.getpid()}"


def test_stops_holders_removes_fill_files_and_nothing_else(tmp_path):
    fill, logs, state, policy = layout(tmp_path)
    logrotate, record = fake_logrotate(tmp_path)
    held = fill / f"{FILL_PREFIX}111"
    holder = start_holder(held)
    try:
        leftover = fill / f"{FILL_PREFIX}222"
        leftover.write_bytes(b"y" * 8192)
        keep = fill / "keep.txt"
        keep.write_text("not the demo's")
        near = fill / ".titan-disk-fil-333"  # one letter short of the prefix
        near.write_text("not the demo's")
        outside = tmp_path / "outside.txt"
        outside.write_text("must survive")
        link = fill / f"{FILL_PREFIX}link"
        link.symlink_to(outside)
        subdir = fill / f"{FILL_PREFIX}dir"
        subdir.mkdir()
        rc, report = run_worker(fill, logs, state, policy, logrotate)
        assert holder.wait(10) == 0  # it got SIGTERM and exited by itself
    finally:
        stop_process(holder)
    assert rc == 0, report
    assert report["processes_signalled"] == [holder.pid]
    assert report["processes_still_holding"] == []
    assert report["files_removed_by_owner"] == [str(held)]
    assert report["files_removed"] == [str(leftover)]
    assert sorted(s["why"] for s in report["skipped"]) == ["not a regular file", "symlink"]
    assert not held.exists() and not leftover.exists()
    assert keep.read_text() == near.read_text() == "not the demo's"
    assert link.is_symlink() and outside.read_text() == "must survive" and subdir.is_dir()
    assert record.read_text().splitlines() == ["--force", "--state", str(state / "logrotate.state"), str(policy)]
    assert report["logrotate"] == {"returncode": 0}
    assert report["ok"] is True


def test_a_holder_that_ignores_sigterm_is_reported_and_the_run_fails(tmp_path):
    fill, logs, state, policy = layout(tmp_path)
    logrotate, _ = fake_logrotate(tmp_path)
    held = fill / f"{FILL_PREFIX}444"
    holder = start_holder(held, on_term="ignore")
    try:
        rc, report = run_worker(fill, logs, state, policy, logrotate, "--wait", "0.5")
        assert holder.poll() is None  # nothing stronger than SIGTERM is ever sent
    finally:
        holder.kill()
        holder.wait(10)
    assert rc == 1
    assert report["processes_still_holding"] == [holder.pid] and report["ok"] is False
    assert report["files_removed"] == [str(held)]  # the name is gone; the space comes back when it exits


def test_a_failing_logrotate_fails_the_run(tmp_path):
    fill, logs, state, policy = layout(tmp_path)
    logrotate, _ = fake_logrotate(tmp_path, rc=1)
    rc, report = run_worker(fill, logs, state, policy, logrotate)
    assert rc == 1
    assert report["logrotate"] == {"returncode": 1, "error": "error: simulated failure"}


def test_a_policy_naming_paths_outside_the_log_dir_is_not_run(tmp_path):
    fill, logs, state, policy = layout(tmp_path, policy_dir=tmp_path / "elsewhere")
    logrotate, record = fake_logrotate(tmp_path)
    rc, report = run_worker(fill, logs, state, policy, logrotate)
    assert rc == 1
    assert "names paths outside" in report["logrotate"]["error"]
    assert not record.exists()


def test_a_missing_directory_is_refused_by_name(tmp_path):
    fill, logs, state, policy = layout(tmp_path)
    rc, report = run_worker(tmp_path / "nope", logs, state, policy, "/bin/false")
    assert rc == 2
    assert report["error"] == f"--fill-dir={str(tmp_path / 'nope')!r}: expected an existing directory"


def test_the_apps_own_policy_is_forced_and_compresses(tmp_path):
    fill, logs, state, _ = layout(tmp_path)
    with open(os.path.join(APP_DIR, "packaging", "titan.logrotate")) as f:
        policy_text = f.read()
    assert "/var/log/titan/*.log" in policy_text
    policy = tmp_path / "titan-tmp.logrotate"
    policy.write_text(policy_text.replace("/var/log/titan/", f"{logs}/"))
    (logs / "access.log").write_text("small, far below the size threshold\n")
    rc, report = run_worker(fill, logs, state, policy, "/usr/sbin/logrotate")
    assert rc == 0, report
    with gzip.open(logs / "access.log.1.gz", "rt") as f:
        assert f.read() == "small, far below the size threshold\n"
    assert (state / "logrotate.state").exists()


def test_holders_are_found_by_inode_not_by_name(tmp_path):
    path = tmp_path / f"{FILL_PREFIX}1"
    holder = start_holder(path, on_term="ignore")
    try:
        original = os.lstat(path)
        assert freedisk.holders([(str(path), original)]) == {holder.pid: [str(path)]}
        os.unlink(path)
        path.write_bytes(b"a namesake nobody holds")
        assert freedisk.holders([(str(path), os.lstat(path))]) == {}
        # The held file, now deleted: still found through its inode.
        assert freedisk.holders([(str(path), original)]) == {holder.pid: [str(path)]}
    finally:
        holder.kill()
        holder.wait(10)
