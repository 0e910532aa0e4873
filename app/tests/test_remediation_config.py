"""Settings, signature and payload parsing of the remediation agent, without HTTP."""
import json
import subprocess
import time

import pytest

from remediation import config as C
from remediation import payload
from remediation.agent import Agent
from remediation.signature import Refusal, sign, verify
from remediation_support import SECRET, grafana_alert, grafana_payload, make_config, signed_headers
from support import APP_DIR, PYTHON, child_env, free_port, request, stop_process, wait_for


def test_signature_matches_an_independent_hmac():
    # printf '%s' '1700000000:{"alerts":[]}' | openssl dgst -sha256 -hmac grafana-secret
    assert sign(b"grafana-secret", "1700000000", b'{"alerts":[]}') == \
        "5c7a4e78fa7be1fb646b9eb88b816ed67b1f0831f56985e84d548069fe345da3"


@pytest.mark.parametrize("sig,ts,reason", [
    ("", "1700000000", "missing signature"),
    (None, "1700000000", "missing signature"),
    ("abc", None, "missing timestamp"),
    ("abc", "17e8", "malformed timestamp"),
    ("abc", "1700000000", "bad signature"),
    ("5C7A4E78FA7BE1FB646B9EB88B816ED67B1F0831F56985E84D548069FE345DA3", "1700000000", "bad signature"),
    ("ünïcode", "1700000000", "bad signature"),
])
def test_verify_refuses_with_401(sig, ts, reason):
    with pytest.raises(Refusal) as exc:
        verify(b"grafana-secret", sig, ts, b'{"alerts":[]}', 1700000000, 300)
    assert (exc.value.status, exc.value.reason) == (401, reason)


def test_payload_reads_the_fields_it_uses():
    (alert,) = payload.parse(grafana_payload(grafana_alert()))
    assert (alert.status, alert.alertname, alert.host, alert.action, alert.fingerprint, alert.starts_at) == \
        ("firing", "AppNotAnswering", "titan-test-web-1", "restart-app", "a1b2c3d4e5f60718", "2027-01-15T08:00:00Z")


ENV = {
    "CREDENTIALS_DIRECTORY": "", "STATE_DIRECTORY": "",
    "TITAN_REMEDIATION_MODE": "dry-run", "TITAN_REMEDIATION_HOST": "titan-dev-web-1",
    "TITAN_REMEDIATION_LISTEN": "0.0.0.0:9180", "TITAN_REMEDIATION_METRICS_LISTEN": "0.0.0.0:9181",
    "TITAN_REMEDIATION_ALLOWED_SOURCES": "10.0.1.20, 10.0.1.21",
    "TITAN_REMEDIATION_SIGNATURE_HEADER": "X-Grafana-Alerting-Signature",
    "TITAN_REMEDIATION_TIMESTAMP_HEADER": "X-Grafana-Alerting-Timestamp",
    "TITAN_REMEDIATION_MAX_SKEW_SECONDS": "300", "TITAN_REMEDIATION_APP_URL": "http://127.0.0.1:5000/",
    "TITAN_REMEDIATION_LIMITS": "restart-app=2/1800",
}


@pytest.fixture
def env(tmp_path):
    creds, state = tmp_path / "creds", tmp_path / "state"
    creds.mkdir()
    state.mkdir()
    (creds / "hmac-secret").write_bytes(SECRET + b"\n")
    return dict(ENV, CREDENTIALS_DIRECTORY=str(creds), STATE_DIRECTORY=str(state))


def test_from_env_reads_every_setting(env):
    cfg = C.from_env(env)
    assert cfg.secret == SECRET  # the trailing newline is not part of it
    assert (cfg.mode, cfg.host, cfg.listen, cfg.metrics_listen) == \
        ("dry-run", "titan-dev-web-1", ("0.0.0.0", 9180), ("0.0.0.0", 9181))
    assert cfg.allowed_sources == {"10.0.1.20", "10.0.1.21"}
    assert cfg.app_url == "http://127.0.0.1:5000"
    assert cfg.limits == {"restart-app": (2, 1800), "free-disk": (3, 3600)}
    assert cfg.state_dir == env["STATE_DIRECTORY"]


