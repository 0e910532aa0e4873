import json
import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support import read_log
from titan.metrics import DURATION_BUCKETS
from titan.store import TransactionStore

REQUIRED_ACCESS_KEYS = {"ts", "level", "msg", "endpoint", "status", "duration_ms", "request_id", "method", "path", "pid"}


def scrape(client):
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(resp.get_data(as_text=True))}


def sample_value(families, family, sample_name, **labels):
    for s in families[family].samples:
        if s.name == sample_name and s.labels == labels:
            return s.value
    return None


def requests_total(families, method, endpoint, status):
    return sample_value(families, "http_requests", "http_requests_total",
                        method=method, endpoint=endpoint, status=status) or 0


def post_json(client, body, **kw):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/api/transactions", data=data, content_type=kw.pop("content_type", "application/json"), **kw)


def test_index_lists_the_endpoints(client):
    resp = client.get("/")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    page = resp.get_data(as_text=True)
    for path in ("/health", "/process", "/generate_logs", "/api/transactions", "/metrics"):
        assert f'href="{path}' in page


def test_health(client):
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.json["status"] == "ok" and isinstance(resp.json["pid"], int)
    assert len(resp.headers["X-Request-ID"]) == 16


def test_request_id_is_taken_from_a_sane_header_only(client):
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    replaced = client.get("/health", headers={"X-Request-ID": "bad id; with spaces"}).headers["X-Request-ID"]
    assert replaced != "bad id; with spaces" and len(replaced) == 16


def test_process_success_reports_latency_within_the_configured_range(make_app):
    client = make_app(latency_min_ms=2, latency_max_ms=6).test_client()
    for _ in range(5):
        resp = client.get("/process")
        assert resp.status_code == 200
        assert 2 <= resp.json["latency_ms"] <= 6
        assert resp.json["request_id"] == resp.headers["X-Request-ID"]


def test_process_failures_are_500s_counted_and_logged(make_app, tmp_path):
    client = make_app(failure_rate=1.0).test_client()
    for _ in range(3):
        resp = client.get("/process")
        assert resp.status_code == 500
        assert resp.json["error"] == "simulated_failure"
    families = scrape(client)
    assert sample_value(families, "titan_process_failures", "titan_process_failures_total") == 3
    assert requests_total(families, "GET", "/process", "500") == 3
    errors = read_log(tmp_path / "log" / "error.log")
    assert [e["msg"] for e in errors] == ["simulated processing failure"] * 3
    assert {e["request_id"] for e in errors} == {
        a["request_id"] for a in read_log(tmp_path / "log" / "access.log") if a["status"] == "500"}


def test_process_never_fails_at_rate_zero(client):
    assert {client.get("/process").status_code for _ in range(50)} == {200}


def test_generate_logs_writes_the_burst(client, tmp_path):
    resp = client.get("/generate_logs?count=40")
    assert resp.status_code == 200
    written = resp.json["written"]
    assert sum(written.values()) == resp.json["count"] == 40
    burst = [r for name in ("app.log", "error.log") for r in read_log(tmp_path / "log" / name)
             if r.get("burst_id") == resp.json["request_id"]]
    assert sorted(int(r["seq"]) for r in burst) == list(range(40))
    for level in ("info", "warning", "error"):
        assert sum(1 for r in burst if r["level"] == level) == written[level]
    assert all(r["level"] == "error" for r in read_log(tmp_path / "log" / "error.log"))


def test_generate_logs_forced_level(client, tmp_path):
    resp = client.post("/generate_logs?count=7&level=error")
    assert resp.json["written"] == {"info": 0, "warning": 0, "error": 7}
    assert len(read_log(tmp_path / "log" / "error.log")) == 7


@pytest.mark.parametrize("query", ["count=abc", "count=0", "count=1001", "count=-1", "count=1.5", "count=",
                                   "count=99999999", "count=%201"])
def test_generate_logs_rejects_bad_counts(client, query):
    resp = client.get(f"/generate_logs?{query}")
    assert resp.status_code == 400
    assert resp.json["error"] == "invalid_count" and "from 1 to 1000" in resp.json["message"]


def test_generate_logs_rejects_unknown_level(client):
    resp = client.get("/generate_logs?count=1&level=fatal")
    assert resp.status_code == 400 and resp.json["error"] == "invalid_level"


