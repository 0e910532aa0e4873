import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from types import SimpleNamespace

import pytest

from support import APP_DIR, child_env, stop_process, wait_for
from titan.diskfill import MAX_PCT, Refused, fill, plan_fill, usage

GiB = 1024 ** 3
DISK_FILL = os.path.join(APP_DIR, "demo", "disk-fill.sh")


def test_plan_reaches_the_target():
    assert plan_fill(1000, 100, 67) == 570
    assert plan_fill(1000, 0) == 670  # default target 67%
    assert plan_fill(20 * GiB, 5 * GiB, 67) == -(-20 * GiB * 67 // 100) - 5 * GiB


def test_plan_never_goes_past_the_cap():
    # ceil(3 * 0.9) would be 3 bytes = 100%; the cap keeps it at 2 bytes (66%).
    assert plan_fill(3, 0, 90) == 2
    assert plan_fill(1000, 0, MAX_PCT) == 900


@pytest.mark.parametrize("used", [670, 671, 800, 1000])
def test_refuses_when_already_at_or_above_the_target(used):
    with pytest.raises(Refused, match="at or above the 67"):
        plan_fill(1000, used, 67)


@pytest.mark.parametrize("target", [90.5, 95, 100, 0, -5])
def test_refuses_absurd_targets(target):
    with pytest.raises(Refused, match="outside 0-90"):
        plan_fill(1000, 0, target)


@pytest.mark.parametrize("total,used", [(0, 0), (100, 200), (100, -1)])
def test_refuses_implausible_filesystems(total, used):
    with pytest.raises(Refused, match="implausible"):
        plan_fill(total, used)


def test_usage_counts_reserved_blocks_as_used_like_node_exporter():
    st = SimpleNamespace(f_blocks=1000, f_bfree=300, f_bavail=250, f_frsize=4096)
    assert usage("/", lambda _: st) == (1000 * 4096, 750 * 4096)


class FakeDisk:
    """statvfs for a pretend 10 MiB disk, 10% used, plus whatever is in `directory`."""

    def __init__(self, directory, size=10 * 1024 * 1024, extra_after_fill=0):
        self.directory, self.size, self.extra = directory, size, extra_after_fill

    def __call__(self, path):
        files = sum(os.path.getsize(os.path.join(self.directory, f)) for f in os.listdir(self.directory))
        used = self.size // 10 + files + (self.extra if files else 0)
        return SimpleNamespace(f_blocks=self.size, f_bavail=self.size - used, f_frsize=1)


def test_fill_creates_holds_and_removes_a_real_file(tmp_path):
    seen = {}

    def say(line):
        if "holding" in line:
            seen["files"] = {f: os.path.getsize(tmp_path / f) for f in os.listdir(tmp_path)}

    stop = threading.Event()
    stop.set()  # no waiting during the test
    fill(str(tmp_path), 67, 5, stop, statvfs=FakeDisk(str(tmp_path)), say=say)
    (name, size), = seen["files"].items()
    assert name.startswith(".titan-disk-fill-")
    assert size == 10 * 1024 * 1024 * 57 // 100 + 1  # ceil(67% of 10 MiB) - 10% used
    assert os.listdir(tmp_path) == []


def test_fill_backs_out_if_usage_ends_above_the_cap(tmp_path):
    disk = FakeDisk(str(tmp_path), extra_after_fill=3 * 1024 * 1024)  # someone else writes 30% meanwhile
    with pytest.raises(Refused, match="above the 90.0% cap"):
        fill(str(tmp_path), 67, 5, threading.Event(), statvfs=disk, say=lambda _: None)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args,message", [
    (["--hold", "0"], "--hold=0: expected 1 to 3600"), (["--hold", "100000"], "--hold=100000"),
    (["--target-pct", "95"], "outside 0-90"), (["--path", "/no/such/dir"], "is not a directory"),
])
def test_cli_refuses_bad_parameters(tmp_path, args, message):
    args = args if "--path" in args else ["--path", str(tmp_path), *args]
    result = subprocess.run([DISK_FILL, *args], env=child_env(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert os.listdir(tmp_path) == []


@contextlib.contextmanager
def small_tmpfs():
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a tmpfs")
    mnt = tempfile.mkdtemp(prefix="titan-diskfill-")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt], capture_output=True)
    try:
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
        yield mnt
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", mnt], check=True)
        os.rmdir(mnt)


def test_real_run_on_a_small_tmpfs():
    with small_tmpfs() as mnt:
        before = usage(mnt)
        result = subprocess.run([DISK_FILL, "--path", mnt, "--hold", "1"], env=child_env(),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "now 67.0% used; holding for 1 s" in result.stdout
        assert os.listdir(mnt) == []
        assert usage(mnt) == before
        # A second run refuses once the disk is already past the target.
        with open(os.path.join(mnt, "big"), "wb") as f:
            os.posix_fallocate(f.fileno(), 0, 7 * 1024 * 1024)
        refused = subprocess.run([DISK_FILL, "--path", mnt, "--hold", "1"], env=child_env(),
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "at or above the 67.0% target" in refused.stderr
        assert os.listdir(mnt) == ["big"]


def test_sigterm_during_the_hold_removes_the_file():
    with small_tmpfs() as mnt:
        out = open(os.path.join(tempfile.gettempdir(), f"titan-diskfill-{os.getpid()}.out"), "w+")
        try:
            proc = subprocess.Popen([DISK_FILL, "--path", mnt, "--hold", "600"], env=child_env(),
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                wait_for(lambda: out.seek(0) == 0 and "holding" in out.read(), 30, "the fill to be in place")
                assert len(os.listdir(mnt)) == 1
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(30) == 0
            finally:
                stop_process(proc)
            assert os.listdir(mnt) == []
        finally:
            out.close()
            os.unlink(out.name)
