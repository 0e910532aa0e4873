import gzip
import os
import subprocess

from support import APP_DIR, read_log
from titan.logfmt import LogFile, format_line

POLICY = os.path.join(APP_DIR, "packaging", "titan.logrotate")
LOGROTATE = "/usr/sbin/logrotate"


def test_policy_parses_and_is_size_bounded(tmp_path):
    result = subprocess.run([LOGROTATE, "--debug", "-s", str(tmp_path / "state"), POLICY],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "rotating pattern: /var/log/titan/*.log  20971520 bytes (5 rotations)" in result.stderr
    assert "error" not in result.stderr.lower()


def test_real_rotation_with_copytruncate_keeps_appending_writers_correct(tmp_path):
    logs = tmp_path / "titan"
    logs.mkdir(mode=0o755)
    with open(POLICY) as f:
        policy = f.read().replace("/var/log/titan/", f"{logs}/")
    (tmp_path / "titan.logrotate").write_text(policy)
    writer = LogFile(str(logs / "access.log"))
    old = [format_line("info", "before", {"n": i}) for i in range(100)]
    for line in old:
        writer.write(line)
    inode = os.stat(logs / "access.log").st_ino
    result = subprocess.run([LOGROTATE, "-f", "-s", str(tmp_path / "state"), str(tmp_path / "titan.logrotate")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    with gzip.open(logs / "access.log.1.gz", "rt") as f:
        assert f.read() == "".join(old)
    # Same file, truncated; the still-open writer appends from offset 0 (no hole).
    assert os.stat(logs / "access.log").st_ino == inode
    new = format_line("info", "after", {"n": 1})
    writer.write(new)
    writer.close()
    assert os.path.getsize(logs / "access.log") == len(new.encode())
    assert [r["msg"] for r in read_log(logs / "access.log")] == ["after"]
