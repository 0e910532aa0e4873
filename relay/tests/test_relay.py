"""The relay against a fake IMDSv2 and a fake AMP, both on 127.0.0.1.

The signature is checked by an independent SigV4 computation (hashlib/hmac, from AWS's
"Create a signed AWS API request" steps), not by botocore, with the secret the fake IMDS issued.
"""

import datetime
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import botocore.session
import pytest

from titan_amp_relay import server as relay_server

RELAY_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = "eu-west-1"
WRITE_PATH = "/workspaces/ws-00000000-0000-0000-0000-000000000001/api/v1/remote_write"
PROMETHEUS_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "Prometheus/2.42.0",
}


def _serve(handler):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class FakeImds:
    """IMDSv2: a token from PUT latest/api/token, role credentials only with that token."""

    ROLE = "titan-prometheus"

    def __init__(self):
        self.issued = []  # (access key, secret, token)
        self.lifetime = datetime.timedelta(hours=6)
        self.tokenless = 0
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self):
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self._send(200, "imds-token-1")
                self._send(400, "bad token request")

            def do_GET(self):
                if self.headers.get("X-aws-ec2-metadata-token") != "imds-token-1":
                    imds.tokenless += 1
                    return self._send(401, "")
                base = "/latest/meta-data/iam/security-credentials/"
                if self.path == base:
                    return self._send(200, FakeImds.ROLE)
                if self.path == base + FakeImds.ROLE:
                    n = len(imds.issued) + 1
                    key = (f"ASIAFAKE{n:012d}", f"secret-{n}", f"session-token-{n}")
                    imds.issued.append(key)
                    expires = datetime.datetime.now(datetime.timezone.utc) + imds.lifetime
                    return self._send(200, json.dumps({
                        "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": key[0], "SecretAccessKey": key[1],
                        "Token": key[2], "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "LastUpdated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    }))
                self._send(404, "")

        self.httpd = _serve(Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def secret_for(self, access_key):
        return next((s, t) for k, s, t in self.issued if k == access_key)


class FakeAmp:
    """Records each request; answers `status` (200 unless set)."""

    def __init__(self):
        self.requests = []
        self.status = 200
        amp = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                amp.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                answer = b"" if amp.status == 200 else json.dumps({"message": f"status {amp.status}"}).encode()
                self.send_response(amp.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = _serve(Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{WRITE_PATH}"


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def verify_sigv4(req, secret, token, region=REGION, service="aps"):
    """Independent SigV4 check of a recorded request; returns the access key id."""
    headers = {k.lower(): v for k, v in req["headers"].items()}
    auth = headers["authorization"]
    algorithm, rest = auth.split(" ", 1)
    assert algorithm == "AWS4-HMAC-SHA256"
    fields = dict(part.strip().split("=", 1) for part in rest.split(","))
    access_key, date, scope_region, scope_service, terminator = fields["Credential"].split("/")
    assert (scope_region, scope_service, terminator) == (region, service, "aws4_request")
    signed = fields["SignedHeaders"].split(";")
    for required in ("host", "x-amz-date", "x-amz-security-token", "content-encoding", "content-type",
                     "x-prometheus-remote-write-version"):
        assert required in signed, f"{required} not signed"
    assert headers["x-amz-security-token"] == token
    amz_date = headers["x-amz-date"]
    assert amz_date.startswith(date)
    path = urlsplit(req["path"]).path
    canonical = "\n".join([
        "POST", path, "",
        "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in signed),
        fields["SignedHeaders"], hashlib.sha256(req["body"]).hexdigest(),
    ])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), date), region), service), "aws4_request")
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["Signature"]), "signature does not verify"
    return access_key


@pytest.fixture
def imds(monkeypatch):
    fake = FakeImds()
    # botocore's session reads the IMDS endpoint from this variable (configprovider.py).
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.endpoint)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    yield fake
    fake.httpd.shutdown()


@pytest.fixture
def amp():
    fake = FakeAmp()
    yield fake
    fake.httpd.shutdown()


@pytest.fixture
def relay(imds, amp):
    settings = relay_server.Settings(port=0, remote_write_url=amp.url, region=REGION, max_body=1024)
    credentials = relay_server.InstanceRoleCredentials(botocore.session.Session())
    httpd = relay_server.serve(settings, credentials)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    httpd.port = httpd.server_address[1]
    httpd.credentials = credentials
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def post(port, body=b"\x00snappy-body\xff", path="/api/v1/remote_write", method="POST", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers if headers is not None else PROMETHEUS_HEADERS)
    res = conn.getresponse()
    data = res.read()
    conn.close()
    return res.status, data


def test_write_is_forwarded_signed_with_the_instance_role_credentials(relay, imds, amp):
    body = bytes(range(256)) * 3
    status, _ = post(relay.port, body)
    assert status == 200
    [req] = amp.requests
    assert req["path"] == WRITE_PATH
    assert req["body"] == body
    for name, value in PROMETHEUS_HEADERS.items():
        assert req["headers"][name] == value
    [(key, secret, token)] = imds.issued
    assert verify_sigv4(req, secret, token) == key
    assert imds.tokenless == 0, "IMDSv1 (no token) was used"


