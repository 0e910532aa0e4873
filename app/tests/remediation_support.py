"""Helpers for the remediation tests: a Grafana-shaped payload, Grafana's
signature, a fake command runner and clock, and the real agent on port 0."""
import contextlib
import dataclasses
import http.client
import io
import json
import types

from remediation import config as C
from remediation.actions import Result
from remediation.agent import Agent, serve
from remediation.signature import sign

SECRET = b"test-secret-0123456789abcdefghijklmnopqrstuvwxyzAB"
HOST = "titan-test-web-1"
RESTART = ["systemctl", "--no-ask-password", "restart", "titan.service"]
START_FREE_DISK = ["systemctl", "--no-ask-password", "start", "titan-free-disk.service"]
T0 = 1_800_000_000.0


def grafana_alert(action="restart-app", host=HOST, status="firing", fingerprint="a1b2c3d4e5f60718",
                  alertname="AppNotAnswering", starts_at="2027-01-15T08:00:00Z", host_label="instance", **labels):
    """One templates.ExtendedAlert (grafana/alerting templates/template_data.go), as JSON."""
    all_labels = {"alertname": alertname, "grafana_folder": "Titan", "severity": "critical", host_label: host}
    if action is not None:
        all_labels["remediation"] = action
    all_labels.update(labels)
    return {
        "status": status, "labels": all_labels,
        "annotations": {"summary": "Titan does not answer", "runbook_url": "https://example.invalid/runbook"},
        "startsAt": starts_at, "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2027-01-15T08:10:00Z",
        "generatorURL": "http://grafana.invalid:3000/alerting/grafana/abc/view", "fingerprint": fingerprint,
        "silenceURL": "http://grafana.invalid:3000/alerting/silence/new?alertmanager=grafana",
        "dashboardURL": "", "panelURL": "", "values": {"A": 0, "C": 1},
        "valueString": "[ var='A' labels={instance=" + host + "} value=0 ]",
    }


def grafana_payload(*alerts):
    """The webhook body (grafana/alerting receivers/webhook/v1/webhook.go webhookMessage)."""
    alerts = list(alerts) or [grafana_alert()]
    firing = any(a["status"] == "firing" for a in alerts)
    common = dict(alerts[0]["labels"]) if len(alerts) == 1 else {}
    doc = {
        "receiver": "titan-remediation-web-1", "status": "firing" if firing else "resolved",
        "alerts": alerts, "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": common, "commonAnnotations": {}, "externalURL": "http://grafana.invalid:3000/",
        "version": "1", "groupKey": '{}/{remediation=~".+"}:{alertname="AppNotAnswering"}',
        "truncatedAlerts": 0, "orgId": 1, "title": "[FIRING:1] AppNotAnswering",
        "state": "alerting" if firing else "ok", "message": "**Firing**\n\nValue: A=0",
    }
    return json.dumps(doc).encode()


def signed_headers(body, ts, secret=SECRET):
    ts = str(int(ts))
    return {C.DEFAULT_TIMESTAMP_HEADER: ts, C.DEFAULT_SIGNATURE_HEADER: sign(secret, ts, body),
            "Content-Type": "application/json"}


class FakeClock:
    """Wall and monotonic time that move only when told to (or when slept on)."""

    def __init__(self, now=T0):
        self.now = now
        self.mono = 1000.0

    def time(self):
        return self.now

    def monotonic(self):
        return self.mono

    def sleep(self, s):
        self.advance(s)

    def advance(self, s):
        self.now += s
        self.mono += s


class FakeRunner:
    """Records every command; plays a titan.service whose MainPID changes on restart."""

    def __init__(self, disk=None):
        self.calls = []
        self.main_pid = 100
        self.restart_rc = 0
        self.restart_changes_pid = True
        self.start_rc = 0
        self.free_disk_result = "success"
        self.disk = disk

    def run(self, argv, timeout):
        assert isinstance(argv, list) and timeout > 0
        self.calls.append(list(argv))
        if argv == ["systemctl", "show", "-p", "MainPID", "--value", "titan.service"]:
            return Result(0, f"{self.main_pid}\n", "")
        if argv == RESTART:
            if self.restart_rc == 0 and self.restart_changes_pid:
                self.main_pid += 1
            return Result(self.restart_rc, "", "" if self.restart_rc == 0 else "Access denied\n")
        if argv == START_FREE_DISK:
            if self.start_rc == 0 and self.disk:
                self.disk.avail += 5_000_000
            return Result(self.start_rc, "", "" if self.start_rc == 0 else "Job failed\n")
        if argv == ["systemctl", "show", "-p", "Result", "--value", "titan-free-disk.service"]:
            return Result(0, f"{self.free_disk_result}\n", "")
        raise AssertionError(f"unexpected command {argv}")

    def count(self, argv):
        return sum(1 for c in self.calls if c == argv)


class FakeDisk:
    def __init__(self, avail=1_000_000_000):
        self.avail = avail

    def __call__(self, path):
        assert path == "/"
        return types.SimpleNamespace(f_bavail=self.avail, f_frsize=1, f_blocks=4 * 10 ** 9)


@dataclasses.dataclass
class Harness:
    agent: Agent
    runner: FakeRunner
    clock: FakeClock
    out: io.StringIO
    port: int
    metrics_port: int
    health: list
    health_status: list

    def post(self, body, headers=None, path="/grafana"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    def send(self, body=None, ts=None, **kw):
        """POST a payload signed now (or at ts)."""
        body = grafana_payload() if body is None else body
        return self.post(body, signed_headers(body, self.clock.time() if ts is None else ts), **kw)

    def audit(self):
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    def last_audit(self):
        return self.audit()[-1]

    def metrics(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            assert resp.status == 200
            return resp.read().decode()
        finally:
            conn.close()


def make_config(state_dir, **overrides):
    settings = dict(secret=SECRET, host=HOST, state_dir=str(state_dir), mode="on",
                    listen=("127.0.0.1", 0), metrics_listen=("127.0.0.1", 0),
                    allowed_sources=frozenset({"127.0.0.1"}))
    settings.update(overrides)
    return C.Config(**settings)


@contextlib.contextmanager
def running_agent(state_dir, runner=None, clock=None, disk=None, **overrides):
    """The real HTTP servers on 127.0.0.1:0 around an Agent with fakes; shut down on exit."""
    state_dir.mkdir(exist_ok=True)
    disk = disk or FakeDisk()
    runner = runner or FakeRunner(disk)
    clock = clock or FakeClock()
    health = []  # the URLs checked; the fake app answers 200 unless told otherwise

    def http_get(url, timeout):
        health.append(url)
        return health_status[0]

    health_status = [200]
    out = io.StringIO()
    agent = Agent(make_config(state_dir, **overrides), runner=runner, clock=clock, http_get=http_get,
                  statvfs=disk, stream=out)
    servers = serve(agent, poll_interval=0.02)
    harness = Harness(agent, runner, clock, out, servers[0].server_address[1], servers[1].server_address[1], health,
                      health_status)
    try:
        yield harness
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
