"""Environment-variable configuration for the Titan app, validated up front.

Every setting has a default; an invalid value raises ConfigError naming the
variable, the value received and what was expected, so a bad systemd
Environment= line fails loudly at start instead of misbehaving later.
Run as `python -m titan.config` to validate the environment (titan-serve does
this before starting gunicorn).
"""
import ipaddress
import math
import os
import sys
from dataclasses import dataclass


class ConfigError(ValueError):
    """An environment variable holds a value Titan cannot use."""


@dataclass(frozen=True)
class Config:
    bind: str = "0.0.0.0"
    port: int = 5000
    log_dir: str = "/var/log/titan"
    data_dir: str = "/var/lib/titan"
    # Runtime state on a tmpfs: systemd's RuntimeDirectory=titan, removed when the unit stops.
    run_dir: str = "/run/titan"
    failure_rate: float = 0.05
    latency_min_ms: int = 10
    latency_max_ms: int = 300
    workers: int = 3
    threads: int = 1
    metrics_enabled: bool = True

    @property
    def bind_address(self):
        """host:port as gunicorn wants it (IPv6 literals need brackets)."""
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"{host}:{self.port}"


# Upper bounds keep a typo (e.g. latency in µs, workers=500) from hurting the host.
MAX_LATENCY_MS = 10_000
MAX_WORKERS = 32
MAX_THREADS = 64

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _int(env, name, default, lo, hi):
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise ConfigError(f"{name}={raw!r}: expected an integer from {lo} to {hi}")
    return value


def _float(env, name, default, lo, hi):
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    # NaN fails both comparisons, so "nan" and unparsable input land here too.
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw!r}: expected a number from {lo} to {hi}")
    return value


def _bool(env, name, default):
    raw = env.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r}: expected one of true/false, 1/0, yes/no, on/off")


def _bind(env, name, default):
    raw = env.get(name)
    if raw is None:
        return default
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an IPv4 or IPv6 address, e.g. 0.0.0.0 or 127.0.0.1") from None


def _dir(env, name, default):
    raw = env.get(name)
    if raw is None:
        return default
    if not raw.startswith("/") or "\0" in raw:
        raise ConfigError(f"{name}={raw!r}: expected an absolute directory path")
    return raw.rstrip("/") or "/"


def load_config(env):
    """Build a Config from a mapping of environment variables."""
    cfg = Config(
        bind=_bind(env, "TITAN_BIND", Config.bind),
        port=_int(env, "TITAN_PORT", Config.port, 1, 65535),
        log_dir=_dir(env, "TITAN_LOG_DIR", Config.log_dir),
        data_dir=_dir(env, "TITAN_DATA_DIR", Config.data_dir),
        run_dir=_dir(env, "TITAN_RUN_DIR", _dir(env, "RUNTIME_DIRECTORY", Config.run_dir)),
        failure_rate=_float(env, "TITAN_FAILURE_RATE", Config.failure_rate, 0.0, 1.0),
        latency_min_ms=_int(env, "TITAN_LATENCY_MIN_MS", Config.latency_min_ms, 0, MAX_LATENCY_MS),
        latency_max_ms=_int(env, "TITAN_LATENCY_MAX_MS", Config.latency_max_ms, 0, MAX_LATENCY_MS),
        workers=_int(env, "TITAN_WORKERS", Config.workers, 1, MAX_WORKERS),
        threads=_int(env, "TITAN_THREADS", Config.threads, 1, MAX_THREADS),
        metrics_enabled=_bool(env, "TITAN_METRICS_ENABLED", Config.metrics_enabled),
    )
    if cfg.latency_min_ms > cfg.latency_max_ms:
        raise ConfigError(
            f"TITAN_LATENCY_MIN_MS={cfg.latency_min_ms} is greater than "
            f"TITAN_LATENCY_MAX_MS={cfg.latency_max_ms}: expected min <= max"
        )
    return cfg


def main():
    try:
        cfg = load_config(os.environ)
    except ConfigError as exc:
        print(f"titan: invalid configuration: {exc}", file=sys.stderr)
        return 2
    print(f"titan: configuration ok: {cfg}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
