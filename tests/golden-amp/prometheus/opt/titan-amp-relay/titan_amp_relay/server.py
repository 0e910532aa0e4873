# golden: root:root 0644
"""The relay: an HTTP server on 127.0.0.1 that signs and forwards Prometheus' remote writes.

What it relies on, read in Debian 12's python3-botocore 1.29.27+repack-1:
  - botocore/auth.py SigV4Auth.add_auth: sets X-Amz-Date and, for session credentials,
    X-Amz-Security-Token, then signs every header but those in SIGNED_HEADERS_BLACKLIST
    (expect, user-agent, x-amzn-trace-id) with the payload hashed (no X-Amz-Content-SHA256
    header for a service other than s3). The same scheme aws-sdk-go's v4 signer uses for
    Prometheus' own sigv4 round tripper (prometheus/common sigv4/sigv4.go), so AMP sees what an
    upstream Prometheus would send.
  - botocore/credentials.py create_credential_resolver: the instance-metadata provider is built as
    InstanceMetadataProvider(iam_role_fetcher=InstanceMetadataFetcher(timeout, num_attempts,
    user_agent, config={ec2_metadata_service_endpoint, ec2_metadata_service_endpoint_mode,
    ec2_credential_refresh_window})); built the same way here, alone: the instance role is the
    only source of credentials (no environment keys, no profile files).
  - InstanceMetadataProvider.load returns RefreshableCredentials whose refresh_using is the
    fetcher's retrieve_iam_role_credentials; get_frozen_credentials() refreshes them when fewer
    than 15 minutes are left (advisory) and blocks on a refresh under 10 (mandatory).
  - botocore/utils.py InstanceMetadataFetcher: IMDSv2 (PUT latest/api/token, then the role
    credentials with X-aws-ec2-metadata-token); the endpoint comes from the config above, which
    botocore's session reads from AWS_EC2_METADATA_SERVICE_ENDPOINT (configprovider.py).
  - botocore/httpsession.py URLLib3Session.send: retries=Retry(False), so each write is sent once
    and Prometheus alone decides about retrying.

What Prometheus does with the answer (prometheus v2.42.0 storage/remote/client.go Store): a 5xx
(and a 429 with retry_on_http_429) is recoverable and retried with backoff, any other non-2xx
drops the batch. So the relay passes the upstream status through unchanged, and answers a 5xx of
its own only when the write may succeed later (no credentials yet, upstream unreachable).
"""

import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import InstanceMetadataProvider
from botocore.exceptions import BotoCoreError
from botocore.httpsession import URLLib3Session
from botocore.utils import InstanceMetadataFetcher, resolve_imds_endpoint_mode

#: The only path the relay answers (Prometheus' remote_write url is http://127.0.0.1:<port><PATH>).
PATH = "/api/v1/remote_write"
#: The service name AMP's SigV4 scope uses.
SERVICE = "aps"
#: Prometheus' own headers that reach AMP unchanged (storage/remote/client.go Store sets them).
FORWARDED_HEADERS = ("Content-Encoding", "Content-Type", "X-Prometheus-Remote-Write-Version", "User-Agent")
#: A remote write is one snappy-compressed batch (max_samples_per_send samples): far under this.
DEFAULT_MAX_BODY = 16 * 1024 * 1024
#: Under Prometheus' remote_timeout (30 s by default), so the relay answers before Prometheus gives up.
DEFAULT_UPSTREAM_TIMEOUT = 25.0
#: Upstream answers are short (AMP sends a JSON message at most); more is cut, not relayed.
MAX_ANSWER = 64 * 1024