def test_transactions_round_trip(client, tmp_path):
    first = post_json(client, {"amount": 12.5, "currency": "EUR", "description": "books"})
    second = post_json(client, {"amount": 3, "currency": "USD"})
    assert first.status_code == second.status_code == 201
    assert first.json["amount"] == 12.5 and first.json["currency"] == "EUR" and first.json["description"] == "books"
    assert second.json["description"] == ""
    listed = client.get("/api/transactions").json["transactions"]
    assert [t["id"] for t in listed] == [second.json["id"], first.json["id"]]
    assert len(client.get("/api/transactions?limit=1").json["transactions"]) == 1
    # Stored on disk, in the configured data directory.
    assert len(TransactionStore(str(tmp_path / "data")).recent(10)) == 2
    families = scrape(client)
    assert sample_value(families, "titan_transactions_created", "titan_transactions_created_total") == 2


@pytest.mark.parametrize("body,field", [
    ({"currency": "EUR"}, "amount"), ({"amount": "12", "currency": "EUR"}, "amount"),
    ({"amount": True, "currency": "EUR"}, "amount"), ({"amount": -1, "currency": "EUR"}, "amount"),
    ({"amount": 0, "currency": "EUR"}, "amount"), ({"amount": 1_000_001, "currency": "EUR"}, "amount"),
    ({"amount": 1.234, "currency": "EUR"}, "amount"), ({"amount": 5}, "currency"),
    ({"amount": 5, "currency": "eur"}, "currency"), ({"amount": 5, "currency": 978}, "currency"),
    ({"amount": 5, "currency": "EUR", "description": "x" * 201}, "description"),
    ({"amount": 5, "currency": "EUR", "description": 7}, "description"),
    ({"amount": 5, "currency": "EUR", "admin": True}, "body"), ([1, 2], "body"), ('"a JSON string"', "body"),
])
def test_transaction_validation(client, body, field):
    resp = post_json(client, body)
    assert resp.status_code == 400
    assert resp.json["error"] == "validation_failed"
    assert field in resp.json["details"]
    assert client.get("/api/transactions").json["transactions"] == []


@pytest.mark.parametrize("raw", ['{"amount": 12.5,', "not json", '{"amount": NaN, "currency": "EUR"}',
                                 '{"amount": Infinity, "currency": "EUR"}', b"\xff\xfe"])
def test_malformed_json_is_a_400(client, raw):
    resp = post_json(client, raw)
    assert resp.status_code == 400 and resp.json["error"] == "malformed_json"


def test_wrong_content_type_and_oversized_body(client):
    assert post_json(client, '{"amount": 1, "currency": "EUR"}', content_type="text/plain").status_code == 415
    big = json.dumps({"amount": 1, "currency": "EUR", "description": "x" * 20_000})
    resp = post_json(client, big)
    assert resp.status_code == 413 and resp.json["status"] == 413


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "limit=-5"])
def test_list_limit_is_validated(client, query):
    resp = client.get(f"/api/transactions?{query}")
    assert resp.status_code == 400 and resp.json["error"] == "invalid_limit"


def test_unknown_route_and_wrong_method_are_json_errors(client):
    resp = client.get("/wp-admin/setup.php")
    assert resp.status_code == 404 and resp.json["error"] == "not_found"
    resp = client.delete("/health")
    assert resp.status_code == 405 and resp.json["error"] == "method_not_allowed"
    assert set(resp.headers["Allow"].split(", ")) >= {"GET", "HEAD"}
    resp = client.open("/health", method="BREW")
    assert resp.status_code == 405
    families = scrape(client)
    assert requests_total(families, "GET", "<unmatched>", "404") == 1
    assert requests_total(families, "DELETE", "/health", "405") == 1
    assert requests_total(families, "OTHER", "/health", "405") == 1


def test_unhandled_errors_become_json_500s_and_are_logged(make_app, tmp_path, monkeypatch):
    def broken(self, limit):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(TransactionStore, "recent", broken)
    client = make_app().test_client()
    resp = client.get("/api/transactions")
    assert resp.status_code == 500 and resp.json["error"] == "internal_error"
    assert "disk on fire" not in resp.get_data(as_text=True)
    err = read_log(tmp_path / "log" / "error.log")[-1]
    assert err["msg"] == "unhandled exception" and err["error"] == "RuntimeError: disk on fire"
    assert err["endpoint"] == "/api/transactions"
    assert client.get("/health").status_code == 200


