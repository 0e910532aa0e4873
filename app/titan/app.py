"""The Titan Flask application: create_app(config) builds a ready WSGI app.

Every request gets a request id, one access.log line and, when metrics are on,
a count and a duration observation labelled by the route *template*; unknown
paths share one label so that scanners cannot explode the series count.
"""
import json
import math
import os
import random
import re
import time

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from titan.hang import flag_path as hang_flag_path, hold_while_flagged
from titan.logfmt import AppLogs
from titan.metrics import CONTENT_TYPE, Metrics
from titan.store import TransactionStore

UNMATCHED_ENDPOINT = "<unmatched>"
# Any other method token (clients may send anything) is counted as OTHER.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

MAX_LOG_BURST = 1000
MAX_LIST_LIMIT = 100
MAX_AMOUNT = 1_000_000
MAX_DESCRIPTION = 200
MAX_BODY_BYTES = 16 * 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_DIGITS = re.compile(r"[0-9]{1,7}")

# (level, weight, message, extra fields) for /generate_logs bursts.
_LOG_TEMPLATES = (
    ("info", 40, "cache hit", {"cache": "sessions"}),
    ("info", 25, "user signed in", {"user": "user-{n}"}),
    ("info", 15, "report exported", {"format": "csv", "rows": "{n}"}),
    ("warning", 8, "slow upstream response", {"upstream": "payments", "elapsed_ms": "{n}"}),
    ("warning", 5, "retrying queue publish", {"queue": "orders", "attempt": "2"}),
    ("error", 4, "payment gateway timeout", {"upstream": "payments", "timeout_ms": "3000"}),
    ("error", 3, "failed to charge card", {"reason": "card declined", "order": "order-{n}"}),
)
_LEVEL_NAMES = ("info", "warning", "error")

