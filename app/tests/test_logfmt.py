import multiprocessing
import os
import re
import stat

import pytest

from support import parse_logfmt, read_log
from titan.logfmt import LOG_FILE_MODE, MAX_VALUE_CHARS, AppLogs, LogFile, format_line, format_value


@pytest.mark.parametrize("value,encoded", [
    ("plain", "plain"), ("two words", '"two words"'), ('say "hi"', '"say \\"hi\\""'), ("a=b", '"a=b"'),
    ("back\\slash", '"back\\\\slash"'), ("line\nbreak", '"line\\nbreak"'), ("", '""'), (None, '""'),
    (True, "true"), (42, "42"), (1.5, "1.5"), ("/api/<id>", "/api/<id>"), ("tab\there", '"tab\\there"'),
    ("bell\x07", '"bell\\u0007"'), ("naïve café", '"naïve café"'),
])
def test_format_value(value, encoded):
    assert format_value(value) == encoded


@pytest.mark.parametrize("value", ['a "quoted" value', "x=y z", "\\", "multi\nline\r\n", "\x00\x1f\x7f", "ünïcödé ✓", " "])
def test_values_round_trip_through_a_strict_parser(value):
    assert parse_logfmt(format_line("info", "m", {"v": value}))["v"] == value


def test_long_values_are_cut():
    encoded = format_value("x" * 10_000)
    assert len(encoded) == MAX_VALUE_CHARS + 3


def test_line_layout():
    line = format_line("warning", "slow upstream", {"endpoint": "/process", "status": 200, "duration_ms": 12.5})
    assert line.endswith("\n") and line.count("\n") == 1
    fields = parse_logfmt(line)
    assert list(fields) == ["ts", "level", "msg", "endpoint", "status", "duration_ms"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["ts"])
    assert fields["msg"] == "slow upstream" and fields["status"] == "200"


def test_files_are_created_0640_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        LogFile(str(tmp_path / "x.log")).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "x.log").st_mode) == LOG_FILE_MODE == 0o640


def test_app_logs_route_by_level_and_report_each_event(tmp_path):
    seen = []
    logs = AppLogs(str(tmp_path), on_event=seen.append)
    logs.event("info", "hello", k=1)
    logs.event("warning", "careful")
    logs.event("error", "boom", reason="bad thing")
    logs.access("info", {"endpoint": "/health", "status": 200})
    logs.close()
    assert [f["msg"] for f in read_log(tmp_path / "app.log")] == ["hello", "careful"]
    assert read_log(tmp_path / "error.log")[0]["reason"] == "bad thing"
    assert read_log(tmp_path / "access.log")[0]["endpoint"] == "/health"
    assert seen == ["info", "warning", "error"]  # access lines are not events


def _pad_len(seq, k):
    return (seq * 37 + k * 101) % 500


def _writer(path, writer_id, lines):
    log = LogFile(path)
    for seq in range(lines):
        # Line lengths vary from tiny to ~3 KB so that torn writes would show.
        pads = {f"pad{k}": "y" * _pad_len(seq, k) for k in range(6)}
        log.write(format_line("info", "concurrent", {"writer": writer_id, "seq": seq, **pads}))
    log.close()


def test_concurrent_writers_never_interleave_lines(tmp_path):
    path = str(tmp_path / "shared.log")
    writers, lines = 4, 1500
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w, lines)) for w in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    records = read_log(path)  # every line must parse strictly
    assert len(records) == writers * lines
    for w in range(writers):
        seqs = [int(r["seq"]) for r in records if r["writer"] == str(w)]
        assert seqs == list(range(lines))
    for r in records:
        assert all(len(r[f"pad{k}"]) == _pad_len(int(r["seq"]), k) for k in range(6))
