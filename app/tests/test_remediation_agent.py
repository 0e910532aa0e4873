"""The agent over real HTTP on 127.0.0.1 with a fake runner and clock: what it
acts on, and every refusal (which must change nothing: the runner untouched)."""
import json

import pytest

from remediation import config as C
from remediation_support import (HOST, RESTART, SECRET, START_FREE_DISK, FakeClock, grafana_alert,
                                 grafana_payload, running_agent, signed_headers)


@pytest.fixture
def agent(tmp_path):
    with running_agent(tmp_path / "state") as h:
        yield h


def assert_refused(h, status, doc, http_status, reason):
    assert status == http_status, doc
    assert doc["reason"] == reason
    line = h.last_audit()
    assert (line["event"], line["decision"], line["action"], line["reason"], line["status"]) == \
        ("remediation", "refused", "none", reason, http_status)
    assert h.runner.calls == []


def decisions(h, status, doc):
    """The (decision, action, reason) of each alert; the response's entries are the audit lines."""
    assert status == 200, doc
    assert doc["decisions"] == h.audit()[len(h.audit()) - len(doc["decisions"]):]
    assert all(line["event"] == "remediation" for line in doc["decisions"])
    return [(d["decision"], d["action"], d["reason"]) for d in doc["decisions"]]


def test_valid_signature_restarts_the_app_once_then_the_same_alert_is_a_duplicate(agent):
    status, doc = agent.send()
    assert status == 200, doc
    (line,) = agent.audit()
    assert line["decision"] == "acted" and line["action"] == "restart-app"
    assert (line["old_pid"], line["new_pid"]) == ("100", "101")
    assert (line["alertname"], line["fingerprint"], line["host"]) == ("AppNotAnswering", "a1b2c3d4e5f60718", HOST)
    assert agent.runner.count(RESTART) == 1
    assert agent.health == ["http://127.0.0.1:5000/health"]
    assert doc["decisions"] == [line]
    # Grafana's next notification of the same alert: new timestamp, so a new signature.
    agent.clock.advance(60)
    calls = len(agent.runner.calls)
    status, doc = agent.send()
    assert decisions(agent, status, doc) == [("duplicate", "restart-app",
                                              "this alert (fingerprint, startsAt) was already handled")]
    assert agent.runner.calls[calls:] == []


def test_audit_lines_are_single_json_lines_with_sorted_keys(agent):
    agent.send()
    raw = agent.out.getvalue()
    assert raw.endswith("\n") and raw.count("\n") == 1
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")) + "\n"


def test_bad_signature_is_refused(agent):
    body = grafana_payload()
    headers = signed_headers(body, agent.clock.time(), secret=b"not-the-secret")
    assert_refused(agent, *agent.post(body, headers), 401, "bad signature")


def test_signature_over_another_body_is_refused(agent):
    body = grafana_payload()
    headers = signed_headers(body, agent.clock.time())
    other = grafana_payload(grafana_alert(fingerprint="ffff"))
    assert_refused(agent, *agent.post(other, headers), 401, "bad signature")


def test_missing_signature_is_refused(agent):
    body = grafana_payload()
    headers = signed_headers(body, agent.clock.time())
    del headers[C.DEFAULT_SIGNATURE_HEADER]
    assert_refused(agent, *agent.post(body, headers), 401, "missing signature")


def test_missing_timestamp_is_refused(agent):
    body = grafana_payload()
    headers = signed_headers(body, agent.clock.time())
    del headers[C.DEFAULT_TIMESTAMP_HEADER]
    assert_refused(agent, *agent.post(body, headers), 401, "missing timestamp")


def test_old_timestamp_is_refused_as_stale(agent):
    assert_refused(agent, *agent.send(ts=agent.clock.time() - C.DEFAULT_MAX_SKEW_S - 1), 401, "stale")


def test_timestamp_at_the_edge_of_the_skew_is_accepted(agent):
    status, doc = agent.send(ts=agent.clock.time() - C.DEFAULT_MAX_SKEW_S)
    assert decisions(agent, status, doc)[0][0] == "acted"


def test_future_timestamp_is_refused(agent):
    assert_refused(agent, *agent.send(ts=agent.clock.time() + C.DEFAULT_MAX_SKEW_S + 1), 401, "future")