def test_a_changed_body_would_not_verify(relay, imds, amp):
    """The check above can fail: the same request with one byte changed does not verify."""
    post(relay.port, b"original")
    [req] = amp.requests
    [(_, secret, token)] = imds.issued
    with pytest.raises(AssertionError, match="signature"):
        verify_sigv4({**req, "body": b"Original"}, secret, token)


@pytest.mark.parametrize("upstream", [200, 400, 403, 429, 500, 503])
def test_upstream_status_reaches_prometheus_unchanged(relay, amp, upstream):
    amp.status = upstream
    status, data = post(relay.port)
    assert status == upstream
    if upstream != 200:
        assert f"status {upstream}".encode() in data


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_refused(relay, amp, method):
    status, _ = post(relay.port, method=method)
    assert status == 405
    assert amp.requests == []


@pytest.mark.parametrize("path", ["/", "/api/v1/remote_write/", "/api/v1/query", "/api/v1/remote_write?x=1"])
def test_other_paths_are_refused(relay, amp, path):
    status, _ = post(relay.port, path=path)
    assert status == 404
    assert amp.requests == []


def test_oversized_body_is_refused_unforwarded(relay, amp):
    status, _ = post(relay.port, b"x" * 1025)
    assert status == 413
    assert amp.requests == []


def test_unreachable_upstream_is_a_5xx_so_prometheus_retries(imds, capfd):
    sock_port = _closed_port()
    settings = relay_server.Settings(port=0, remote_write_url=f"http://127.0.0.1:{sock_port}{WRITE_PATH}",
                                     region=REGION, upstream_timeout=2)
    r = relay_server.Relay(settings, relay_server.InstanceRoleCredentials(botocore.session.Session()))
    status, _, _ = r.forward(b"body", dict(PROMETHEUS_HEADERS))
    assert status == 502
    line = json.loads(capfd.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "upstream_failed"


def test_no_credentials_is_a_5xx_and_logs_no_secret(monkeypatch, amp, capfd):
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{_closed_port()}/")
    settings = relay_server.Settings(port=0, remote_write_url=amp.url, region=REGION)
    r = relay_server.Relay(settings, relay_server.InstanceRoleCredentials(botocore.session.Session()))
    status, _, _ = r.forward(b"body", dict(PROMETHEUS_HEADERS))
    assert status == 503
    assert amp.requests == []
    assert "credentials_failed" in capfd.readouterr().err


def test_credentials_are_refreshed_before_they_expire(relay, imds, amp, capfd):
    post(relay.port)
    post(relay.port)
    assert len(imds.issued) == 1, "credentials are fetched once while they are fresh"
    # Five hours 55 minutes on (botocore's RefreshableCredentials reads its clock through
    # _time_fetcher): five minutes left of the six hours, under the 15-minute advisory window.
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=5, minutes=55)
    relay.credentials._credentials._time_fetcher = lambda: later
    imds.lifetime = datetime.timedelta(hours=12)
    post(relay.port)
    assert [k for k, _, _ in imds.issued] == ["ASIAFAKE000000000001", "ASIAFAKE000000000002"]
    second_key, secret, token = imds.issued[1]
    assert verify_sigv4(amp.requests[2], secret, token) == second_key
    err = capfd.readouterr().err
    for _, s, t in imds.issued:
        assert s not in err and t not in err


def test_settings_name_the_bad_key():
    with pytest.raises(relay_server.SettingsError, match="TITAN_AMP_RELAY_REGION='EU-west-1'"):
        relay_server.Settings(port=1, remote_write_url="https://x/api/v1/remote_write", region="EU-west-1")
    with pytest.raises(relay_server.SettingsError, match="TITAN_AMP_RELAY_REMOTE_WRITE_URL='ftp://x'"):
        relay_server.Settings(port=1, remote_write_url="ftp://x", region=REGION)
    with pytest.raises(relay_server.SettingsError, match="TITAN_AMP_RELAY_PORT='x'"):
        relay_server.Settings.from_env({"TITAN_AMP_RELAY_PORT": "x"})


def test_the_module_runs_as_the_unit_runs_it(imds, amp):
    """python3 -m titan_amp_relay with the env file's variables, IMDS from AWS_EC2_METADATA_SERVICE_ENDPOINT."""
    port = _closed_port()
    env = {
        "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": RELAY_DIR,
        "TITAN_AMP_RELAY_PORT": str(port), "TITAN_AMP_RELAY_REMOTE_WRITE_URL": amp.url,
        "TITAN_AMP_RELAY_REGION": REGION, "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.endpoint,
    }
    proc = subprocess.Popen([sys.executable, "-m", "titan_amp_relay"], env=env, cwd="/",
                            stderr=subprocess.PIPE, text=True)
    try:
        listening = json.loads(proc.stderr.readline())
        assert listening["event"] == "listening" and listening["address"] == f"127.0.0.1:{port}"
        status, _ = post(port)
        assert status == 200
        [(key, secret, token)] = imds.issued
        assert verify_sigv4(amp.requests[0], secret, token) == key
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bad_settings_exit_with_the_key_named():
    proc = subprocess.run([sys.executable, "-m", "titan_amp_relay"], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": RELAY_DIR,
                               "TITAN_AMP_RELAY_PORT": "9", "TITAN_AMP_RELAY_REGION": REGION})
    assert proc.returncode == 2
    assert "TITAN_AMP_RELAY_REMOTE_WRITE_URL=None" in proc.stderr


def _closed_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
