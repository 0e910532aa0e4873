"""Disk-fill demo: push the filesystem holding a directory just past the disk
alert threshold, hold it there, then remove the file so the alert resolves.

Usage, as measured the way node_exporter reports it (1 - avail/size, where the
root-reserved blocks count as used, as in `df`):
    python3 -m titan.diskfill --path /var/tmp --target-pct 67 --hold 300
It refuses to run when the filesystem is already at or above the target, never
fills beyond 90%, and always removes its file (on normal exit, error,
SIGTERM, SIGINT or SIGHUP).
"""
import argparse
import math
import os
import signal
import sys
import threading

MAX_PCT = 90.0
DEFAULT_TARGET_PCT = 67.0
DEFAULT_HOLD_S = 300.0
MAX_HOLD_S = 3600.0


class Refused(Exception):
    """The fill would be unsafe or pointless; nothing was written."""


def usage(path, statvfs=os.statvfs):
    """(size_bytes, used_bytes) of the filesystem holding path; used = size - avail."""
    st = statvfs(path)
    total = st.f_blocks * st.f_frsize
    return total, total - st.f_bavail * st.f_frsize


def plan_fill(total, used, target_pct=DEFAULT_TARGET_PCT, max_pct=MAX_PCT):
    """Bytes to allocate to bring usage from used/total up to target_pct."""
    if not 0 < target_pct <= max_pct:
        raise Refused(f"target {target_pct}% is outside 0-{max_pct}%")
    if total <= 0 or not 0 <= used <= total:
        raise Refused(f"implausible filesystem numbers: size {total}, used {used}")
    current = 100 * used / total
    if current >= target_pct:
        raise Refused(f"already {current:.1f}% used, at or above the {target_pct}% target")
    wanted = math.ceil(total * target_pct / 100) - used
    # The cap is a second guard in case rounding or a caller's max_pct disagrees.
    return min(wanted, math.floor(total * max_pct / 100) - used)


def fill(directory, target_pct, hold_s, stop, statvfs=os.statvfs, say=print):
    """Create the fill file, hold it for hold_s (or until stop is set), remove it."""
    total, used = usage(directory, statvfs)
    size = plan_fill(total, used, target_pct)
    path = os.path.join(directory, f".titan-disk-fill-{os.getpid()}")
    say(f"disk-fill: {directory}: {100 * used / total:.1f}% used of {total} bytes; "
        f"allocating {size} bytes in {path} to reach {target_pct}%")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        # Real blocks (not a sparse file): this is what moves avail_bytes.
        os.posix_fallocate(fd, 0, size)
        total, used = usage(directory, statvfs)
        now_pct = 100 * used / total
        if now_pct > MAX_PCT:
            raise Refused(f"usage reached {now_pct:.1f}%, above the {MAX_PCT}% cap (something else is writing)")
        say(f"disk-fill: now {now_pct:.1f}% used; holding for {hold_s:g} s")
        stop.wait(hold_s)
    finally:
        os.close(fd)
        os.unlink(path)
        say(f"disk-fill: removed {path}")
    total, used = usage(directory, statvfs)
    say(f"disk-fill: back to {100 * used / total:.1f}% used")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m titan.diskfill", description=__doc__.splitlines()[0])
    p.add_argument("--path", default="/var/tmp", help="a directory on the filesystem to fill (default /var/tmp)")
    p.add_argument("--target-pct", type=float, default=DEFAULT_TARGET_PCT,
                   help=f"usage to reach, just above the alert threshold (default {DEFAULT_TARGET_PCT}, at most {MAX_PCT})")
    p.add_argument("--hold", type=float, default=DEFAULT_HOLD_S,
                   help=f"seconds to hold before cleaning up, 1..{MAX_HOLD_S:g} (default {DEFAULT_HOLD_S:g})")
    args = p.parse_args(argv)
    if not 1 <= args.hold <= MAX_HOLD_S:
        print(f"disk-fill: refused: --hold={args.hold:g}: expected 1 to {MAX_HOLD_S:g} seconds", file=sys.stderr)
        return 2
    if not os.path.isdir(args.path):
        print(f"disk-fill: refused: --path={args.path!r} is not a directory", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    try:
        fill(args.path, args.target_pct, args.hold, stop)
    except Refused as exc:
        print(f"disk-fill: refused: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
