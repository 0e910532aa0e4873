"""Grafana's webhook payload, parsed to exactly the fields the agent uses.

Shape (grafana/alerting receivers/webhook/v1/webhook.go, webhookMessage):
version, groupKey, truncatedAlerts, orgId, title, state, message, plus the
embedded templates.ExtendedData (grafana/alerting templates/template_data.go):
receiver, status, alerts, groupLabels, commonLabels, commonAnnotations,
externalURL; each ExtendedAlert has status, labels, annotations, startsAt,
endsAt, generatorURL, fingerprint, silenceURL, dashboardURL, panelURL, values,
valueString (imageURL, embeddedImage, orgId when set). Labels are string maps
(alertmanager template.KV). Unknown fields are ignored; a payload without an
`alerts` list, or an alert without the fields used, is refused.
A custom payload template on the contact point would change this shape, so the
contact point must not set one.
"""
import dataclasses
import json

from remediation import config as C
from remediation.signature import Refusal


@dataclasses.dataclass(frozen=True)
class Alert:
    status: str
    labels: dict
    fingerprint: str
    starts_at: str

    @property
    def alertname(self):
        return self.labels.get("alertname", "")

    @property
    def host(self):
        # Prometheus-based rules carry `instance`; Loki-based rules carry `host`.
        return self.labels.get("instance") or self.labels.get("host") or ""

    @property
    def action(self):
        return self.labels.get(C.REMEDIATION_LABEL, "")


def _bad(what):
    return Refusal(400, f"malformed payload: {what}")


def _string(obj, key, where):
    value = obj.get(key)
    if not isinstance(value, str):
        raise _bad(f"{where}.{key} is {type(value).__name__ if key in obj else 'missing'}, expected a string")
    return value


def parse(body):
    """The alerts of a webhook body; Refusal(400) when it is not Grafana's shape."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise _bad(f"top level is {type(doc).__name__}, expected an object")
    alerts = doc.get("alerts")
    if not isinstance(alerts, list):
        raise _bad("alerts is missing" if "alerts" not in doc else f"alerts is {type(alerts).__name__}, expected a list")
    parsed = []
    for i, item in enumerate(alerts):
        where = f"alerts[{i}]"
        if not isinstance(item, dict):
            raise _bad(f"{where} is {type(item).__name__}, expected an object")
        labels = item.get("labels")
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise _bad(f"{where}.labels is not an object of strings")
        parsed.append(Alert(status=_string(item, "status", where), labels=dict(labels),
                            fingerprint=_string(item, "fingerprint", where),
                            starts_at=_string(item, "startsAt", where)))
    return parsed
