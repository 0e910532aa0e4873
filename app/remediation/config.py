"""The agent's settings: env (rendered into /etc/titan-remediation/agent.env),
the HMAC secret (a systemd credential) and the state directory.

Every limit is a named constant here; the ones an operator may need to move
are also env settings. A bad value is refused at start-up with the key, the
value and what was expected.
"""
import dataclasses
import ipaddress
import os

# The alert label naming the fix, and the allow-list of its values the agent acts on.
REMEDIATION_LABEL = "remediation"
RESTART_APP = "restart-app"
FREE_DISK = "free-disk"
ACTIONS = (RESTART_APP, FREE_DISK)

MODES = ("on", "dry-run", "off")

# Decisions (the audit line's `decision` and the counter's `result`).
ACTED, FAILED, REFUSED, RATE_LIMITED, DRY_RUN, DUPLICATE, DISABLED = (
    "acted", "failed", "refused", "rate_limited", "dry_run", "duplicate", "disabled")
DECISIONS = (ACTED, FAILED, REFUSED, RATE_LIMITED, DRY_RUN, DUPLICATE, DISABLED)
METRIC = "titan_remediation_actions_total"
# The counter's action label when a request is refused before an action could be read.
NO_ACTION = "none"

# Grafana's headers are configurable in its hmacConfig; these are the ones the
# contact point sets (its own default signature header differs, see signature.py).
DEFAULT_SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"
DEFAULT_TIMESTAMP_HEADER = "X-Grafana-Alerting-Timestamp"
DEFAULT_MAX_SKEW_S = 300
DEFAULT_LIMITS = {RESTART_APP: (3, 3600), FREE_DISK: (3, 3600)}
DEFAULT_APP_URL = "http://127.0.0.1:5000"

# A Grafana webhook for a handful of alerts is a few KiB; 256 KiB leaves room
# for a large group and bounds what one request can make the agent hold.
MAX_BODY_BYTES = 256 * 1024
# Global token bucket: Grafana sends one request per group and repeat, so 10 at
# once then one a second is far above normal and still bounds a flood.
FLOOD_BURST = 10
FLOOD_REFILL_PER_S = 1.0
# Reading a request (headers and body) must finish within this many seconds.
REQUEST_READ_TIMEOUT_S = 10.0
# restart-app: how long the new main process has to appear and answer /health.
RESTART_DEADLINE_S = 30.0
RESTART_POLL_S = 0.5
HEALTH_PATH = "/health"  # what titan/app.py serves as liveness
HEALTH_TIMEOUT_S = 2.0
# systemctl calls wait for their job (`start` of the oneshot free-disk unit waits
# for the run). Above the units' own limits (titan.service: systemd's default 90 s
# to stop plus 90 s to start; titan-free-disk.service: TimeoutStartSec=120), so
# the unit's own result decides, not this timeout.
SYSTEMCTL_TIMEOUT_S = 200.0
# Bounds of the persisted memories (see policy.py for why they are never reached
# while the token bucket holds).
MAX_SEEN_SIGNATURES = 4096
MAX_HANDLED_ALERTS = 4096
HANDLED_TTL_S = 7 * 24 * 3600