def test_replayed_request_is_refused(agent):
    body = grafana_payload(grafana_alert(host="titan-test-web-2"))  # no action, so only the replay matters
    headers = signed_headers(body, agent.clock.time())
    assert decisions(agent, *agent.post(body, headers)) == [("refused", "restart-app", "another host's alert")]
    agent.clock.advance(5)
    assert_refused(agent, *agent.post(body, headers), 409, "replay")


def test_replay_of_an_acted_request_changes_nothing(agent):
    body = grafana_payload()
    headers = signed_headers(body, agent.clock.time())
    agent.post(body, headers)
    calls = list(agent.runner.calls)
    status, doc = agent.post(body, headers)
    assert status == 409 and doc["reason"] == "replay"
    assert agent.runner.calls == calls


def test_another_hosts_alert_is_refused(agent):
    status, doc = agent.send(grafana_payload(grafana_alert(host="titan-test-web-2")))
    assert decisions(agent, status, doc) == [("refused", "restart-app", "another host's alert")]
    assert agent.last_audit()["host"] == "titan-test-web-2"
    assert agent.runner.calls == []


def test_loki_rules_host_label_counts_as_the_host(agent):
    status, doc = agent.send(grafana_payload(grafana_alert(host_label="host")))
    assert decisions(agent, status, doc)[0][0] == "acted"


def test_an_alert_without_host_labels_is_refused(agent):
    alert = grafana_alert()
    del alert["labels"]["instance"]
    status, doc = agent.send(grafana_payload(alert))
    assert decisions(agent, status, doc) == [("refused", "restart-app", "another host's alert")]
    assert agent.runner.calls == []


@pytest.mark.parametrize("action", ["reboot", "rm -rf /", "", None])
def test_action_not_on_the_list_is_refused(agent, action):
    status, doc = agent.send(grafana_payload(grafana_alert(action=action)))
    assert decisions(agent, status, doc) == [("refused", "none", "action not allowed")]
    assert agent.last_audit()["requested"] == (action or "")
    assert agent.runner.calls == []


def test_resolved_alert_is_not_acted_on(agent):
    status, doc = agent.send(grafana_payload(grafana_alert(status="resolved")))
    assert decisions(agent, status, doc) == [("refused", "restart-app", "not firing")]
    assert agent.runner.calls == []


@pytest.mark.parametrize("body,reason", [
    (b"not json{", "malformed payload: not JSON"),
    (b"[]", "malformed payload: top level is list, expected an object"),
    (json.dumps({"receiver": "x", "status": "firing"}).encode(), "malformed payload: alerts is missing"),
    (json.dumps({"alerts": {"0": {}}}).encode(), "malformed payload: alerts is dict, expected a list"),
    (json.dumps({"alerts": ["x"]}).encode(), "malformed payload: alerts[0] is str, expected an object"),
    (json.dumps({"alerts": [{"status": "firing", "labels": {"a": 1}, "fingerprint": "f", "startsAt": "s"}]}).encode(),
     "malformed payload: alerts[0].labels is not an object of strings"),
    (json.dumps({"alerts": [{"status": "firing", "labels": {}, "startsAt": "s"}]}).encode(),
     "malformed payload: alerts[0].fingerprint is missing, expected a string"),
    (b"\xff\xfe", "malformed payload: not JSON"),
])
def test_malformed_payload_is_refused(agent, body, reason):
    status, doc = agent.send(body)
    assert status == 400, doc
    assert doc["reason"].startswith(reason)
    line = agent.last_audit()
    assert (line["decision"], line["action"], line["status"]) == ("refused", "none", 400)
    assert line["reason"].startswith(reason)
    assert agent.runner.calls == []


def test_unknown_fields_are_ignored(agent):
    alert = grafana_alert()
    alert["imageURL"] = "http://x/y.png"
    alert["orgId"] = 1
    doc = json.loads(grafana_payload(alert))
    doc["somethingNew"] = {"nested": [1, 2]}
    status, doc = agent.send(json.dumps(doc).encode())
    assert decisions(agent, status, doc)[0][0] == "acted"


def test_oversized_body_is_refused(agent):
    body = grafana_payload(grafana_alert(padding="x" * C.MAX_BODY_BYTES))
    assert len(body) > C.MAX_BODY_BYTES
    assert_refused(agent, *agent.send(body), 413, "body too large")


