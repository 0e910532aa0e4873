"""Free-disk worker: `python3 -m remediation.freedisk`, run as root by the
oneshot titan-free-disk.service when the agent starts it.

It frees space only where the app and the disk-fill demo write:
1. the demo's files (FILL_PREFIX, directly in the fill directory, regular files
   only, never through a symlink): every process holding one open gets SIGTERM
   (titan/diskfill.py removes its file on SIGTERM) and a bounded wait; files
   still there are unlinked;
2. the app's logs: `logrotate --force` on the app's own policy with this
   worker's state file, which rotates and compresses them; the policy must
   name only paths inside the log directory.
It prints one JSON line (journal) and exits 1 when something did not work.
"""
import argparse
import json
import os
import signal
import stat
import subprocess
import sys
import time

# The disk-fill demo names its file f".titan-disk-fill-{pid}" (titan/diskfill.py
# fill()); tests/test_remediation_freedisk.py checks the two still agree.
FILL_PREFIX = ".titan-disk-fill-"
DEFAULT_FILL_DIR = "/var/tmp"
DEFAULT_LOG_DIR = "/var/log/titan"
DEFAULT_LOGROTATE_CONFIG = "/etc/logrotate.d/titan"
DEFAULT_LOGROTATE = "/usr/sbin/logrotate"
DEFAULT_STATE_DIR = "/var/lib/titan-free-disk"  # systemd's StateDirectory=titan-free-disk
LOGROTATE_STATE_FILE = "logrotate.state"
TERM_WAIT_S = 10.0
POLL_S = 0.1
LOGROTATE_TIMEOUT_S = 300.0


def available(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill_files(directory):
    """([(path, lstat)] of the demo's regular files, [skipped {path, why}])."""
    found, skipped = [], []
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.name.startswith(FILL_PREFIX):
                continue
            path = os.path.join(directory, entry.name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                skipped.append({"path": path, "why": "symlink"})
            elif not stat.S_ISREG(st.st_mode):
                skipped.append({"path": path, "why": "not a regular file"})
            else:
                found.append((path, st))
    return found, skipped


def holders(files, proc="/proc"):
    """{pid: [paths]} of processes (other than this one) with one of files open."""
    by_path = {path: (st.st_dev, st.st_ino) for path, st in files}
    out = {}
    me = os.getpid()
    for name in os.listdir(proc):
        if not name.isdigit() or int(name) == me:
            continue
        fd_dir = os.path.join(proc, name, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or a kernel thread
            continue
        for fd in fds:
            link = os.path.join(fd_dir, fd)
            try:
                target = os.readlink(link)
                target = target[:-len(" (deleted)")] if target.endswith(" (deleted)") else target
                if target not in by_path:
                    continue
                st = os.stat(link)  # the open file itself: same inode, not a namesake
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == by_path[target]:
                out.setdefault(int(name), []).append(target)
    return out


def stop_holders(files, wait_s, proc="/proc"):
    """SIGTERM every holder, wait for them to let go; (signalled, still holding)."""
    signalled = sorted(holders(files, proc))
    for pid in signalled:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + wait_s
    while True:
        left = sorted(set(holders(files, proc)) & set(signalled))
        if not left or time.monotonic() >= deadline:
            return signalled, left
        time.sleep(POLL_S)


def remove_leftovers(files):
    """Unlink the files still there and still the same regular file; (removed, removed_by_owner)."""
    removed, by_owner = [], []
    for path, st in files:
        try:
            now = os.lstat(path)
        except FileNotFoundError:
            by_owner.append(path)
            continue
        if stat.S_ISREG(now.st_mode) and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            os.unlink(path)
            removed.append(path)
    return removed, by_owner


def policy_paths(config_path):
    """The path patterns a logrotate policy names (the words before each '{')."""
    paths = []
    with open(config_path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "{" in line:
                paths += line.split("{", 1)[0].split()
    return paths


def rotate_logs(logrotate, config_path, log_dir, state_dir):
    outside = [p for p in policy_paths(config_path) if not p.startswith(log_dir.rstrip("/") + "/")]
    if outside:
        return {"returncode": None, "error": f"{config_path} names paths outside {log_dir}: {outside}; not run"}
    argv = [logrotate, "--force", "--state", os.path.join(state_dir, LOGROTATE_STATE_FILE), config_path]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=LOGROTATE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, check=False)
    except (subprocess.TimeoutExpired, OSError) as exc:
        return {"returncode": None, "error": f"{argv[0]}: {exc}"}
    result = {"returncode": done.returncode}
    if done.returncode != 0:
        result["error"] = " ".join(done.stderr.split())[-500:]
    return result


def run(fill_dir, log_dir, logrotate_config, logrotate, state_dir, wait_s=TERM_WAIT_S, proc="/proc"):
    fill_dir = os.path.realpath(fill_dir)
    log_dir = os.path.realpath(log_dir)
    before = available(fill_dir)
    files, skipped = fill_files(fill_dir)
    signalled, still = stop_holders(files, wait_s, proc) if files else ([], [])
    removed, by_owner = remove_leftovers(files)
    rotation = rotate_logs(logrotate, logrotate_config, log_dir, state_dir)
    report = {
        "event": "free-disk", "fill_dir": fill_dir, "log_dir": log_dir,
        "files_removed": removed, "files_removed_by_owner": by_owner, "skipped": skipped,
        "processes_signalled": signalled, "processes_still_holding": still,
        "logrotate": rotation, "bytes_freed": available(fill_dir) - before,
    }
    report["ok"] = not still and rotation.get("returncode") == 0
    return report


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m remediation.freedisk", description=__doc__.splitlines()[0])
    p.add_argument("--fill-dir", default=DEFAULT_FILL_DIR)
    p.add_argument("--log-dir", default=DEFAULT_LOG_DIR)
    p.add_argument("--logrotate-config", default=DEFAULT_LOGROTATE_CONFIG)
    p.add_argument("--logrotate", default=DEFAULT_LOGROTATE)
    p.add_argument("--state-dir", default=(os.environ.get("STATE_DIRECTORY") or DEFAULT_STATE_DIR).split(":")[0])
    p.add_argument("--wait", type=float, default=TERM_WAIT_S, help="seconds to wait for holders after SIGTERM")
    args = p.parse_args(argv)
    for key, path in (("--fill-dir", args.fill_dir), ("--log-dir", args.log_dir), ("--state-dir", args.state_dir)):
        if not os.path.isdir(path):
            print(json.dumps({"event": "free-disk", "ok": False,
                              "error": f"{key}={path!r}: expected an existing directory"}), flush=True)
            return 2
    report = run(args.fill_dir, args.log_dir, args.logrotate_config, args.logrotate, args.state_dir, args.wait)
    print(json.dumps(report, sort_keys=True), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
