"""One JSON line per decision on stdout (the journal, then Loki) and the counter
titan_remediation_actions_total{action,result}."""
import datetime
import json
import sys
import threading

from prometheus_client import CollectorRegistry, Counter

from remediation import config as C


class Audit:
    def __init__(self, stream=None, registry=None, clock=None):
        self.stream = stream or sys.stdout
        self.registry = registry or CollectorRegistry()
        self.clock = clock
        self._lock = threading.Lock()
        self.actions_total = Counter(
            C.METRIC,
            "Remediation decisions, by action (none: refused before an action was read) and result.",
            ["action", "result"], registry=self.registry)
        # Every series exists from the start at 0, so increase() in the alert
        # rules sees the first decision of each kind.
        for action in C.ACTIONS:
            for result in C.DECISIONS:
                self.actions_total.labels(action=action, result=result)
        self.actions_total.labels(action=C.NO_ACTION, result=C.REFUSED)

    def record(self, decision, action, reason, alertname="", fingerprint="", host="", **fields):
        line = {"event": "remediation", "decision": decision, "action": action, "reason": reason,
                "alertname": alertname, "fingerprint": fingerprint, "host": host, **fields}
        if self.clock is not None:
            line["ts"] = datetime.datetime.fromtimestamp(self.clock.time(), datetime.timezone.utc).isoformat()
        text = json.dumps(line, sort_keys=True, separators=(",", ":"))
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()
        self.actions_total.labels(action=action, result=decision).inc()
        return line
