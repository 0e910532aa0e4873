"""demo/self-heal.sh against fakes of what it reads on a web host: the app (curl), the agent's
audit lines (journalctl), the unit's main PID (systemctl), the disk (df) and the disk fill."""
import json
import os
import shutil
import signal
import subprocess
import threading

import pytest

from support import APP_DIR, child_env, wait_for

DEMO = os.path.join(APP_DIR, "demo")

FAKES = {
    # The app answers unless the hang flag exists.
    "curl": '#!/bin/sh\n[ ! -e "$TITAN_RUN_DIR/hang" ] || exit 28\n',
    "journalctl": '#!/bin/sh\necho "$*" >>"$FAKE_DIR/journalctl.args"\ncat "$FAKE_DIR/journal" 2>/dev/null || :\n',
    "systemctl": '#!/bin/sh\n[ "$3" = MainPID ] && cat "$FAKE_DIR/main-pid"\n',
    # df -k --output=size,avail PATH
    "df": '#!/bin/sh\necho "1K-blocks Avail"\ncat "$FAKE_DIR/df"\n',
}

# Stands in for demo/disk-fill.sh: "fills" the fake disk, holds until SIGTERM, then "removes".
FAKE_FILL = """#!/bin/sh
echo "$*" >"$FAKE_DIR/fill.args"
echo $$ >"$FAKE_DIR/fill.pid"
before=$(cat "$FAKE_DIR/df")
echo "1000 330" >"$FAKE_DIR/df"
echo "disk-fill: now 67.0% used; holding for 1 s"
trap 'echo "$before" >"$FAKE_DIR/df"; echo "disk-fill: removed"; exit 0' TERM
while :; do sleep 0.1; done
"""


def audit(decision, action, alertname):
    return json.dumps({"action": action, "alertname": alertname, "decision": decision, "event": "remediation",
                       "fingerprint": "f1", "host": "titan-test-web-1", "reason": f"{decision} for the test"},
                      separators=(",", ":"), sort_keys=True)