def test_metric_names_labels_and_buckets(client):
    client.get("/health")
    client.get("/process")
    client.get("/generate_logs?count=3")
    families = scrape(client)
    assert families["http_requests"].type == "counter"
    assert families["http_request_duration_seconds"].type == "histogram"
    assert families["http_requests_in_flight"].type == "gauge"
    assert families["titan_process_failures"].type == "counter"
    assert families["titan_log_lines"].type == "counter"
    assert families["titan_transactions_created"].type == "counter"
    for s in families["http_requests"].samples:
        if s.name == "http_requests_total":
            assert set(s.labels) == {"method", "endpoint", "status"}
    buckets = [s for s in families["http_request_duration_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["endpoint"] == "/process"]
    assert [float(s.labels["le"]) for s in buckets] == [*DURATION_BUCKETS, math.inf]
    assert {frozenset(s.labels) for s in buckets} == {frozenset({"method", "endpoint", "le"})}
    assert buckets[-1].value == 1
    assert sample_value(families, "http_request_duration_seconds", "http_request_duration_seconds_count",
                        method="GET", endpoint="/process") == 1
    # The scrape itself is the one request in flight.
    assert sample_value(families, "http_requests_in_flight", "http_requests_in_flight") == 1
    assert {s.labels["level"] for s in families["titan_log_lines"].samples if s.name.endswith("_total")} == {
        "info", "warning", "error"}


def test_log_line_counter_matches_the_app_and_error_files(make_app, tmp_path):
    client = make_app(failure_rate=1.0).test_client()
    client.get("/generate_logs?count=50")
    client.get("/process")
    client.get("/nope")
    families = scrape(client)
    # access.log lines are counted by http_requests_total, not here.
    events = [r for name in ("app.log", "error.log") for r in read_log(tmp_path / "log" / name)]
    for level in ("info", "warning", "error"):
        counted = sample_value(families, "titan_log_lines", "titan_log_lines_total", level=level)
        assert counted == sum(1 for r in events if r["level"] == level)
    assert sample_value(families, "titan_log_lines", "titan_log_lines_total", level="error") >= 1


def test_access_log_has_one_strict_line_per_request(client, tmp_path):
    client.get("/health")
    client.get("/process")
    client.get("/missing/page")
    post_json(client, {"amount": "x"})
    records = read_log(tmp_path / "log" / "access.log")
    assert len(records) == 4
    for r in records:
        assert REQUIRED_ACCESS_KEYS <= set(r)
        assert float(r["duration_ms"]) >= 0
    assert [(r["endpoint"], r["status"], r["level"]) for r in records] == [
        ("/health", "200", "info"), ("/process", "200", "info"), ("<unmatched>", "404", "warning"),
        ("/api/transactions", "400", "warning")]
    assert records[2]["path"] == "/missing/page"


def test_hostile_paths_are_logged_safely(client, tmp_path):
    client.get('/a b"c=d\\e')
    record = read_log(tmp_path / "log" / "access.log")[-1]
    assert record["path"] == '/a b"c=d\\e' and record["endpoint"] == "<unmatched>"


def test_unknown_paths_do_not_grow_the_series_count(client):
    def series():
        return sum(len(f.samples) for f in scrape(client).values())

    for i in range(10):
        client.get(f"/warmup/{i}")
    series()  # so that the series of /metrics itself exist before counting
    before = series()
    for i in range(1000):
        assert client.get(f"/scan/{i}/x{i}.php").status_code == 404
    families = scrape(client)
    assert sum(len(f.samples) for f in families.values()) == before
    assert requests_total(families, "GET", "<unmatched>", "404") == 1010


def test_metrics_can_be_disabled(make_app, tmp_path):
    client = make_app(metrics_enabled=False).test_client()
    assert client.get("/health").status_code == 200
    assert client.get("/process").status_code == 200
    assert client.get("/metrics").status_code == 404
    assert len(read_log(tmp_path / "log" / "access.log")) == 3