APP_UNIT = "titan.service"
FREE_DISK_UNIT = "titan-free-disk.service"
STATE_FILE = "state.json"
SECRET_CREDENTIAL = "hmac-secret"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the key and value."""


@dataclasses.dataclass(frozen=True)
class Config:
    secret: bytes
    host: str
    state_dir: str
    mode: str = "on"
    listen: tuple = ("0.0.0.0", 9180)
    metrics_listen: tuple = ("0.0.0.0", 9181)
    allowed_sources: frozenset = frozenset()
    signature_header: str = DEFAULT_SIGNATURE_HEADER
    timestamp_header: str = DEFAULT_TIMESTAMP_HEADER
    max_skew_s: int = DEFAULT_MAX_SKEW_S
    app_url: str = DEFAULT_APP_URL
    limits: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_LIMITS))
    max_body_bytes: int = MAX_BODY_BYTES
    flood_burst: int = FLOOD_BURST
    flood_refill_per_s: float = FLOOD_REFILL_PER_S
    restart_deadline_s: float = RESTART_DEADLINE_S

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"TITAN_REMEDIATION_MODE={self.mode!r}: expected one of {', '.join(MODES)}")
        if not self.secret:
            raise ConfigError("the HMAC secret is empty: expected the credential "
                              f"{SECRET_CREDENTIAL!r} to hold Grafana's hmacConfig.secret")
        if not self.host:
            raise ConfigError("TITAN_REMEDIATION_HOST='': expected this host's name (the alerts' instance label)")
        if not self.allowed_sources:
            raise ConfigError("TITAN_REMEDIATION_ALLOWED_SOURCES='': expected at least one IP address (Grafana's)")


def parse_listen(key, value):
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{key}={value!r}: expected <address>:<port>, e.g. 0.0.0.0:9180")
    return host, int(port)


def parse_sources(key, value):
    out = set()
    for item in (s.strip() for s in value.split(",")):
        if not item:
            continue
        try:
            out.add(str(ipaddress.ip_address(item)))
        except ValueError:
            raise ConfigError(f"{key}={value!r}: {item!r} is not an IP address; "
                              "expected comma-separated addresses") from None
    return frozenset(out)


def parse_limits(key, value):
    """`restart-app=3/3600,free-disk=3/3600`: at most N actions per W seconds."""
    limits = dict(DEFAULT_LIMITS)
    for item in (s.strip() for s in value.split(",")):
        if not item:
            continue
        action, sep, spec = item.partition("=")
        count, slash, window = spec.partition("/")
        if (not sep or action not in ACTIONS or not slash or not count.isdigit() or not window.isdigit()
                or int(window) <= 0):
            raise ConfigError(f"{key}={value!r}: bad item {item!r}; expected <action>=<count>/<seconds> "
                              f"with action one of {', '.join(ACTIONS)}, e.g. restart-app=3/3600")
        limits[action] = (int(count), int(window))
    return limits


def parse_int(key, value, low, high):
    if not value.strip().isdigit() or not low <= int(value) <= high:
        raise ConfigError(f"{key}={value!r}: expected a whole number from {low} to {high}")
    return int(value)


def read_secret(path):
    try:
        with open(path, "rb") as f:
            # The push writes the secret without a newline; tolerate one anyway,
            # Grafana signs with the string exactly as configured.
            return f.read().rstrip(b"\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read the HMAC secret {path!r}: {exc.strerror}") from None


def from_env(env=None):
    env = os.environ if env is None else env

    def get(key, default=None):
        value = env.get(key, default)
        if value is None:
            raise ConfigError(f"{key} is not set")
        return value

    creds = env.get("CREDENTIALS_DIRECTORY")
    if not creds:
        raise ConfigError("CREDENTIALS_DIRECTORY is not set: expected systemd's LoadCredential="
                          f"{SECRET_CREDENTIAL}:... in the unit")
    state_dir = get("STATE_DIRECTORY").split(":")[0]  # systemd lists one per StateDirectory=
    return Config(
        secret=read_secret(os.path.join(creds, SECRET_CREDENTIAL)),
        host=get("TITAN_REMEDIATION_HOST"),
        state_dir=state_dir,
        mode=get("TITAN_REMEDIATION_MODE", "on"),
        listen=parse_listen("TITAN_REMEDIATION_LISTEN", get("TITAN_REMEDIATION_LISTEN", "0.0.0.0:9180")),
        metrics_listen=parse_listen("TITAN_REMEDIATION_METRICS_LISTEN",
                                    get("TITAN_REMEDIATION_METRICS_LISTEN", "0.0.0.0:9181")),
        allowed_sources=parse_sources("TITAN_REMEDIATION_ALLOWED_SOURCES", get("TITAN_REMEDIATION_ALLOWED_SOURCES")),
        signature_header=get("TITAN_REMEDIATION_SIGNATURE_HEADER", DEFAULT_SIGNATURE_HEADER),
        timestamp_header=get("TITAN_REMEDIATION_TIMESTAMP_HEADER", DEFAULT_TIMESTAMP_HEADER),
        max_skew_s=parse_int("TITAN_REMEDIATION_MAX_SKEW_SECONDS",
                             get("TITAN_REMEDIATION_MAX_SKEW_SECONDS", str(DEFAULT_MAX_SKEW_S)), 1, 3600),
        app_url=get("TITAN_REMEDIATION_APP_URL", DEFAULT_APP_URL).rstrip("/"),
        limits=parse_limits("TITAN_REMEDIATION_LIMITS", get("TITAN_REMEDIATION_LIMITS", "")),
    )
