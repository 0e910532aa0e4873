"""logfmt lines written to append-only files that several workers share.

Each line is encoded once and written with a single os.write() on a file
descriptor opened with O_APPEND: the kernel then places every write at the
current end of file atomically, so lines from different gunicorn workers never
interleave mid-line. O_APPEND is also what makes logrotate's copytruncate safe:
after the truncation the next write lands at offset 0 instead of leaving a hole.
"""
import json
import os
import re
import sys
import time

# Files are group-readable so the log shipper can tail them: the service runs
# as titan:titan, and the web host's bootstrap adds user alloy to group titan
# (templates/host/units.ts, templates/host/bootstrap.ts).
LOG_FILE_MODE = 0o640

# Values are cut so that a line stays far below 4 KiB even with every field
# at its limit; an attacker-controlled path cannot produce a huge line.
MAX_VALUE_CHARS = 512

# A bare value must be non-empty and free of whitespace, quotes, '=' and
# backslashes; anything else is quoted. Control characters count as unsafe.
_NEEDS_QUOTES = re.compile(r'[\s"=\\\x00-\x1f\x7f]')

LEVELS = ("info", "warning", "error")


def format_value(value):
    if value is None:
        return '""'
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "..."
    if text and not _NEEDS_QUOTES.search(text):
        return text
    # JSON string syntax is the logfmt quoting convention (\" \\ \n \uXXXX),
    # and json.dumps does it in C.
    return json.dumps(text, ensure_ascii=False)


class _Clock:
    """RFC 3339 UTC timestamps with milliseconds; the second part is cached."""

    def __init__(self):
        self._second = None
        self._prefix = ""

    def now(self):
        t = time.time()
        second = int(t)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{int((t - second) * 1000):03d}Z"


_clock = _Clock()


def format_line(level, msg, fields):
    """One logfmt line: ts, level and msg first, then the given fields."""
    parts = [f"ts={_clock.now()} level={level} msg={format_value(msg)}"]
    for key, value in fields.items():
        parts.append(f"{key}={format_value(value)}")
    return " ".join(parts) + "\n"


class LogFile:
    """An append-only log file written one whole line per os.write()."""

    def __init__(self, path):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, LOG_FILE_MODE)
        try:
            # The umask may have stripped group read; fix it on files we own.
            os.fchmod(self._fd, LOG_FILE_MODE)
        except PermissionError:
            pass

    def write(self, line):
        data = line.encode("utf-8", "backslashreplace")
        try:
            written = os.write(self._fd, data)
            # A regular file only writes short on a full disk; finish the line
            # rather than leave half of it for the next writer to continue.
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            # Logging must never fail a request (e.g. ENOSPC during the disk
            # demo); gunicorn sends stderr to the journal.
            print(f"titan: cannot write {self.path}: {exc}", file=sys.stderr)

    def close(self):
        os.close(self._fd)


class AppLogs:
    """The three Titan log files: access.log, app.log and error.log.

    Error-level events go to error.log, other events to app.log, and one line
    per request to access.log. on_event(level) is called for every app.log and
    error.log line (the metrics hook for titan_log_lines_total); access lines
    are already counted by http_requests_total.
    """

    def __init__(self, log_dir, on_event=None):
        os.makedirs(log_dir, exist_ok=True)
        self._access = LogFile(os.path.join(log_dir, "access.log"))
        self._app = LogFile(os.path.join(log_dir, "app.log"))
        self._error = LogFile(os.path.join(log_dir, "error.log"))
        self._on_event = on_event

    def access(self, level, fields):
        self._access.write(format_line(level, "request", fields))

    def event(self, level, msg, **fields):
        target = self._error if level == "error" else self._app
        target.write(format_line(level, msg, fields))
        if self._on_event:
            self._on_event(level)

    def close(self):
        for f in (self._access, self._app, self._error):
            f.close()