class Host:
    """A scratch demo directory (the real self-heal.sh and hang.sh, a fake disk-fill.sh) and fakes on PATH."""

    def __init__(self, tmp_path):
        self.dir = tmp_path / "fake"
        self.run = tmp_path / "run"
        demo = tmp_path / "demo"
        bin_dir = tmp_path / "bin"
        for d in (self.dir, self.run, demo, bin_dir):
            d.mkdir()
        for name in ("self-heal.sh", "hang.sh"):
            shutil.copy(os.path.join(DEMO, name), demo / name)
        (demo / "disk-fill.sh").write_text(FAKE_FILL)
        (demo / "disk-fill.sh").chmod(0o755)
        for name, text in FAKES.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        self.script = str(demo / "self-heal.sh")
        self.env = child_env(PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_DIR=str(self.dir),
                             TITAN_RUN_DIR=str(self.run), SELF_HEAL_POLL_SECONDS="0.1")
        (self.dir / "main-pid").write_text("100\n")
        (self.dir / "df").write_text("1000 500\n")  # 50% used

    def journal(self, *lines):
        with open(self.dir / "journal", "a") as f:
            f.writelines(line + "\n" for line in lines)

    def run_script(self, *args, timeout=60):
        return subprocess.run([self.script, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def agent(self, ready, act):
        """In a thread: once ready() holds, act() as the agent would (bounded)."""
        def go():
            try:
                wait_for(ready, 30, "the demo's condition")
            except AssertionError:
                return
            act()

        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        return thread


def test_hang_is_followed_until_the_agent_restarted_the_app(tmp_path):
    host = Host(tmp_path)
    flag = host.run / "hang"

    def restart():
        host.journal(audit("refused", "free-disk", "RootDiskAlmostFull"),  # another action: not followed
                     audit("acted", "restart-app", "AppNotAnswering"))
        (host.dir / "main-pid").write_text("200\n")
        flag.unlink()  # systemd removes /run/titan on stop

    agent = host.agent(flag.exists, restart)
    result = host.run_script("hang", "--timeout", "30")
    agent.join(5)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "app: not answering" in out
    assert "agent: acted restart-app for AppNotAnswering: acted for the test" in out
    assert "main PID 100 -> 200" in out and "AppNotAnswering" in out
    assert "free-disk" not in out
    assert not flag.exists()
    assert "-u titan-remediation.service" in (host.dir / "journalctl.args").read_text()


def test_hang_stops_early_and_cleans_up_when_the_agent_will_not_act(tmp_path):
    host = Host(tmp_path)
    flag = host.run / "hang"
    host.agent(flag.exists, lambda: host.journal(audit("dry_run", "restart-app", "AppNotAnswering")))
    result = host.run_script("hang", "--timeout", "30")
    assert result.returncode == 1
    assert "the agent decided 'dry_run': it will not fix this one" in result.stdout
    assert "removed the hang flag myself" in result.stdout
    assert not flag.exists()


def test_hang_gives_up_at_the_deadline_and_cleans_up(tmp_path):
    host = Host(tmp_path)
    result = host.run_script("hang", "--timeout", "2")
    assert result.returncode == 1
    assert "deadline: the app still does not answer after 2 s" in result.stdout
    assert not (host.run / "hang").exists()


def test_hang_refuses_to_start_when_the_app_already_does_not_answer(tmp_path):
    host = Host(tmp_path)
    (host.run / "hang").touch()
    result = host.run_script("hang", "--timeout", "5")
    assert result.returncode == 1 and "does not answer" in result.stderr
    assert "hang:" not in result.stdout  # hang.sh never ran


def test_disk_is_followed_until_the_agent_freed_it(tmp_path):
    host = Host(tmp_path)

    def free_disk():
        host.journal(audit("acted", "free-disk", "RootDiskAlmostFull"))
        os.kill(int((host.dir / "fill.pid").read_text()), signal.SIGTERM)  # what the free-disk worker does

    host.agent(lambda: (host.dir / "df").read_text().startswith("1000 330"), free_disk)
    result = host.run_script("disk", "--threshold", "60", "--timeout", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--path /var/tmp --target-pct 62 --hold 150" in (host.dir / "fill.args").read_text()
    assert "filling /var/tmp's filesystem to 62% (threshold 60%)" in result.stdout
    assert "agent: acted free-disk for RootDiskAlmostFull" in result.stdout
    assert "back to 50.0% used" in result.stdout
    assert "stopped the disk fill myself" not in result.stdout


def test_disk_stops_its_fill_at_the_deadline(tmp_path):
    host = Host(tmp_path)
    result = host.run_script("disk", "--timeout", "2")
    assert result.returncode == 1
    assert "deadline: the disk is still 67.0% used after 2 s" in result.stdout
    assert "stopped the disk fill myself" in result.stdout
    wait_for(lambda: (host.dir / "df").read_text() == "1000 500\n", 10, "the fake fill to clean up")


def test_disk_refuses_when_already_above_the_threshold(tmp_path):
    host = Host(tmp_path)
    (host.dir / "df").write_text("1000 300\n")  # 70%
    result = host.run_script("disk")
    assert result.returncode == 1
    assert "already 70.0% used, not below the 65% threshold" in result.stderr
    assert not (host.dir / "fill.args").exists()


@pytest.mark.parametrize("args,message", [
    ([], "usage:"), (["crash"], "usage:"), (["hang", "--threshold", "50"], "usage:"),
    (["hang", "--timeout"], "usage:"), (["hang", "--timeout", "0"], "--timeout 0: expected 1 to 3600 seconds"),
    (["disk", "--timeout", "3601"], "expected 1 to 3600"), (["disk", "--threshold", "89"], "--threshold 89: expected"),
    (["disk", "--threshold", "6x"], "--threshold 6x: expected"), (["disk", "--verbose", "1"], "usage:"),
])
def test_self_heal_refuses_bad_arguments(tmp_path, args, message):
    host = Host(tmp_path)
    result = host.run_script(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (host.run / "hang").exists() and not (host.dir / "fill.args").exists()