def test_disallowed_source_is_refused(tmp_path):
    with running_agent(tmp_path / "state", allowed_sources=frozenset({"10.0.0.9"})) as h:
        assert_refused(h, *h.send(), 403, "source not allowed")
        assert h.last_audit()["source"] == "127.0.0.1"


def test_unknown_path_is_refused(agent):
    assert_refused(agent, *agent.send(path="/other"), 404, "unknown path")


def test_a_flood_is_cut_by_the_token_bucket(agent):
    # Correctly signed, distinct requests for another host: each would change nothing anyway,
    # so only the bucket decides; the clock stands still, so no token comes back.
    for i in range(C.FLOOD_BURST):
        body = grafana_payload(grafana_alert(host="elsewhere", fingerprint=f"f{i}"))
        assert agent.send(body)[0] == 200
    refused = [agent.send(grafana_payload(grafana_alert(fingerprint=f"g{i}"))) for i in range(3)]
    for status, doc in refused:
        assert status == 429 and doc["reason"] == "too many requests"
    assert agent.last_audit()["decision"] == "refused"
    # Wrong paths take no token back either.
    assert agent.send(path="/other")[0] == 429
    assert agent.runner.calls == []
    # One second later one token is back: the next request is served.
    agent.clock.advance(1 / C.FLOOD_REFILL_PER_S)
    status, doc = agent.send()
    assert decisions(agent, status, doc)[0][0] == "acted"


def test_fourth_restart_within_the_hour_is_rate_limited(agent):
    for i in range(3):
        status, doc = agent.send(grafana_payload(grafana_alert(fingerprint=f"fp{i}")))
        assert decisions(agent, status, doc)[0][0] == "acted"
        agent.clock.advance(600)
    status, doc = agent.send(grafana_payload(grafana_alert(fingerprint="fp3")))
    assert decisions(agent, status, doc) == [("rate_limited", "restart-app", "at most 3 restart-app per 3600 s")]
    assert agent.runner.count(RESTART) == 3
    # The window slides: an hour after the first restart, one more is allowed.
    agent.clock.advance(1800 + 1)
    status, doc = agent.send(grafana_payload(grafana_alert(fingerprint="fp3")))
    assert decisions(agent, status, doc)[0][0] == "acted"
    assert agent.runner.count(RESTART) == 4


def test_limits_are_per_action(tmp_path):
    with running_agent(tmp_path / "state", limits={"restart-app": (1, 3600), "free-disk": (1, 3600)}) as h:
        assert h.send(grafana_payload(grafana_alert(fingerprint="a")))[1]["decisions"][0]["decision"] == "acted"
        h.clock.advance(1)
        alerts = grafana_payload(grafana_alert(fingerprint="b"),
                                 grafana_alert(action="free-disk", fingerprint="c", alertname="RootDiskAlmostFull"))
        assert decisions(h, *h.send(alerts)) == [
            ("rate_limited", "restart-app", "at most 1 restart-app per 3600 s"),
            ("acted", "free-disk", "titan-free-disk.service ran; 5000000 bytes freed on /")]


def test_dry_run_runs_nothing(tmp_path):
    with running_agent(tmp_path / "state", mode="dry-run") as h:
        status, doc = h.send()
        assert decisions(h, status, doc) == [
            ("dry_run", "restart-app", "dry-run: nothing was run (TITAN_REMEDIATION_MODE=dry-run)")]
        h.clock.advance(60)
        assert decisions(h, *h.send())[0][0] == "duplicate"
        assert h.runner.calls == []
    # Switching to on later acts on the alert dry-run only pretended to handle.
    with running_agent(tmp_path / "state", clock=FakeClock(h.clock.time() + 60)) as h2:
        assert decisions(h2, *h2.send())[0][0] == "acted"


def test_off_refuses_every_action_as_disabled(tmp_path):
    with running_agent(tmp_path / "state", mode="off") as h:
        status, doc = h.send()
        assert decisions(h, status, doc) == [
            ("disabled", "restart-app", "remediation is off (TITAN_REMEDIATION_MODE=off)")]
        assert h.runner.calls == []


