import os
import re
import shutil
import signal
import subprocess

import pytest

from support import APP_DIR, StubServer, adopting_orphans, stop_process, wait_for

DEMO = os.path.join(APP_DIR, "demo")


def shell_scripts():
    """Every file in app/ that is a shell script, by extension or shebang."""
    found = []
    for root, _, files in os.walk(APP_DIR):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                first = f.readline()
            if name.endswith(".sh") or re.match(rb"#!\s*/(usr/)?bin/(env\s+)?(ba|da)?sh\b", first):
                found.append(path)
    return sorted(found)


def test_every_shell_script_passes_shellcheck():
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (Debian package shellcheck)"
    scripts = shell_scripts()
    names = {os.path.relpath(p, APP_DIR) for p in scripts}
    assert {"bin/titan-serve", "demo/load-burst.sh", "demo/cpu-stress.sh", "demo/disk-fill.sh"} <= names
    result = subprocess.run([shellcheck, "--severity=style", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_cpu_stress_runs_for_its_duration_then_kills_its_workers():
    result = subprocess.run([os.path.join(DEMO, "cpu-stress.sh"), "-d", "1", "-w", "2"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    pids = [int(p) for p in re.search(r"\(pids ([\d ]+)\)", result.stdout).group(1).split()]
    assert len(pids) == 2
    assert not any(alive(p) for p in pids)
    assert result.stdout.rstrip().endswith("cpu-stress: stopped")


def test_cpu_stress_cleans_up_on_sigterm(tmp_path):
    out = open(tmp_path / "out", "w+")
    proc = subprocess.Popen([os.path.join(DEMO, "cpu-stress.sh"), "-d", "600", "-w", "2"],
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        text = wait_for(lambda: out.seek(0) == 0 and re.search(r"\(pids ([\d ]+)\)", out.read()), 20, "workers")
        pids = [int(p) for p in text.group(1).split()]
        assert all(alive(p) for p in pids)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 143
        wait_for(lambda: not any(alive(p) for p in pids), 10, "the busy loops to die")
    finally:
        stop_process(proc)


def test_cpu_stress_stops_on_sigterm_at_any_moment():
    # SIGTERM right after the pids line lands, now and then, between `sleep &` and the
    # recording of its pid: the cleanup must still find that child (before, wait hung on it
    # in about one round in ten).
    for _ in range(30):
        proc = subprocess.Popen([os.path.join(DEMO, "cpu-stress.sh"), "-d", "600", "-w", "1"],
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            assert "busy loops" in proc.stdout.readline()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 143
        finally:
            stop_process(proc)
            proc.stdout.close()


@pytest.mark.parametrize("script,args", [
    ("cpu-stress.sh", ["-d", "0"]), ("cpu-stress.sh", ["-d", "1801"]), ("cpu-stress.sh", ["-w", "999"]),
    ("cpu-stress.sh", ["-w", "two"]), ("cpu-stress.sh", ["-x"]), ("load-burst.sh", ["-d", "601"]),
    ("load-burst.sh", ["-c", "0"]), ("load-burst.sh", ["-c", "65"]), ("load-burst.sh", ["-u", "ftp://x"]),
    ("load-burst.sh", ["-p", "no-slash"]), ("load-burst.sh", ["-d", "99999999999999999999"]),
])
def test_demo_scripts_refuse_absurd_parameters(script, args):
    result = subprocess.run([os.path.join(DEMO, script), *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip()


def test_load_burst_hits_the_app_for_its_duration():
    with StubServer() as stub:
        result = subprocess.run([os.path.join(DEMO, "load-burst.sh"), "-u", f"http://127.0.0.1:{stub.port}",
                                 "-p", "/health", "-d", "2", "-c", "2"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert len(stub.requests) > 0
        assert set(stub.requests) == {("GET", "/health")}
        counted = int(re.search(r"(\d+) 200", result.stdout).group(1))
        assert counted == len(stub.requests)


def test_load_burst_stops_everything_on_sigterm():
    with StubServer() as stub, adopting_orphans() as leftovers:
        proc = subprocess.Popen([os.path.join(DEMO, "load-burst.sh"), "-u", f"http://127.0.0.1:{stub.port}",
                                 "-d", "600", "-c", "4"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            wait_for(lambda: len(stub.requests) >= 10, 20, "the burst to start")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 143
            # Whatever it leaves running (a loop, a curl; in its process group or not) is now
            # our child, and nothing else can send requests. A curl killed by its loop's trap
            # may outlive the script by a moment; none may stay.
            wait_for(lambda: not leftovers(), 10, "every process the burst started to exit")
        finally:
            stop_process(proc)