_INDEX_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Titan</title></head>
<body><h1>Titan</h1><p>A small app that produces metrics and logs.</p><ul>
<li><a href="/health">GET /health</a> liveness</li>
<li><a href="/process">GET /process</a> simulated work (random latency and failures)</li>
<li><a href="/generate_logs?count=10">GET /generate_logs?count=N&amp;level=L</a> writes N log lines (1-1000)</li>
<li><a href="/api/transactions">GET /api/transactions?limit=N</a> recent transactions;
POST a JSON body {"amount": 12.5, "currency": "EUR", "description": "..."} to create one</li>
<li><a href="/metrics">GET /metrics</a> Prometheus metrics</li>
</ul></body></html>
"""


def create_app(cfg):
    app = Flask(__name__)
    metrics = Metrics() if cfg.metrics_enabled else None
    logs = AppLogs(cfg.log_dir, on_event=metrics.count_log_line if metrics else None)
    store = TransactionStore(cfg.data_dir)
    log_weights = [t[1] for t in _LOG_TEMPLATES]
    hang_path = hang_flag_path(cfg.run_dir)

    def error(status, code, message, **extra):
        body = {"error": code, "message": message, "status": status, "request_id": g.request_id}
        body.update(extra)
        return jsonify(body), status

    # The hooks below run on every request: they resolve the request and g
    # proxies once, since each proxy access costs a context lookup.
    @app.before_request
    def start_request():
        state = g._get_current_object()
        state.start = time.perf_counter()
        incoming = request.headers.get("X-Request-ID")
        # Request ids need to be unique, not secret: a PRNG draw is cheaper than
        # a getrandom() call. The module-level generator is reseeded in every
        # forked worker, so workers never share a sequence.
        state.request_id = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else f"{random.getrandbits(64):016x}"
        # The hang demo (titan/hang.py): one stat() a request while no flag exists.
        if os.path.exists(hang_path):
            logs.event("warning", "hang demo: request held while the flag exists", flag=hang_path,
                       path=request.path, request_id=state.request_id, pid=os.getpid())
            hold_while_flagged(hang_path)

    @app.after_request
    def finish_request(response):
        state = g._get_current_object()
        req = request._get_current_object()
        seconds = time.perf_counter() - state.start
        method = req.method if req.method in KNOWN_METHODS else "OTHER"
        endpoint = _endpoint_label(app, req)
        status = response.status_code
        response.headers["X-Request-ID"] = state.request_id
        if metrics:
            metrics.observe_request(method, endpoint, str(status), seconds)
        logs.access("error" if status >= 500 else "warning" if status >= 400 else "info", {
            "method": method, "endpoint": endpoint, "path": req.path, "status": status,
            "duration_ms": round(seconds * 1000, 3), "request_id": state.request_id, "pid": os.getpid(),
        })
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc):
        code = re.sub(r"[^a-z]+", "_", (exc.name or "error").lower()).strip("_")
        resp, status = error(exc.code or 500, code, exc.description or exc.name)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return resp, status

    @app.errorhandler(Exception)
    def unexpected_error(exc):
        logs.event("error", "unhandled exception", endpoint=_endpoint_label(app, request),
                   error=f"{type(exc).__name__}: {exc}", request_id=g.request_id)
        return error(500, "internal_error", "unexpected server error")

    @app.get("/")
    def index():
        return Response(_INDEX_HTML, mimetype="text/html")

    @app.get("/health")
    def health():
        # Liveness is probed often: a preformatted body skips the JSON encoder.
        return Response(f'{{"pid":{os.getpid()},"status":"ok"}}\n', mimetype="application/json")

    @app.get("/process")
    def process():
        delay_ms = random.uniform(cfg.latency_min_ms, cfg.latency_max_ms)
        if delay_ms:
            time.sleep(delay_ms / 1000)
        if cfg.failure_rate and random.random() < cfg.failure_rate:
            if metrics:
                metrics.process_failures.inc()
            logs.event("error", "simulated processing failure", endpoint="/process",
                       latency_ms=round(delay_ms, 1), request_id=g.request_id)
            return error(500, "simulated_failure", "simulated processing failure", latency_ms=round(delay_ms, 1))
        return {"status": "ok", "request_id": g.request_id, "latency_ms": round(delay_ms, 1), "pid": os.getpid()}

    @app.route("/generate_logs", methods=["GET", "POST"])
    def generate_logs():
        raw = request.args.get("count", "10")
        if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LOG_BURST:
            return error(400, "invalid_count", f"count must be an integer from 1 to {MAX_LOG_BURST}, got {raw!r}")
        count = int(raw)
        forced = request.args.get("level")
        if forced is not None and forced not in _LEVEL_NAMES:
            return error(400, "invalid_level", f"level must be one of {', '.join(_LEVEL_NAMES)}, got {forced!r}")
        written = dict.fromkeys(_LEVEL_NAMES, 0)
        pool = [t for t in _LOG_TEMPLATES if t[0] == forced] if forced else _LOG_TEMPLATES
        weights = [t[1] for t in pool] if forced else log_weights
        for seq, (level, _, msg, extra) in enumerate(random.choices(pool, weights, k=count)):
            n = str(random.randint(1, 9999))
            fields = {k: v.replace("{n}", n) for k, v in extra.items()}
            logs.event(level, msg, endpoint="/generate_logs", burst_id=g.request_id, seq=seq, **fields)
            written[level] += 1
        return {"request_id": g.request_id, "count": count, "written": written}

    @app.get("/api/transactions")
    def list_transactions():
        raw = request.args.get("limit", "20")
        if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIST_LIMIT:
            return error(400, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, got {raw!r}")
        return {"transactions": store.recent(int(raw))}

    @app.post("/api/transactions")
    def create_transaction():
        if not request.is_json:
            return error(415, "unsupported_media_type", "send the transaction as application/json")
        # gunicorn hands over the raw (possibly chunked, unbounded) input
        # stream, so the size limit is enforced while reading.
        too_big = error(413, "payload_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return too_big
        raw = request.stream.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            return too_big
        try:
            body = json.loads(raw, parse_constant=_reject_constant)
        except ValueError as exc:
            return error(400, "malformed_json", f"request body is not valid JSON: {exc}")
        fields, problems = _validate_transaction(body)
        if problems:
            return error(400, "validation_failed", "the transaction is invalid", details=problems)
        created = store.create(**fields)
        if metrics:
            metrics.transactions_created.inc()
        logs.event("info", "transaction created", endpoint="/api/transactions", transaction_id=created["id"],
                   amount=created["amount"], currency=created["currency"], request_id=g.request_id)
        return created, 201

    if metrics:
        @app.get("/metrics")
        def metrics_endpoint():
            return Response(metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app.wsgi_app = _InFlight(app.wsgi_app, metrics.in_flight) if metrics else app.wsgi_app
    logs.event("info", "worker started", pid=os.getpid(), metrics_enabled=cfg.metrics_enabled,
               failure_rate=cfg.failure_rate, latency_min_ms=cfg.latency_min_ms, latency_max_ms=cfg.latency_max_ms)
    return app


class _InFlight:
    """WSGI middleware counting requests in progress, whatever happens inside."""

    def __init__(self, wsgi_app, gauge):
        self._wsgi_app = wsgi_app
        self._gauge = gauge

    def __call__(self, environ, start_response):
        self._gauge.inc()
        try:
            return self._wsgi_app(environ, start_response)
        finally:
            self._gauge.dec()


def _endpoint_label(app, req):
    """The route template that served the request, never the raw path."""
    rule = req.url_rule
    if rule is not None:
        return rule.rule
    exc = req.routing_exception
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        # The path exists for other methods: label it with that route's template.
        adapter = app.url_map.bind_to_environ(req.environ)
        matched, _ = adapter.match(method=exc.valid_methods[0], return_rule=True)
        return matched.rule
    return UNMATCHED_ENDPOINT


def _reject_constant(name):
    raise ValueError(f"{name} is not allowed")


def _validate_transaction(body):
    """(fields for TransactionStore.create, {field: problem}) for a request body."""
    if not isinstance(body, dict):
        return None, {"body": "expected a JSON object"}
    problems = {}
    unknown = sorted(set(body) - {"amount", "currency", "description"})
    if unknown:
        problems["body"] = f"unexpected field(s): {', '.join(unknown)}"
    amount = body.get("amount")
    cents = None
    # bool is a subclass of int in Python, but true is not an amount.
    if not isinstance(amount, (int, float)) or isinstance(amount, bool):
        problems["amount"] = "required, a number"
    elif not 0 < amount <= MAX_AMOUNT:
        problems["amount"] = f"must be greater than 0 and at most {MAX_AMOUNT}"
    else:
        cents = round(amount * 100)
        if not math.isclose(cents, amount * 100, abs_tol=1e-6):
            problems["amount"] = "at most 2 decimal places"
    currency = body.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        problems["currency"] = "required, a 3-letter uppercase ISO 4217 code such as EUR"
    description = body.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        problems["description"] = f"optional, a string of at most {MAX_DESCRIPTION} characters"
    if problems:
        return None, problems
    return {"amount_cents": cents, "currency": currency, "description": description}, {}