@pytest.mark.parametrize("key,value,message", [
    ("TITAN_REMEDIATION_MODE", "maybe", "TITAN_REMEDIATION_MODE='maybe': expected one of on, dry-run, off"),
    ("TITAN_REMEDIATION_LISTEN", "9180", "TITAN_REMEDIATION_LISTEN='9180': expected <address>:<port>"),
    ("TITAN_REMEDIATION_ALLOWED_SOURCES", "grafana",
     "TITAN_REMEDIATION_ALLOWED_SOURCES='grafana': 'grafana' is not an IP address"),
    ("TITAN_REMEDIATION_ALLOWED_SOURCES", "", "TITAN_REMEDIATION_ALLOWED_SOURCES='': expected at least one"),
    ("TITAN_REMEDIATION_MAX_SKEW_SECONDS", "0", "TITAN_REMEDIATION_MAX_SKEW_SECONDS='0': expected a whole number"),
    ("TITAN_REMEDIATION_LIMITS", "reboot=1/60", "TITAN_REMEDIATION_LIMITS='reboot=1/60': bad item 'reboot=1/60'"),
    ("TITAN_REMEDIATION_LIMITS", "restart-app=3", "bad item 'restart-app=3'"),
    ("TITAN_REMEDIATION_HOST", "", "TITAN_REMEDIATION_HOST='': expected this host's name"),
])
def test_bad_settings_are_refused_by_name(env, key, value, message):
    env[key] = value
    with pytest.raises(C.ConfigError) as exc:
        C.from_env(env)
    assert message in str(exc.value)


def test_missing_required_settings_are_named(env):
    del env["TITAN_REMEDIATION_ALLOWED_SOURCES"]
    with pytest.raises(C.ConfigError, match="TITAN_REMEDIATION_ALLOWED_SOURCES is not set"):
        C.from_env(env)
    del env["CREDENTIALS_DIRECTORY"]
    with pytest.raises(C.ConfigError, match="CREDENTIALS_DIRECTORY is not set"):
        C.from_env(env)


def test_an_empty_secret_is_refused(env):
    with open(f"{env['CREDENTIALS_DIRECTORY']}/hmac-secret", "wb"):
        pass
    with pytest.raises(C.ConfigError, match="the HMAC secret is empty"):
        C.from_env(env)


def test_a_corrupt_state_file_stops_the_agent_instead_of_forgetting(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(C.ConfigError, match="state.json' is unreadable"):
        Agent(make_config(tmp_path))


def test_the_agent_exits_2_naming_a_bad_setting(env):
    env["TITAN_REMEDIATION_MODE"] = "yes"
    done = subprocess.run([PYTHON, "-m", "remediation.agent"], capture_output=True, text=True, timeout=30,
                          env=child_env(**env), cwd=APP_DIR)
    assert done.returncode == 2
    assert "TITAN_REMEDIATION_MODE='yes': expected one of on, dry-run, off" in done.stderr
    assert done.stdout == ""


def test_the_agent_process_serves_the_webhook_and_metrics_and_stops_on_sigterm(env):
    port, metrics_port = free_port(), free_port()
    env.update(TITAN_REMEDIATION_LISTEN=f"127.0.0.1:{port}", TITAN_REMEDIATION_METRICS_LISTEN=f"127.0.0.1:{metrics_port}",
               TITAN_REMEDIATION_ALLOWED_SOURCES="127.0.0.1", TITAN_REMEDIATION_MODE="on")
    proc = subprocess.Popen([PYTHON, "-m", "remediation.agent"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=child_env(**env), cwd=APP_DIR, start_new_session=True)
    try:
        assert "remediation agent: mode on, host titan-dev-web-1" in proc.stderr.readline()
        body = grafana_payload(grafana_alert(host="titan-dev-web-9"))  # another host's: nothing is run
        status, _, answer = request(port, "POST", "/grafana", body, signed_headers(body, time.time()))
        assert status == 200, answer
        line = json.loads(proc.stdout.readline())
        assert (line["decision"], line["reason"]) == ("refused", "another host's alert")
        metrics = wait_for(lambda: request(metrics_port, "GET", "/metrics")[2].decode(), 10, "metrics")
        assert 'titan_remediation_actions_total{action="restart-app",result="refused"} 1.0' in metrics
        proc.terminate()
        assert proc.wait(10) == 0
    finally:
        stop_process(proc)