ENV_PORT = "TITAN_AMP_RELAY_PORT"
ENV_URL = "TITAN_AMP_RELAY_REMOTE_WRITE_URL"
ENV_REGION = "TITAN_AMP_RELAY_REGION"
ENV_MAX_BODY = "TITAN_AMP_RELAY_MAX_BODY_BYTES"
ENV_TIMEOUT = "TITAN_AMP_RELAY_UPSTREAM_TIMEOUT_SECONDS"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the key, the value and what was expected."""


def _bad(key, value, expected):
    return SettingsError(f"{key}={value!r}: expected {expected}")


class Settings:
    def __init__(self, port, remote_write_url, region, max_body=DEFAULT_MAX_BODY,
                 upstream_timeout=DEFAULT_UPSTREAM_TIMEOUT):
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise _bad(ENV_PORT, port, "a port number 0..65535")
        parts = urlsplit(remote_write_url or "")
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
            raise _bad(ENV_URL, remote_write_url, "the workspace's remote-write URL, https://.../api/v1/remote_write")
        if not region or not all(p.isalnum() for p in region.split("-")) or region != region.lower():
            raise _bad(ENV_REGION, region, "an AWS region name like us-east-1")
        if not isinstance(max_body, int) or max_body <= 0:
            raise _bad(ENV_MAX_BODY, max_body, "a positive number of bytes")
        if not upstream_timeout > 0:
            raise _bad(ENV_TIMEOUT, upstream_timeout, "a positive number of seconds")
        self.port = port
        self.remote_write_url = remote_write_url
        self.region = region
        self.max_body = max_body
        self.upstream_timeout = upstream_timeout

    @classmethod
    def from_env(cls, env):
        def number(key, default, kind):
            raw = env.get(key)
            if raw is None or raw == "":
                return default
            try:
                return kind(raw)
            except ValueError:
                raise _bad(key, raw, f"a {kind.__name__}") from None

        if not env.get(ENV_PORT):
            raise _bad(ENV_PORT, env.get(ENV_PORT), "a port number 0..65535")
        return cls(
            port=number(ENV_PORT, None, int),
            remote_write_url=env.get(ENV_URL),
            region=env.get(ENV_REGION),
            max_body=number(ENV_MAX_BODY, DEFAULT_MAX_BODY, int),
            upstream_timeout=number(ENV_TIMEOUT, DEFAULT_UPSTREAM_TIMEOUT, float),
        )


def log(event, **fields):
    """One JSON line on stderr (the journal). Never given credentials, headers or bodies."""
    line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields}
    print(json.dumps(line, sort_keys=True), file=sys.stderr, flush=True)


class InstanceRoleCredentials:
    """The instance profile's credentials, loaded from IMDSv2 on first use and refreshed by botocore."""

    def __init__(self, session=None):
        session = session or botocore.session.Session()
        # As create_credential_resolver builds it (botocore/credentials.py), without the rest of the chain.
        config = {
            "ec2_metadata_service_endpoint": session.get_config_variable("ec2_metadata_service_endpoint"),
            "ec2_metadata_service_endpoint_mode": resolve_imds_endpoint_mode(session),
            "ec2_credential_refresh_window": 15 * 60,
        }
        fetcher = InstanceMetadataFetcher(
            timeout=session.get_config_variable("metadata_service_timeout"),
            num_attempts=session.get_config_variable("metadata_service_num_attempts"),
            user_agent=session.user_agent(),
            config=config,
        )
        self._provider = InstanceMetadataProvider(iam_role_fetcher=fetcher)
        self._credentials = None
        self._lock = threading.Lock()

    def frozen(self):
        """Current credentials, or None while the instance metadata has none to give."""
        with self._lock:
            if self._credentials is None:
                self._credentials = self._provider.load()
            credentials = self._credentials
        if credentials is None:
            return None
        return credentials.get_frozen_credentials()


class Relay:
    def __init__(self, settings, credentials, http=None):
        self.settings = settings
        self.credentials = credentials
        self.http = http or URLLib3Session(timeout=settings.upstream_timeout)

    def forward(self, body, headers):
        """Sign and send one write; returns (status, content type, answer body)."""
        try:
            frozen = self.credentials.frozen()
        except BotoCoreError as err:
            log("credentials_failed", error=type(err).__name__)
            return 503, "text/plain", b"no instance credentials\n"
        if frozen is None:
            log("credentials_failed", error="the instance metadata service gave no role credentials")
            return 503, "text/plain", b"no instance credentials\n"
        request = AWSRequest(method="POST", url=self.settings.remote_write_url, data=body,
                             headers={k: v for k, v in headers.items() if v is not None})
        SigV4Auth(frozen, SERVICE, self.settings.region).add_auth(request)
        started = time.monotonic()
        try:
            response = self.http.send(request.prepare())
        except BotoCoreError as err:
            # Unreachable or too slow: a 5xx, so Prometheus keeps the batch and retries.
            log("upstream_failed", error=type(err).__name__, seconds=round(time.monotonic() - started, 3),
                body_sha256=hashlib.sha256(body).hexdigest()[:16])
            return 502, "text/plain", b"upstream unreachable\n"
        answer = (response.content or b"")[:MAX_ANSWER]
        if response.status_code >= 300:
            log("upstream_refused", status=response.status_code, answer=answer[:512].decode("utf-8", "replace"),
                seconds=round(time.monotonic() - started, 3))
        return response.status_code, response.headers.get("Content-Type", "text/plain"), answer


def make_handler(relay):
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as Prometheus' client reuses its connections.
        protocol_version = "HTTP/1.1"
        server_version = "titan-amp-relay"
        sys_version = ""

        def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
            pass  # failures are logged as JSON lines; successes are not logged at all

        def _answer(self, status, content_type, body, close=False):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, status, reason):
            log("request_refused", status=status, method=self.command, path=self.path[:200], reason=reason)
            # The body is unread: the connection cannot be reused.
            self._answer(status, "text/plain", (reason + "\n").encode(), close=True)

        def do_POST(self):
            if self.path != PATH:
                return self._refuse(404, f"only POST {PATH}")
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                return self._refuse(411, "a Content-Length is required")
            if int(length) > relay.settings.max_body:
                return self._refuse(413, f"body over {relay.settings.max_body} bytes")
            body = self.rfile.read(int(length))
            if len(body) != int(length):
                return self._refuse(400, "body shorter than its Content-Length")
            headers = {name: self.headers.get(name) for name in FORWARDED_HEADERS}
            status, content_type, answer = relay.forward(body, headers)
            self._answer(status, content_type, answer)

        def _not_post(self):
            self._refuse(405, f"only POST {PATH}")

        do_GET = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _not_post

    return Handler


def serve(settings, credentials, host="127.0.0.1"):
    """A started server (its own thread per request); the caller calls serve_forever or shutdown."""
    server = ThreadingHTTPServer((host, settings.port), make_handler(Relay(settings, credentials)))
    server.daemon_threads = True
    return server


def main(env=None):
    env = os.environ if env is None else env
    try:
        settings = Settings.from_env(env)
    except SettingsError as err:
        log("bad_settings", error=str(err))
        return 2
    server = serve(settings, InstanceRoleCredentials())
    log("listening", address=f"127.0.0.1:{server.server_address[1]}", upstream=settings.remote_write_url,
        region=settings.region)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
