"""The agent as systemd runs it (`python3 -m remediation.agent`), with its real
command runner: systemctl is a stand-in script first on PATH, the app a stub
HTTP server. Proves the wiring the in-process tests replace with fakes."""
import json
import os
import subprocess
import time

import pytest

from remediation_support import RESTART, SECRET, grafana_alert, grafana_payload, signed_headers
from support import APP_DIR, PYTHON, StubServer, child_env, free_port, request, stop_process

FAKE_SYSTEMCTL = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_SYSTEMCTL_DIR/calls"
case "$*" in
  "show -p MainPID --value titan.service") cat "$FAKE_SYSTEMCTL_DIR/pid" ;;
  "--no-ask-password restart titan.service") echo $(( $(cat "$FAKE_SYSTEMCTL_DIR/pid") + 1 )) > "$FAKE_SYSTEMCTL_DIR/pid" ;;
  *) echo "unexpected: $*" >&2; exit 64 ;;
esac
"""


@pytest.fixture
def agent_process(tmp_path):
    bin_dir, creds, state = tmp_path / "bin", tmp_path / "creds", tmp_path / "state"
    for d in (bin_dir, creds, state):
        d.mkdir()
    (bin_dir / "systemctl").write_text(FAKE_SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    (tmp_path / "pid").write_text("4242\n")
    (creds / "hmac-secret").write_bytes(SECRET)
    port, metrics_port = free_port(), free_port()
    with StubServer() as app:
        env = child_env(
            PATH=f"{bin_dir}:/usr/bin:/bin", FAKE_SYSTEMCTL_DIR=str(tmp_path),
            CREDENTIALS_DIRECTORY=str(creds), STATE_DIRECTORY=str(state),
            TITAN_REMEDIATION_MODE="on", TITAN_REMEDIATION_HOST="titan-test-web-1",
            TITAN_REMEDIATION_LISTEN=f"127.0.0.1:{port}", TITAN_REMEDIATION_METRICS_LISTEN=f"127.0.0.1:{metrics_port}",
            TITAN_REMEDIATION_ALLOWED_SOURCES="127.0.0.1", TITAN_REMEDIATION_APP_URL=f"http://127.0.0.1:{app.port}")
        proc = subprocess.Popen([PYTHON, "-m", "remediation.agent"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, cwd=APP_DIR, start_new_session=True)
        try:
            assert "remediation agent: mode on" in proc.stderr.readline()
            yield proc, port, app, tmp_path
        finally:
            stop_process(proc)


def test_a_signed_restart_runs_systemctl_and_checks_the_new_process_answers(agent_process):
    proc, port, app, tmp_path = agent_process
    body = grafana_payload(grafana_alert())
    status, _, answer = request(port, "POST", "/grafana", body, signed_headers(body, time.time()), timeout=30)
    assert status == 200, answer
    line = json.loads(proc.stdout.readline())
    assert (line["decision"], line["old_pid"], line["new_pid"]) == ("acted", "4242", "4243")
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls.count(" ".join(RESTART[1:])) == 1
    assert calls[0] == "show -p MainPID --value titan.service"
    assert ("GET", "/health") in app.requests


def test_an_unsigned_request_runs_nothing(agent_process):
    proc, port, app, tmp_path = agent_process
    body = grafana_payload(grafana_alert())
    status, _, answer = request(port, "POST", "/grafana", body, {"Content-Type": "application/json"})
    assert status == 401, answer
    line = json.loads(proc.stdout.readline())
    assert (line["decision"], line["reason"]) == ("refused", "missing signature")
    assert not os.path.exists(tmp_path / "calls") and app.requests == []
