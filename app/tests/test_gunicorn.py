"""Titan under real gunicorn, started with app/bin/titan-serve like the systemd unit."""
import json
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from support import APP_DIR, PYTHON, child_env, read_log, request, titan_server, wait_for


def scrape(port):
    status, _, body = request(port, "GET", "/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(body.decode()) for s in f.samples}


def count(samples, method, endpoint, status):
    key = ("http_requests_total", (("endpoint", endpoint), ("method", method), ("status", status)))
    return samples.get(key, 0)


def worker_pids(master_pid):
    with open(f"/proc/{master_pid}/task/{master_pid}/children") as f:
        return {int(p) for p in f.read().split()}


def test_requests_over_several_workers_are_counted_exactly_once(tmp_path):
    n = 300
    with titan_server(tmp_path, TITAN_LATENCY_MIN_MS="1", TITAN_LATENCY_MAX_MS="5") as (port, proc, _):
        def hit(_):
            status, headers, body = request(port, "GET", "/process")
            return status, json.loads(body)["pid"]

        # Concurrent clients keep one worker busy so the other accepts too.
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(hit, range(n)))
        assert {status for status, _ in results} == {200}
        pids = {pid for _, pid in results}
        assert len(pids) >= 2, f"only {pids} served"
        assert pids <= worker_pids(proc.pid)
        samples = scrape(port)
        assert count(samples, "GET", "/process", "200") == n
        assert samples[("http_request_duration_seconds_count", (("endpoint", "/process"), ("method", "GET")))] == n
        assert samples[("http_requests_in_flight", ())] == 1  # the scrape itself
        access = [r for r in read_log(tmp_path / "log" / "access.log") if r["endpoint"] == "/process"]
        assert len(access) == n and {int(r["pid"]) for r in access} == pids


def test_dead_workers_leave_counters_but_not_in_flight_gauges(tmp_path):
    with titan_server(tmp_path, TITAN_LATENCY_MIN_MS="3000", TITAN_LATENCY_MAX_MS="3000") as (port, proc, mp_dir):
        for _ in range(4):
            assert request(port, "GET", "/health")[0] == 200

        def in_flight():
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=mp_dir)
            return registry.get_sample_value("http_requests_in_flight")

        with ThreadPoolExecutor(2) as pool:
            slow = [pool.submit(request, port, "GET", "/process") for _ in range(2)]
            wait_for(lambda: in_flight() == 2, 20, "both workers to be busy")
            victims = worker_pids(proc.pid)
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            for f in slow:
                try:
                    f.result()
                except OSError:
                    pass  # the connection died with its worker
        wait_for(lambda: len(worker_pids(proc.pid) - victims) == 2, 30, "gunicorn to replace the workers")
        wait_for(lambda: request(port, "GET", "/health")[0] == 200, 30, "a replaced worker to answer")
        samples = scrape(port)
        # Without child_exit -> mark_process_dead the killed workers' gauges would add 2.
        assert samples[("http_requests_in_flight", ())] == 1
        assert count(samples, "GET", "/health", "200") >= 5  # counts from dead workers are kept


def test_restart_starts_from_an_empty_metrics_directory(tmp_path):
    mp_dir = str(tmp_path / "prom")
    for sent in (5, 3):
        with titan_server(tmp_path, TITAN_WORKERS="1", PROMETHEUS_MULTIPROC_DIR=mp_dir) as (port, _, _):
            for _ in range(sent - 1):  # titan_server's readiness check sent one already
                request(port, "GET", "/health")
            assert count(scrape(port), "GET", "/health", "200") == sent


def test_metrics_disabled_under_gunicorn(tmp_path):
    with titan_server(tmp_path, TITAN_METRICS_ENABLED="false") as (port, _, mp_dir):
        assert request(port, "GET", "/process")[0] == 200
        assert request(port, "GET", "/metrics")[0] == 404
        assert os.listdir(mp_dir) == []


def test_invalid_configuration_stops_startup_with_a_clear_message(tmp_path):
    serve = os.path.join(APP_DIR, "bin", "titan-serve")
    result = subprocess.run([serve], env=child_env(TITAN_WORKERS="0", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "p")),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "TITAN_WORKERS='0': expected an integer from 1 to 32" in result.stderr
    # gunicorn started directly with the config file refuses too.
    direct = subprocess.run([PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py", "titan.wsgi:app"], cwd=APP_DIR,
                            env=child_env(TITAN_PORT="99999"), capture_output=True, text=True, timeout=30)
    assert direct.returncode != 0
    assert "TITAN_PORT='99999': expected an integer from 1 to 65535" in direct.stderr
