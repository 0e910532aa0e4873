import collections
import random
import signal
import subprocess

import pytest

from support import APP_DIR, PYTHON, StubServer, child_env, free_port, parse_logfmt, stop_process, wait_for
from titan.traffic import pick_request


def start_generator(tmp_path, *args):
    stderr = open(tmp_path / "traffic.log", "w+")
    proc = subprocess.Popen([PYTHON, "-m", "titan.traffic", *args], cwd=APP_DIR, env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    return proc, stderr


def test_mix_covers_every_endpoint_with_some_bad_requests():
    rng = random.Random(42)
    picks = [pick_request(rng) for _ in range(20_000)]
    kinds = collections.Counter((m, p.split("?")[0] if not p.startswith("/no-such-page/") else "unknown")
                                for m, p, _, _ in picks)
    for expected in [("GET", "/"), ("GET", "/health"), ("GET", "/process"), ("GET", "/generate_logs"),
                     ("GET", "/api/transactions"), ("POST", "/api/transactions"), ("GET", "unknown"),
                     ("DELETE", "/health")]:
        assert kinds[expected] > 0, expected
    assert not any(p.startswith("/metrics") for _, p, _, _ in picks)
    # /process dominates, like the app's real work would.
    assert kinds[("GET", "/process")] == max(kinds.values())
    bad = sum(1 for m, p, body, _ in picks
              if m == "DELETE" or p.startswith("/no-such-page/") or p.split("count=")[-1] in ("abc", "0", "5000")
              or (body and ("-5" in body or body.endswith(","))))
    assert 0.05 < bad / len(picks) < 0.12


@pytest.mark.parametrize("args,message", [
    (["--rate", "0.05"], "--rate/TITAN_TRAFFIC_RATE='0.05': expected a number from 0.1 to 50.0"),
    (["--rate", "51"], "--rate/TITAN_TRAFFIC_RATE='51'"),
    (["--rate", "fast"], "--rate/TITAN_TRAFFIC_RATE='fast'"),
    (["--rate", "nan"], "--rate/TITAN_TRAFFIC_RATE='nan'"),
    (["--concurrency", "0"], "--concurrency/TITAN_TRAFFIC_CONCURRENCY='0'"),
    (["--target", "ftp://example"], "expected an http:// URL"),
    (["--target", "http://127.0.0.1:99999"], "invalid port"),
    (["--max-backoff", "0"], "--max-backoff/TITAN_TRAFFIC_MAX_BACKOFF='0'"),
])
def test_bad_arguments_are_refused(args, message):
    result = subprocess.run([PYTHON, "-m", "titan.traffic", *args], cwd=APP_DIR, env=child_env(),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr


def test_rate_from_the_environment_is_validated_too():
    result = subprocess.run([PYTHON, "-m", "titan.traffic"], cwd=APP_DIR, env=child_env(TITAN_TRAFFIC_RATE="100"),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "TITAN_TRAFFIC_RATE='100'" in result.stderr


def test_rate_stays_within_the_bound(tmp_path):
    rate, seconds = 10, 4
    with StubServer() as stub:
        proc, log = start_generator(tmp_path, "--target", f"http://127.0.0.1:{stub.port}",
                                    "--rate", str(rate), "--duration", str(seconds))
        try:
            assert proc.wait(seconds + 20) == 0
        finally:
            stop_process(proc)
        sent = len(stub.requests)
    # Jitter is +-50% around 1/rate and missed ticks are never caught up, so
    # the count cannot exceed the mean by much; a loaded machine only lowers it.
    assert 0.6 * rate * seconds <= sent <= 1.25 * rate * seconds + 1, sent
    log.seek(0)
    assert "msg=\"traffic stopped\"" in log.read()


def test_survives_the_target_being_down_then_up_and_stops_on_sigterm(tmp_path):
    port = free_port()
    proc, log = start_generator(tmp_path, "--target", f"http://127.0.0.1:{port}", "--rate", "20",
                                "--max-backoff", "0.5")
    try:
        def logged(text):
            log.seek(0)
            return text in log.read()

        wait_for(lambda: logged("msg=\"request failed\""), 20, "a connection error to be logged")
        assert proc.poll() is None
        with StubServer(port) as stub:
            wait_for(lambda: len(stub.requests) >= 5, 20, "requests to reach the target once it is up")
            proc.send_signal(signal.SIGTERM)
            # The generator is one process (threads only): its exit is the stop. Requests it
            # sent before may still sit in the stub's queue, so the stub's count proves nothing.
            assert proc.wait(20) == 0
    finally:
        stop_process(proc)
    log.seek(0)
    records = [parse_logfmt(line) for line in log]
    stats = [r for r in records if r["msg"] == "traffic stats"][-1]
    assert int(stats["connection_errors"]) >= 1 and int(stats["ok"]) >= 5
    assert records[-1]["msg"] == "traffic stopped"
