import subprocess

import pytest

from support import APP_DIR, PYTHON, child_env
from titan.config import Config, ConfigError, load_config


def test_defaults():
    cfg = load_config({})
    assert cfg == Config()
    assert (cfg.port, cfg.bind, cfg.log_dir, cfg.workers, cfg.metrics_enabled) == (5000, "0.0.0.0", "/var/log/titan", 3, True)
    assert cfg.bind_address == "0.0.0.0:5000"


def test_every_variable_is_read():
    cfg = load_config({
        "TITAN_BIND": "::1", "TITAN_PORT": "8080", "TITAN_LOG_DIR": "/tmp/l/", "TITAN_DATA_DIR": "/tmp/d",
        "TITAN_FAILURE_RATE": "0.25", "TITAN_LATENCY_MIN_MS": "5", "TITAN_LATENCY_MAX_MS": "5",
        "TITAN_WORKERS": "4", "TITAN_THREADS": "8", "TITAN_METRICS_ENABLED": "off",
    })
    assert cfg == Config(bind="::1", port=8080, log_dir="/tmp/l", data_dir="/tmp/d", failure_rate=0.25,
                         latency_min_ms=5, latency_max_ms=5, workers=4, threads=8, metrics_enabled=False)
    assert cfg.bind_address == "[::1]:8080"


@pytest.mark.parametrize("word,expected", [("true", True), ("YES", True), ("1", True), (" on ", True),
                                           ("false", False), ("No", False), ("0", False), ("off", False)])
def test_boolean_words(word, expected):
    assert load_config({"TITAN_METRICS_ENABLED": word}).metrics_enabled is expected


BAD = [
    ("TITAN_PORT", "abc"), ("TITAN_PORT", ""), ("TITAN_PORT", "0"), ("TITAN_PORT", "65536"), ("TITAN_PORT", "-1"),
    ("TITAN_PORT", "80.5"), ("TITAN_PORT", "0x50"), ("TITAN_BIND", "localhost"), ("TITAN_BIND", "999.1.1.1"),
    ("TITAN_BIND", ""), ("TITAN_LOG_DIR", "relative/dir"), ("TITAN_LOG_DIR", ""), ("TITAN_DATA_DIR", "data"),
    ("TITAN_FAILURE_RATE", "1.5"), ("TITAN_FAILURE_RATE", "-0.1"), ("TITAN_FAILURE_RATE", "nan"),
    ("TITAN_FAILURE_RATE", "5%"), ("TITAN_FAILURE_RATE", "inf"), ("TITAN_LATENCY_MIN_MS", "-5"),
    ("TITAN_LATENCY_MIN_MS", "ten"), ("TITAN_LATENCY_MAX_MS", "10001"), ("TITAN_LATENCY_MAX_MS", "1e3"),
    ("TITAN_WORKERS", "0"), ("TITAN_WORKERS", "33"), ("TITAN_WORKERS", "two"), ("TITAN_THREADS", "0"),
    ("TITAN_THREADS", "65"), ("TITAN_METRICS_ENABLED", "maybe"), ("TITAN_METRICS_ENABLED", ""),
]


@pytest.mark.parametrize("name,value", BAD)
def test_bad_values_name_the_variable_value_and_expectation(name, value):
    with pytest.raises(ConfigError) as info:
        load_config({name: value})
    message = str(info.value)
    assert message.startswith(f"{name}={value!r}: expected ")


def test_latency_min_above_max_is_rejected():
    with pytest.raises(ConfigError, match=r"TITAN_LATENCY_MIN_MS=500 is greater than TITAN_LATENCY_MAX_MS=100"):
        load_config({"TITAN_LATENCY_MIN_MS": "500", "TITAN_LATENCY_MAX_MS": "100"})
    # min == max is a fixed latency, which is fine.
    assert load_config({"TITAN_LATENCY_MIN_MS": "100", "TITAN_LATENCY_MAX_MS": "100"}).latency_min_ms == 100


def test_config_check_command_exit_codes():
    bad = subprocess.run([PYTHON, "-m", "titan.config"], env=child_env(TITAN_FAILURE_RATE="2"),
                         capture_output=True, text=True, cwd=APP_DIR)
    assert bad.returncode == 2
    assert "invalid configuration: TITAN_FAILURE_RATE='2': expected a number from 0.0 to 1.0" in bad.stderr
    good = subprocess.run([PYTHON, "-m", "titan.config"], env=child_env(), capture_output=True, text=True, cwd=APP_DIR)
    assert good.returncode == 0, good.stderr
    assert "configuration ok" in good.stderr
