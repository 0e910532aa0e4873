"""The remediation agent: `python3 -m remediation.agent`.

Serves Grafana's signed webhook on POST /grafana (TITAN_REMEDIATION_LISTEN)
and Prometheus metrics on /metrics (TITAN_REMEDIATION_METRICS_LISTEN). Every
decision is one JSON line on stdout and one increment of
titan_remediation_actions_total{action,result}.
"""
import http.server
import json
import signal
import sys
import threading

from prometheus_client.exposition import MetricsHandler

from remediation import config as C
from remediation import payload, signature
from remediation.actions import Actions, SystemClock, http_status
from remediation.audit import Audit
from remediation.policy import State, TokenBucket
from remediation.signature import Refusal

WEBHOOK_PATH = "/grafana"


class Agent:
    """Everything but the sockets, so tests can inject a runner, a clock and streams."""

    def __init__(self, cfg, runner=None, clock=None, http_get=http_status, statvfs=None, stream=None,
                 registry=None):
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.audit = Audit(stream=stream, registry=registry, clock=self.clock)
        kwargs = {"statvfs": statvfs} if statvfs else {}
        self.actions = Actions(cfg, runner=runner, clock=self.clock, http_get=http_get, **kwargs)
        self.state = State(cfg.state_dir)
        self.bucket = TokenBucket(cfg.flood_burst, cfg.flood_refill_per_s, self.clock.monotonic)
        self._bucket_lock = threading.Lock()
        # One request's decisions and actions at a time: state changes and
        # systemctl calls never interleave.
        self._lock = threading.Lock()

    # The request ---------------------------------------------------------
    def handle(self, source, path, headers, read):
        """(HTTP status, JSON-able body). headers: a mapping with .get; read(n): the body bytes."""
        try:
            return 200, {"decisions": self._handle(source, path, headers, read)}
        except Refusal as r:
            line = self.audit.record(C.REFUSED, C.NO_ACTION, r.reason, source=source, status=r.status, **r.fields)
            return r.status, {"decision": C.REFUSED, "reason": r.reason, "status": r.status, "ts": line.get("ts")}

    def _handle(self, source, path, headers, read):
        if source not in self.cfg.allowed_sources:
            raise Refusal(403, "source not allowed")
        # Every request from an allowed source takes a token, whatever it asks for:
        # a flood of wrong paths is bounded like any other.
        with self._bucket_lock:
            if not self.bucket.take():
                raise Refusal(429, "too many requests")
        if path.split("?", 1)[0] != WEBHOOK_PATH:
            raise Refusal(404, "unknown path", path=path[:200])
        if headers.get("Transfer-Encoding"):
            raise Refusal(400, "malformed request: Transfer-Encoding is not supported, expected Content-Length")
        length = headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            raise Refusal(400, f"malformed request: Content-Length is {length!r}, expected a number")
        if int(length) > self.cfg.max_body_bytes:
            raise Refusal(413, "body too large", length=int(length), limit=self.cfg.max_body_bytes)
        body = read(int(length))
        if len(body) != int(length):
            raise Refusal(400, f"malformed request: body ended after {len(body)} of {length} bytes")
        with self._lock:
            now = self.clock.time()
            sig, ts = signature.verify(self.cfg.secret, headers.get(self.cfg.signature_header),
                                       headers.get(self.cfg.timestamp_header), body, now, self.cfg.max_skew_s)
            self.state.remember_signature(sig, ts, now, self.cfg.max_skew_s)
            self.state.save()
            alerts = payload.parse(body)
            return [self._decide(alert, source) for alert in alerts]

    # One alert -----------------------------------------------------------
    def _decide(self, alert, source):
        cfg, now = self.cfg, self.clock.time()
        action = alert.action if alert.action in C.ACTIONS else C.NO_ACTION
        about = {"alertname": alert.alertname, "fingerprint": alert.fingerprint, "host": alert.host,
                 "starts_at": alert.starts_at, "source": source}

        def record(decision, reason, **fields):
            return self.audit.record(decision, action, reason, **about, **fields)

        if alert.status != "firing":
            return record(C.REFUSED, "not firing", alert_status=alert.status[:40])
        if alert.host != cfg.host:
            return record(C.REFUSED, "another host's alert")
        if action == C.NO_ACTION:
            return record(C.REFUSED, "action not allowed", requested=alert.action[:100],
                          allowed=list(C.ACTIONS))
        if cfg.mode == "off":
            return record(C.DISABLED, "remediation is off (TITAN_REMEDIATION_MODE=off)")
        mode = cfg.mode
        if self.state.was_handled(mode, alert):
            return record(C.DUPLICATE, "this alert (fingerprint, startsAt) was already handled")
        limit = cfg.limits[action]
        if not self.state.within_limit(mode, action, limit, now):
            return record(C.RATE_LIMITED, f"at most {limit[0]} {action} per {limit[1]} s")
        # Remembered before acting: a retry that arrives meanwhile is a duplicate,
        # and an agent killed mid-action does not act twice.
        self.state.mark_handled(mode, alert, now)
        self.state.record_action(mode, action, now)
        self.state.save()
        if mode == "dry-run":
            return record(C.DRY_RUN, "dry-run: nothing was run (TITAN_REMEDIATION_MODE=dry-run)")
        try:
            ok, reason, measured = self.actions.run(action)
        except Exception as exc:  # noqa: BLE001 - an action's bug is a failed decision, not a 500
            ok, reason, measured = False, f"{type(exc).__name__}: {exc}", {}
        return record(C.ACTED if ok else C.FAILED, reason, **measured)


# HTTP --------------------------------------------------------------------
class _WebhookHandler(http.server.BaseHTTPRequestHandler):
    # StreamRequestHandler applies it to the socket: a slow or silent client
    # is cut off instead of holding a thread.
    timeout = C.REQUEST_READ_TIMEOUT_S
    server_version = "titan-remediation"
    sys_version = ""

    def do_POST(self):
        status, doc = self.server.agent.handle(self.client_address[0], self.path, self.headers, self._read)
        body = (json.dumps(doc, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the sender gave up waiting (Grafana retries; the retry is a duplicate)

    def _read(self, n):
        chunks, left = [], n
        try:
            while left:
                chunk = self.rfile.read(left)
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)

    def log_message(self, *args):
        """Silent: the audit lines are the log."""


class WebhookServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, agent):
        self.agent = agent
        super().__init__(address, _WebhookHandler)


class MetricsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, registry):
        super().__init__(address, MetricsHandler.factory(registry))


def serve(agent, poll_interval=0.5):
    """Start both servers in threads; returns them (callers shut them down;
    shutdown() waits up to poll_interval for each loop to notice)."""
    servers = [WebhookServer(agent.cfg.listen, agent), MetricsServer(agent.cfg.metrics_listen, agent.audit.registry)]
    for server in servers:
        threading.Thread(target=server.serve_forever, args=(poll_interval,), name=type(server).__name__,
                         daemon=True).start()
    return servers


def main():
    try:
        cfg = C.from_env()
        agent = Agent(cfg)
        servers = serve(agent)
    except (C.ConfigError, OSError) as exc:
        print(f"remediation agent: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"remediation agent: mode {cfg.mode}, host {cfg.host}, webhook on "
          f"{servers[0].server_address[0]}:{servers[0].server_address[1]}{WEBHOOK_PATH}, metrics on "
          f"{servers[1].server_address[0]}:{servers[1].server_address[1]}/metrics, "
          f"sources {', '.join(sorted(cfg.allowed_sources))}", file=sys.stderr, flush=True)
    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