def test_replay_idempotency_and_limits_survive_a_restart_of_the_agent(tmp_path):
    clock = FakeClock()
    body = grafana_payload()
    headers = signed_headers(body, clock.time())
    with running_agent(tmp_path / "state", clock=clock, limits={"restart-app": (2, 3600),
                                                               "free-disk": (3, 3600)}) as h:
        assert decisions(h, *h.post(body, headers))[0][0] == "acted"
    clock.advance(10)
    with running_agent(tmp_path / "state", clock=clock, limits={"restart-app": (2, 3600),
                                                               "free-disk": (3, 3600)}) as h:
        status, doc = h.post(body, headers)
        assert status == 409 and doc["reason"] == "replay"
        assert decisions(h, *h.send())[0][0] == "duplicate"
        assert decisions(h, *h.send(grafana_payload(grafana_alert(fingerprint="second"))))[0][0] == "acted"
        clock.advance(1)
        assert decisions(h, *h.send(grafana_payload(grafana_alert(fingerprint="third"))))[0][0] == "rate_limited"
        assert h.runner.count(RESTART) == 1


def test_replay_memory_forgets_signatures_once_they_are_stale_anyway(agent):
    body = grafana_payload(grafana_alert(host="elsewhere"))
    agent.send(body)
    assert len(agent.agent.state.seen) == 1
    agent.clock.advance(C.DEFAULT_MAX_SKEW_S + 1)
    agent.send(grafana_payload(grafana_alert(host="elsewhere", fingerprint="x")))
    assert len(agent.agent.state.seen) == 1


def test_restart_that_keeps_the_old_pid_fails(agent):
    agent.runner.restart_changes_pid = False
    status, doc = agent.send()
    (line,) = doc["decisions"]
    assert line["decision"] == "failed"
    assert line["reason"] == "MainPID is still '100' (was '100') 30 s after the restart"
    assert agent.clock.monotonic() >= 1000 + C.RESTART_DEADLINE_S


def test_restart_whose_app_does_not_answer_fails(agent):
    agent.health_status[0] = 503
    status, doc = agent.send()
    (line,) = doc["decisions"]
    assert (line["decision"], line["old_pid"], line["new_pid"]) == ("failed", "100", "101")
    assert line["reason"] == "http://127.0.0.1:5000/health answered 503 30 s after the restart"


def test_restart_refused_by_polkit_fails(agent):
    agent.runner.restart_rc = 1
    (line,) = agent.send()[1]["decisions"]
    assert line["decision"] == "failed"
    assert line["reason"] == "systemctl restart titan.service exited 1: Access denied"


def test_free_disk_reports_bytes_freed(agent):
    status, doc = agent.send(grafana_payload(grafana_alert(action="free-disk", alertname="RootDiskAlmostFull")))
    (line,) = doc["decisions"]
    assert (line["decision"], line["bytes_freed"]) == ("acted", 5_000_000)
    assert agent.runner.calls == [START_FREE_DISK]


def test_free_disk_failure_reports_the_units_result(agent):
    agent.runner.start_rc = 1
    agent.runner.free_disk_result = "exit-code"
    (line,) = agent.send(grafana_payload(grafana_alert(action="free-disk")))[1]["decisions"]
    assert line["decision"] == "failed"
    assert line["reason"] == ("systemctl start titan-free-disk.service exited 1 (unit Result=exit-code): "
                              "Job failed")


def test_metrics_count_decisions(agent):
    agent.send()
    agent.post(b"{}", {})
    text = agent.metrics()
    assert 'titan_remediation_actions_total{action="restart-app",result="acted"} 1.0' in text
    assert 'titan_remediation_actions_total{action="none",result="refused"} 1.0' in text
    # Every series exists from the start, so increase() in alert rules sees the first one.
    assert 'titan_remediation_actions_total{action="free-disk",result="failed"} 0.0' in text


def test_several_alerts_in_one_payload_each_get_a_decision(agent):
    body = grafana_payload(grafana_alert(fingerprint="1"), grafana_alert(fingerprint="2", host="other"),
                           grafana_alert(fingerprint="3", status="resolved"))
    assert decisions(agent, *agent.send(body)) == [
        ("acted", "restart-app", "titan.service restarted and http://127.0.0.1:5000/health answers 200"),
        ("refused", "restart-app", "another host's alert"),
        ("refused", "restart-app", "not firing")]
    assert agent.runner.count(RESTART) == 1
    assert SECRET not in agent.out.getvalue().encode()
