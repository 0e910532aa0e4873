"""Benchmark: the cost of Titan's instrumentation, and gunicorn vs the Flask dev server.

Run from anywhere: /usr/bin/python3 app/bench/bench.py [--duration S] [--rounds N]
Needs wrk (Debian package wrk). Everything runs on 127.0.0.1 with zero
simulated latency and failure rate 0:
  * gunicorn, 2 sync workers (app/bin/titan-serve), metrics on: /health, /process
  * the same with TITAN_METRICS_ENABLED=false: /health, /process
  * the Flask development server (app.run(threaded=True)), metrics on: /health
Each comparison is measured back to back in every round, in alternating
order, and the median of the per-round ratios is kept, so drift in the
machine's speed affects both sides alike. Prints a Markdown table
and the ratios, and exits 1 when a target is missed:
  * instrumentation costs less than 15% of throughput (per endpoint)
  * gunicorn /health with metrics and logs on serves >= 2x the dev server
"""
import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

APP_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None
MAX_COST = 0.15
MIN_GUNICORN_VS_DEV = 2.0

_DEV_SERVER = """
import os, sys
from titan.app import create_app
from titan.config import load_config
cfg = load_config(os.environ)
create_app(cfg).run(host="127.0.0.1", port=cfg.port, threaded=True)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: server on port {port} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"bench: server on port {port} did not come up")


@contextlib.contextmanager
def server(kind, workdir, metrics, threads):
    port = free_port()
    base = os.path.join(workdir, f"{kind}-{port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TITAN_", "PROMETHEUS_"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=APP_DIR, TITAN_BIND="127.0.0.1", TITAN_PORT=str(port),
               TITAN_WORKERS="2", TITAN_THREADS=str(threads), TITAN_LOG_DIR=f"{base}/log", TITAN_DATA_DIR=f"{base}/data",
               TITAN_FAILURE_RATE="0", TITAN_LATENCY_MIN_MS="0", TITAN_LATENCY_MAX_MS="0",
               TITAN_METRICS_ENABLED="true" if metrics else "false")
    if kind == "gunicorn":
        # On a tmpfs, as in production (/run/titan); /tmp may be a disk.
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="titan-bench-prom-", dir=SHM)
        cmd = [os.path.join(APP_DIR, "bin", "titan-serve")]
    else:
        cmd = [PYTHON, "-c", _DEV_SERVER]
    proc = subprocess.Popen(cmd, env=env, cwd=APP_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until_up(port, proc)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if "PROMETHEUS_MULTIPROC_DIR" in env:
            shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * _UNITS[unit]


def wrk(port, path, seconds, connections):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"bench: {errors.group(1)} error responses from {path}:\n{out}")
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
    }


def main():
    p = argparse.ArgumentParser(description="Titan benchmark (see the module docstring).")
    p.add_argument("--duration", type=int, default=2, help="seconds per measurement (default 2)")
    p.add_argument("--rounds", type=int, default=6, help="rounds of paired measurements (default 6)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument("--threads", type=int, default=1, help="TITAN_THREADS for gunicorn (default 1: sync workers)")
    args = p.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is not installed (Debian package wrk)")

    g_on_health, g_off_health = ("gunicorn", True, "/health"), ("gunicorn", False, "/health")
    g_on_process, g_off_process = ("gunicorn", True, "/process"), ("gunicorn", False, "/process")
    dev_health = ("flask-dev", True, "/health")
    cases = [g_on_health, g_off_health, g_on_process, g_off_process, dev_health]
    # Each comparison is measured back to back, in alternating order, every
    # round; the ratio kept is the median of the per-round ratios. This VM's
    # throughput drifts by tens of percent, which pairing cancels out.
    pairs = {"health_cost": (g_on_health, g_off_health), "process_cost": (g_on_process, g_off_process),
             "vs_dev": (g_on_health, dev_health)}
    runs = {case: [] for case in cases}
    ratios = {name: [] for name in pairs}
    with tempfile.TemporaryDirectory(prefix="titan-bench-") as workdir, contextlib.ExitStack() as stack:
        ports = {(kind, metrics): stack.enter_context(server(kind, workdir, metrics, args.threads))
                 for kind, metrics in {(k, m) for k, m, _ in cases}}
        for kind, metrics, path in cases:  # warm-up: imports, SQLite, first metric files
            wrk(ports[kind, metrics], path, 1, args.connections)
        for round_no in range(args.rounds):
            for name, pair in pairs.items():
                measured = {}
                for case in pair if round_no % 2 == 0 else reversed(pair):
                    kind, metrics, path = case
                    measured[case] = wrk(ports[kind, metrics], path, args.duration, args.connections)
                    runs[case].append(measured[case])
                ratios[name].append(measured[pair[0]]["rps"] / measured[pair[1]]["rps"])

    result = {case: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
              for case, rs in runs.items()}
    ratio = {name: statistics.median(values) for name, values in ratios.items()}
    print(f"wrk -t1 -c{args.connections} -d{args.duration}s --latency, {args.rounds} rounds of paired measurements "
          f"(medians), {os.cpu_count()} CPUs, zero simulated latency, failure rate 0\n")
    print("| server | metrics | endpoint | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---:|---:|---:|")
    for (kind, metrics, path), r in result.items():
        workers = "sync" if args.threads == 1 else f"gthread x{args.threads}"
        server_name = f"gunicorn, 2 {workers} workers" if kind == "gunicorn" else "Flask dev server (threaded)"
        print(f"| {server_name} | {'on' if metrics else 'off'} | {path} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} |")
    print()

    ok = True
    for name, path in (("health_cost", "/health"), ("process_cost", "/process")):
        cost = 1 - ratio[name]
        met = cost < MAX_COST
        ok &= met
        print(f"- instrumentation cost on {path}: {cost:.1%} of throughput (on/off = {ratio[name]:.2f}); "
              f"target < {MAX_COST:.0%}: {'met' if met else 'MISSED'}")
    met = ratio["vs_dev"] >= MIN_GUNICORN_VS_DEV
    ok &= met
    print(f"- gunicorn vs Flask dev server on /health, metrics on: {ratio['vs_dev']:.2f}x; "
          f"target >= {MIN_GUNICORN_VS_DEV:.0f}x: {'met' if met else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
