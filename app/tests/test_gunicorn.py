"""Titan under real gunicorn, started with app/bin/titan-serve like the systemd unit."""
import json
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from titan.readiness import ready_pids

from support import (APP_DIR, PYTHON, child_env, read_log, request, titan_server, wait_for, wait_workers_ready,
                     worker_pids)


def scrape(port):
    status, _, body = request(port, "GET", "/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(body.decode()) for s in f.samples}


def count(samples, method, endpoint, status):
    key = ("http_requests_total", (("endpoint", endpoint), ("method", method), ("status", status)))
    return samples.get(key, 0)


# Loaded by every Python process the server starts (sitecustomize on PYTHONPATH): the
# first worker to load the app boots at once, every other one sleeps first.
SLOW_BOOT = """
import os, time
if os.environ.get("SLOW_BOOT_MARK"):
    from gunicorn.workers import base
    load_wsgi = base.Worker.load_wsgi

    def slow_load_wsgi(self):
        try:
            os.close(os.open(os.environ["SLOW_BOOT_MARK"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            time.sleep(4)
        load_wsgi(self)

    base.Worker.load_wsgi = slow_load_wsgi
"""


def test_the_server_is_handed_over_only_once_every_worker_serves(tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_BOOT)
    with titan_server(tmp_path, TITAN_WORKERS="3", SLOW_BOOT_MARK=str(tmp_path / "first-booted"),
                      PYTHONPATH=f"{hooks}:{APP_DIR}") as server:
        assert (tmp_path / "first-booted").exists()  # the slow boot really happened
        workers = worker_pids(server.proc.pid)
        assert len(workers) == 3 and workers <= ready_pids(server.log.read_text())


def test_requests_over_several_workers_are_counted_exactly_once(tmp_path):
    n = 300
    with titan_server(tmp_path, TITAN_LATENCY_MIN_MS="1", TITAN_LATENCY_MAX_MS="5") as (port, proc, _, _):
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
    with titan_server(tmp_path, TITAN_LATENCY_MIN_MS="3000", TITAN_LATENCY_MAX_MS="3000") as server:
        port, mp_dir = server.port, server.mp_dir
        for _ in range(4):
            assert request(port, "GET", "/health")[0] == 200

        def in_flight():
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=mp_dir)
            return registry.get_sample_value("http_requests_in_flight")

        with ThreadPoolExecutor(2) as pool:
            slow = [pool.submit(request, port, "GET", "/process") for _ in range(2)]
            wait_for(lambda: in_flight() == 2, 20, "both workers to be busy")
            victims = worker_pids(server.proc.pid)
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            for f in slow:
                try:
                    f.result()
                except OSError:
                    pass  # the connection died with its worker
        wait_workers_ready(server, 2, replacing=victims)
        assert request(port, "GET", "/health")[0] == 200
        samples = scrape(port)
        # Without child_exit -> mark_process_dead the killed workers' gauges would add 2.
        assert samples[("http_requests_in_flight", ())] == 1
        # The 4 counted by the killed workers are kept, plus the one after the replacement.
        assert count(samples, "GET", "/health", "200") == 5


def test_restart_starts_from_an_empty_metrics_directory(tmp_path):
    mp_dir = str(tmp_path / "prom")
    for sent in (5, 3):
        with titan_server(tmp_path, TITAN_WORKERS="1", PROMETHEUS_MULTIPROC_DIR=mp_dir) as (port, _, _, _):
            for _ in range(sent):
                assert request(port, "GET", "/health")[0] == 200
            assert count(scrape(port), "GET", "/health", "200") == sent


def test_metrics_disabled_under_gunicorn(tmp_path):
    with titan_server(tmp_path, TITAN_METRICS_ENABLED="false") as (port, _, mp_dir, _):
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
