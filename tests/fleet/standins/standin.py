# STAND-IN body for Grafana's loki, alloy and grafana daemons in the local fleet. The package
# generator (tests/fleet/standins/packages.ts) prepends STANDIN = {...} naming the daemon and its
# pinned version. Python 3 and PyYAML (python3-yaml, which the packages depend on).
#
# It takes the command line the vendor's unit passes, reads the config file it is given (and
# fails, like the daemon, when it is missing), creates the state directory the daemon would
# write, and serves the daemon's health endpoint and /metrics on the port the config names,
# plus what lets the fleet see a pushed change in effect: Grafana's provisioned alert rules on
# its provisioning API, Loki's /config. Nothing else: see CANNOT below.
import base64
import hashlib
import hashlib
import http.server
import json
import os
import re
import signal
import sys
import threading
import time

STANDIN = globals().get("STANDIN") or {"daemon": "unset", "version": "0"}
DAEMON = STANDIN["daemon"]
VERSION = STANDIN["version"]
STARTED = time.time()

CANNOT = {
    "loki": "it does not ingest, store, compact or query logs and never touches S3; of the "
    "configuration it uses server.http_listen_port, server.http_listen_address and "
    "common.path_prefix, refuses only a file that is not YAML, an invalid "
    "limits_config.retention_period and a missing schema_config, and its /config echoes the "
    "file rather than Loki's parsed, defaulted config",
    "alloy": "it does not parse or run the Alloy pipeline, tail files, read the journal or push "
    "to Loki; the config file is only read, never evaluated",
    "grafana": "it has no SQL database, no UI and no alerting engine: it evaluates no rule and "
    "notifies nobody; of provisioning it reads only the alert rules (groups and deleteRules under "
    "<provisioning>/alerting, kept in a JSON file in paths.data and served read-only on "
    "/api/v1/provisioning/alert-rules), not data sources, dashboards, contact points, policies or "
    "templates; it keeps only the admin user (a JSON file in paths.data) for basic auth, and its "
    "`grafana cli` knows only `admin reset-admin-password`",
}


def say(message):
    print(f"STAND-IN {DAEMON} {VERSION}: {message}", file=sys.stderr, flush=True)


def fail(message, code=1):
    say(message)
    sys.exit(code)


def version_text():
    return (
        f"{DAEMON}, version {VERSION} (STAND-IN for the local fleet, not Grafana's build)\n"
        f"  serves only its health endpoint and /metrics; {CANNOT.get(DAEMON, '')}.\n"
    )


class Flags:
    """Go-style (-name value, -name=value) or pflag-style (--name value, --name=value) flags."""

    def __init__(self, values, bools, code=2, interspersed=True):
        self.values = set(values)
        self.bools = set(bools)
        self.got = {}
        self.positional = []
        # Exit status for a flag error; urfave/cli (Grafana) stops at the first positional
        # argument (Go's flag package), so a subcommand's flags are its own.
        self.code = code
        self.interspersed = interspersed

    def parse(self, argv):
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg == "--":
                self.positional.extend(argv[i + 1 :])
                break
            if not arg.startswith("-") or arg == "-":
                if not self.interspersed:
                    self.positional.extend(argv[i:])
                    break
                self.positional.append(arg)
                i += 1
                continue
            name, eq, value = arg.lstrip("-").partition("=")
            if name in self.bools:
                self.got[name] = value.lower() not in ("false", "0") if eq else True
            elif name in self.values:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        fail(f"flag needs an argument: {arg}", self.code)
                    value = argv[i]
                self.got[name] = value
            else:
                fail(f"flag provided but not defined: {arg} (the stand-in knows: "
                     f"{', '.join(sorted(self.values | self.bools))})", self.code)
            i += 1
        return self


def read_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        fail(f"cannot read config {path}: {e.strerror}")


def yaml_scalar(text, section, key):
    """A `key: value` directly under a top-level `section:` of block YAML; None when absent."""
    inside = False
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith((" ", "\t")):
            inside = line == f"{section}:"
            continue
        if inside and line.startswith("  ") and not line.startswith("   "):
            k, sep, v = line.strip().partition(":")
            if sep and k == key:
                return v.strip().strip("\"'")
    return None


def ini_value(text, section, key):
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            continue
        k, sep, v = line.partition("=")
        if sep and current == section and k.strip() == key:
            return v.strip().strip("\"'")
    return None


def port_of(value, what):
    try:
        port = int(value)
    except ValueError:
        fail(f"{what}: {value!r} is not a port number")
    if not 0 <= port <= 65535:
        fail(f"{what}: {port} is not a port number")
    return port


def touch_state(directory):
    """The daemon writes its state here: so does the stand-in, so a sandbox that forbids it shows."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "standin-was-here"), "w", encoding="utf-8") as f:
        f.write(f"{DAEMON} {VERSION} pid {os.getpid()}\n")


REQUESTS = {}
LOCK = threading.Lock()


def metrics_text():
    with LOCK:
        counts = dict(REQUESTS)
    lines = [
        "# HELP standin_info A stand-in for a vendor daemon: nothing here measures the real one.",
        "# TYPE standin_info gauge",
        f'standin_info{{daemon="{DAEMON}",version="{VERSION}"}} 1',
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
        "# TYPE process_start_time_seconds gauge",
        f"process_start_time_seconds {STARTED:.3f}",
        "# HELP standin_http_requests_total Requests the stand-in answered, by path.",
        "# TYPE standin_http_requests_total counter",
    ]
    lines += [f'standin_http_requests_total{{path="{p}"}} {n}' for p, n in sorted(counts.items())]
    return "\n".join(lines) + "\n"


def basic_auth(headers):
    """(user, password) from an Authorization: Basic header, or None."""
    value = headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def serve(host, port, health_path, health_body, health_type="text/plain; charset=utf-8", routes=None,
          metrics_auth=None, prefixes=None):
    """routes: path -> f(headers) returning (status, body, content type); prefixes: path prefix ->
    f(headers, rest of the path), the same; metrics_auth: (user, password) or None."""
    routes = routes or {}
    prefixes = prefixes or {}

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = f"standin-{DAEMON}/{VERSION}"

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            status = 200
            if path == health_path:
                body, ctype = health_body, health_type
            elif path == "/metrics":
                if metrics_auth and basic_auth(self.headers) != metrics_auth:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body, ctype = metrics_text(), "text/plain; version=0.0.4; charset=utf-8"
            elif path in routes:
                status, body, ctype = routes[path](self.headers)
            elif any(path.startswith(p) and len(path) > len(p) for p in prefixes):
                # A route with a path parameter: the handler gets the rest of the path.
                prefix = next(p for p in prefixes if path.startswith(p) and len(path) > len(p))
                status, body, ctype = prefixes[prefix](self.headers, path[len(prefix):])
            else:
                known = " ".join([health_path, "/metrics", *routes, *(f"{p}<...>" for p in prefixes)])
                self.send_error(404, f"the {DAEMON} stand-in serves only {known}")
                return
            with LOCK:
                REQUESTS[path] = REQUESTS.get(path, 0) + 1
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    stop = lambda *_: threading.Thread(target=server.shutdown, daemon=True).start()  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    say(f"listening on {host or '0.0.0.0'}:{server.server_address[1]}, serving {' '.join([health_path, '/metrics', *routes])} only")
    server.serve_forever()
    say("stopped")


def loki(argv):
    # grafana/loki pkg/loki/config_wrapper.go: -config.file (comma-separated, first existing
    # wins), -config.expand-env, -verify-config, -print-config-stderr; cmd/loki/main.go: -version.
    flags = Flags(["config.file", "log.level", "target"],
                  ["version", "config.expand-env", "verify-config", "print-config-stderr", "log-config-reverse-order"]
                  ).parse(argv)
    if flags.got.get("version"):
        sys.stdout.write(version_text())
        return
    names = [p.strip() for p in flags.got.get("config.file", "config.yaml,config/config.yaml").split(",")]
    found = next((p for p in names if os.path.exists(p)), None)
    if found is None:
        fail(f"failed parsing config: {','.join(names)} does not exist, set config.file for custom config path")
    text = read_config(found)
    # The stand-in's record of each start: which config it ran on (the fleet checks that Loki
    # never ran on the package's example, tests/fleet/checks/loki.ts).
    first = next((line for line in text.splitlines() if line.strip()), "")
    digest = hashlib.sha256(text.encode()).hexdigest()
    say(f"started on config {found} sha256 {digest} first line: {first}")
    if flags.got.get("verify-config"):
        fail("cannot verify a Loki configuration (this is not Loki); refusing rather than passing it", 2)
    check_loki_config(found, text)
    port = port_of(yaml_scalar(text, "server", "http_listen_port") or "3100", "server.http_listen_port")
    host = yaml_scalar(text, "server", "http_listen_address") or ""
    prefix = yaml_scalar(text, "common", "path_prefix")
    if prefix:
        touch_state(prefix)

    def config(_headers):
        # pkg/loki/loki.go bindConfigEndpoint, config_handler.go configHandler: GET /config is
        # the running config as YAML, text/plain. STAND-IN: this is the file it started with,
        # byte for byte, not Loki's parsed config merged with its defaults and re-marshalled
        # (where retention_period: 168h would read 1w): it proves which file the running
        # process read, not how Loki would interpret it.
        return 200, text, "text/plain; charset=utf-8"

    serve(host, port, "/ready", "ready\n", routes={"/config": config})


def check_loki_config(path, text):
    """What real Loki refuses at start, where its source is plain (grafana/loki v3.7.6): a file
    that is not YAML or a limits_config.retention_period that is not a Prometheus duration
    (cmd/loki/main.go: "failed parsing config", exit 1; pkg/validation/limits.go RetentionPeriod
    is a model.Duration), and no schema period (pkg/loki/loki.go Config.Validate ->
    pkg/storage/config/schema_config.go SchemaConfig.Validate, errZeroLengthConfig; exit 1).
    Unknown keys, which Loki's strict parsing also refuses, are not checked."""
    yaml = need_yaml()
    try:
        cfg = load_yaml(text)
    except yaml.YAMLError as e:
        fail(f"failed parsing config: {path}: {e}")
    cfg = cfg if isinstance(cfg, dict) else {}
    retention = (cfg.get("limits_config") or {}).get("retention_period")
    if retention is not None:
        try:
            parse_duration(scalar(retention))
        except ValueError as e:
            fail(f"failed parsing config: {path}: limits_config.retention_period: {e}")
    if not (cfg.get("schema_config") or {}).get("configs"):
        fail("validating config: CONFIG ERROR: invalid schema config: must specify at least one schema configuration")


def alloy(argv):
    if argv[:1] in (["--version"], ["-v"]):
        sys.stdout.write(version_text())
        return
    if argv[:1] != ["run"]:
        fail(f"the stand-in knows only `alloy run` and `alloy --version`, not {' '.join(argv[:1]) or '(nothing)'}", 2)
    # grafana/alloy internal/alloycli/cmd_run.go: the flags below, exactly one path argument.
    flags = Flags(["server.http.listen-addr", "storage.path", "stability.level", "config.format",
                   "server.http.ui-path-prefix", "config.extra-args"],
                  ["disable-reporting", "disable-support-bundle"]).parse(argv[1:])
    if len(flags.positional) != 1:
        fail(f"accepts 1 arg(s), received {len(flags.positional)}", 1)
    path = flags.positional[0]
    if os.path.isdir(path):
        files = sorted(f for f in os.listdir(path) if f.endswith(".alloy"))
        if not files:
            fail(f"no .alloy files in {path}")
        for f in files:
            read_config(os.path.join(path, f))
    else:
        read_config(path)
    addr = flags.got.get("server.http.listen-addr", "127.0.0.1:12345")
    host, sep, port = addr.rpartition(":")
    if not sep:
        fail(f"--server.http.listen-addr: {addr!r} is not host:port")
    touch_state(flags.got.get("storage.path", "data-alloy/"))
    signal.signal(signal.SIGHUP, lambda *_: (read_config(path), say("reloaded (config read, not evaluated)")))
    serve(host.strip("[]"), port_of(port, "--server.http.listen-addr"), "/-/ready", "Alloy is ready.\n")


GRAFANA_USERS = "standin-users.json"
# urfave/cli v2 as grafana/grafana uses it: pkg/cmd/grafana/main.go exits 1 on any error
# app.Run returns, a flag error included.
GRAFANA_CLI_ERROR = 1


def expand_grafana(value):
    """pkg/setting/expanders.go: `$__file{path}` is the file's content, whitespace trimmed."""
    if value.startswith("$__file{") and value.endswith("}"):
        path = value[len("$__file{"):-1]
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
        except OSError as e:
            fail(f"failed to read file {path} for $__file{{}}: {e.strerror}")
    return value


def grafana_settings(got, positional):
    """defaults.ini under --homepath, then --config, then cfg: overrides (arguments, then --configOverrides)."""
    overrides = {}
    for a in got.get("configOverrides", "").split() + list(positional):
        if a.startswith("cfg:") and "=" in a:
            k, v = a[len("cfg:"):].split("=", 1)
            overrides[k] = v
    home = got.get("homepath") or os.getcwd()
    if not os.path.isfile(os.path.join(home, "conf", "defaults.ini")):
        fail(f"Could not find config defaults under homepath {home}: set --homepath or start in it")
    text = read_config(os.path.join(home, "conf", "defaults.ini"))
    if "config" in got:
        text += "\n" + read_config(got["config"])

    def setting(section, key, default=None):
        env = os.environ.get(f"GF_{section.upper()}_{key.upper()}")
        value = env if env is not None else overrides.get(f"default.{section}.{key}") or ini_value(text, section, key)
        return expand_grafana(value) if value is not None else default

    data = overrides.get("default.paths.data") or os.environ.get("GF_PATHS_DATA") or ini_value(text, "paths", "data")
    return setting, os.path.join(home, data or "data")


def password_hash(password, salt):
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10000, 50).hex()


def read_users(data):
    try:
        with open(os.path.join(data, GRAFANA_USERS), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def write_users(data, users):
    path = os.path.join(data, GRAFANA_USERS)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(users, f)
    os.replace(path + ".tmp", path)


def ensure_admin(data, setting):
    """pkg/services/sqlstore/sqlstore.go ensureMainOrgAndAdminUser: only when there is no user yet."""
    if read_users(data) is not None:
        return
    salt = os.urandom(5).hex()
    login = setting("security", "admin_user", "admin")
    password = setting("security", "admin_password", "admin")
    write_users(data, {"1": {"login": login, "salt": salt, "password": password_hash(password, salt)}})
    say(f"created admin user {login!r} (id 1) from admin_user/admin_password: the database was empty")


def grafana_cli(argv):
    # pkg/cmd/grafana-cli/commands/cli.go: the `cli` command's global flags.
    flags = Flags(["config", "homepath", "configOverrides", "pluginsDir", "repo", "pluginUrl"],
                  ["debug", "d", "insecure", "version", "v"], GRAFANA_CLI_ERROR, interspersed=False).parse(argv)
    rest = flags.positional
    if rest[:2] != ["admin", "reset-admin-password"]:
        fail(f"the stand-in's `grafana cli` knows only `admin reset-admin-password`, not {' '.join(rest) or '(nothing)'}",
             GRAFANA_CLI_ERROR)
    # commands.go: reset-admin-password takes --password-from-stdin and --user-id (default 1).
    sub = Flags(["user-id"], ["password-from-stdin"], GRAFANA_CLI_ERROR).parse(rest[2:])
    setting, data = grafana_settings(flags.got, [])
    if sub.got.get("password-from-stdin"):
        # reset_password_command.go: one line from stdin.
        line = sys.stdin.readline()
        if not line:
            fail("can't read password from stdin", GRAFANA_CLI_ERROR)
        password = line.rstrip("\n")
    else:
        password = sub.positional[0] if sub.positional else ""
    if len(password) < 4:
        fail("new password is too short", GRAFANA_CLI_ERROR)
    user_id = sub.got.get("user-id", "1")
    users = read_users(data) or {}
    if user_id not in users:
        fail(f"could not read user (id: {user_id}) from database {os.path.join(data, GRAFANA_USERS)}", GRAFANA_CLI_ERROR)
    salt = os.urandom(5).hex()
    users[user_id].update(salt=salt, password=password_hash(password, salt))
    write_users(data, users)
    say(f"Admin password changed (user id {user_id}; STAND-IN: a JSON file, not Grafana's database)")


def need_yaml():
    """PyYAML (python3-yaml, a Depends of every stand-in package: packages.ts STANDIN_DEPENDS)."""
    try:
        import yaml  # noqa: PLC0415
    except ImportError:
        fail("python3-yaml is missing: the stand-in reads YAML with it (its package Depends on python3-yaml)")
    return yaml


def load_yaml(stream):
    """YAML as Grafana (gopkg.in/yaml.v3) and Loki read it, YAML 1.2-like: PyYAML's YAML 1.1
    reads a plain `=` as its `value` tag (which it cannot construct: the policy file's
    object_matchers hold one) and yes/no/on/off as booleans; here they stay strings."""
    yaml = need_yaml()
    resolvers = {first: [(tag, rx) for tag, rx in pairs if tag not in ("tag:yaml.org,2002:value", "tag:yaml.org,2002:bool")]
                 for first, pairs in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    loader = type("Yaml12Loader", (yaml.SafeLoader,), {"yaml_implicit_resolvers": resolvers})
    loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    return yaml.load(stream, Loader=loader)  # noqa: S506 (a SafeLoader)


# prometheus/common model/time.go (vendored by Grafana and Loki alike): ParseDuration's units,
# each with its place (units must go from the biggest to the smallest) and its milliseconds.
DURATION_UNITS = {"y": (1, 365 * 86400000), "w": (2, 7 * 86400000), "d": (3, 86400000), "h": (4, 3600000),
                  "m": (5, 60000), "s": (6, 1000), "ms": (7, 1)}


def parse_duration(text):
    """model.ParseDuration, in milliseconds; ValueError with the vendor's message."""
    if text == "0":
        return 0
    if text == "":
        raise ValueError("empty duration string")
    rest, total, last = text, 0, 0
    while rest:
        m = re.match(r"([0-9]+)([^0-9]*)", rest)
        if not m or not m.group(2):
            raise ValueError(f"not a valid duration string: {json.dumps(text)}")
        unit = DURATION_UNITS.get(m.group(2))
        if unit is None:
            raise ValueError(f"unknown unit {json.dumps(m.group(2))} in duration {json.dumps(text)}")
        if unit[0] <= last:
            raise ValueError(f"not a valid duration string: {json.dumps(text)}")
        last = unit[0]
        total += int(m.group(1)) * unit[1]
        rest = rest[m.end():]
    return total


def duration_text(ms):
    """model.Duration.String: 300000 -> "5m"; years and weeks only when they divide exactly."""
    if ms == 0:
        return "0s"
    out = ""
    for unit, exact in (("y", True), ("w", True), ("d", False), ("h", False), ("m", False), ("s", False),
                        ("ms", False)):
        mult = DURATION_UNITS[unit][1]
        if exact and ms % mult:
            continue
        if ms // mult:
            out += f"{ms // mult}{unit}"
            ms -= ms // mult * mult
    return out


def expand_env(value, braced_only=False):
    """pkg/services/provisioning/values/values.go interpolateValue: os.ExpandEnv on each part
    around `$$` (a literal `$`); annotations expand only `${NAME}` (ValueWithBracedVars). An
    unset variable is empty. The `$__file{}`-style expanders are not mirrored."""
    pattern = r"\$\{([^}]*)\}" if braced_only else r"\$\{([^}]*)\}|\$([A-Za-z0-9_]+)"
    expand = lambda m: os.environ.get(m.group(1) or m.group(m.lastindex), "")  # noqa: E731
    return "$".join(re.sub(pattern, expand, part) for part in value.split("$$"))


def scalar(value):
    """A YAML scalar as the string Grafana's values.StringValue decodes it to."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected a scalar, got {json.dumps(value)[:80]}")
    return str(value)


def int_value(value, what):
    """values.Int64Value: empty is 0, anything else must be an integer."""
    text = expand_env(scalar(value))
    if text == "":
        return 0
    try:
        return int(text, 10)
    except ValueError:
        raise ValueError(f"{what}: {json.dumps(text)} is not an integer") from None


# pkg/services/ngalert/models/alert_rule.go NoDataStateFromString, ErrStateFromString.
NO_DATA_STATES = ("Alerting", "NoData", "OK", "KeepLast")
EXEC_ERR_STATES = ("Alerting", "Error", "OK", "KeepLast")


def map_rule(raw, org_id):
    """pkg/services/provisioning/alerting/rules_types.go AlertRuleV1.mapToModel: the same
    required fields, defaults and error texts."""
    if not isinstance(raw, dict):
        raise ValueError(f"a rule must be a mapping, got {json.dumps(raw)[:80]}")
    s = lambda key: expand_env(scalar(raw.get(key)))  # noqa: E731
    title = s("title")
    if title == "":
        raise ValueError("rule has no title set")
    uid = s("uid")
    if uid == "":
        raise ValueError(f"rule '{title}' failed to parse: no UID set")
    durations = {}
    for key in ("for", "keepFiringFor"):
        try:
            durations[key] = parse_duration(s(key)) if s(key) else 0
        except ValueError as e:
            raise ValueError(f"rule '{title}' failed to parse '{key}' field: {e}") from None
    states = {}
    for key, allowed, default, kind in (("execErrState", EXEC_ERR_STATES, "Alerting", "Error"),
                                        ("noDataState", NO_DATA_STATES, "NoData", "NoData")):
        value = s(key).strip()
        if value and value not in allowed:
            raise ValueError(f"rule '{title}' failed to parse: unknown {kind} state option {value}")
        states[key] = value or default
    data = []
    for q in raw.get("data") or []:
        if not isinstance(q, dict) or not isinstance(q.get("model", {}), dict):
            raise ValueError(f"rule '{title}' failed to parse: a data entry and its model must be mappings")
        span = q.get("relativeTimeRange") or {}
        # ngalert/models/alert_query.go Duration.UnmarshalYAML: whole seconds, an int only.
        for key in ("from", "to"):
            if not isinstance(span.get(key, 0), int) or isinstance(span.get(key, 0), bool):
                raise ValueError(f"rule '{title}' failed to parse: invalid duration {span.get(key)}")
        # rules_types.go QueryV1.mapToModel: the model's Raw form, never interpolated; then
        # ngalert/models/alert_query.go PreSave ("called before being saved"): the query type
        # from the model's, intervalMs and maxDataPoints defaulted when missing or zero, and a
        # data source query (not an expression, expr.IsDataSource) needs from > to.
        model = dict(q.get("model") or {})
        for key, default in (("maxDataPoints", 43200), ("intervalMs", 1000)):
            if not isinstance(model.get(key), (int, float)) or isinstance(model.get(key), bool) or not model[key]:
                model[key] = default
        source = expand_env(scalar(q.get("datasourceUid")))
        if source not in ("__expr__", "-100") and not span.get("from", 0) > span.get("to", 0):
            raise ValueError(f"rule '{title}' failed to parse: invalid relative time range: {json.dumps(span)}")
        data.append({
            "refId": expand_env(scalar(q.get("refId"))),
            "queryType": model["queryType"] if isinstance(model.get("queryType"), str)
            else expand_env(scalar(q.get("queryType"))),
            "relativeTimeRange": {"from": span.get("from", 0), "to": span.get("to", 0)},
            "datasourceUid": source,
            "model": model,
        })
    if not data:
        raise ValueError(f"rule '{title}' failed to parse: no data set")
    record = raw.get("record")
    condition = s("condition")
    if condition == "" and record is None:
        raise ValueError(f"rule '{title}' failed to parse: no condition set")
    paused = s("isPaused") if "isPaused" in raw else "false"
    # values.BoolValue: Go's strconv.ParseBool.
    if paused not in ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"):
        raise ValueError(f"rule '{title}': isPaused {json.dumps(paused)} is not a boolean")
    return {
        "uid": uid, "orgID": org_id, "title": title, "condition": condition, "data": data,
        "dashboardUid": s("dashboardUid") or s("dasboardUid"), "panelId": int_value(raw.get("panelId"), "panelId"),
        "noDataState": states["noDataState"], "execErrState": states["execErrState"],
        "for": durations["for"], "keepFiringFor": durations["keepFiringFor"],
        "annotations": {str(k): expand_env(scalar(v), braced_only=True) for k, v in (raw.get("annotations") or {}).items()},
        "labels": {str(k): expand_env(scalar(v)) for k, v in (raw.get("labels") or {}).items()},
        "isPaused": paused in ("1", "t", "T", "TRUE", "true", "True"),
        "notification_settings": raw.get("notification_settings"), "record": record,
    }


def map_alerting_file(doc):
    """types.go AlertingFileV1.mapRules and rules_types.go AlertRuleGroupV1.MapToModel: the
    groups and deleteRules of one file (contact points, policies and templates are not read)."""
    groups = []
    for g in doc.get("groups") or []:
        if not isinstance(g, dict):
            raise ValueError(f"a rule group must be a mapping, got {json.dumps(g)[:80]}")
        name = expand_env(scalar(g.get("name")))
        if name.strip() == "":
            raise ValueError("rule group has no name set")
        org_id = max(int_value(g.get("orgId"), "orgId"), 1)
        interval = parse_duration(expand_env(scalar(g.get("interval"))))
        folder = expand_env(scalar(g.get("folder")))
        if folder.strip() == "":
            raise ValueError("rule group has no folder set")
        rules = [map_rule(r, org_id) for r in g.get("rules") or []]
        groups.append({"orgID": org_id, "name": name, "folder": folder, "interval": interval, "rules": rules})
    deletes = [{"orgID": max(int_value(d.get("orgId"), "orgId"), 1), "uid": expand_env(scalar(d.get("uid")))}
               for d in doc.get("deleteRules") or [] if isinstance(d, dict)]
    return {"groups": groups, "deleteRules": deletes}


def read_alerting_files(directory):
    """config_reader.go readConfig: every .yaml/.yml/.json file of <provisioning>/alerting in
    name order (os.ReadDir), other suffixes skipped with a warning, no directory no files; a
    file that cannot be read, parsed or mapped fails provisioning, and with it Grafana's start
    (pkg/services/provisioning/provisioning.go starting: ProvisionAlerting's error is returned)."""
    yaml = need_yaml()
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        say(f"can't read alerting provisioning files from directory {directory}: {e.strerror}")
        return []
    files = []
    for name in names:
        if not name.endswith((".yaml", ".yml", ".json")):
            say(f"file has invalid suffix '{name}' (.yaml,.yml,.json accepted), skipping")
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                doc = load_yaml(f)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            fail(f"Failed to provision alerting: failure to parse file {name}: {getattr(e, 'strerror', None) or e}")
        if doc is None:
            continue
        if not isinstance(doc, dict):
            fail(f"Failed to provision alerting: failure to parse file {name}: the document is not a mapping")
        try:
            files.append(map_alerting_file(doc))
        except ValueError as e:
            fail(f"Failed to provision alerting: failure to map file {name}: failure parsing rules: {e}")
    return files


ALERT_RULES_STORE = "standin-alert-rules.json"


def read_rule_store(data):
    try:
        with open(os.path.join(data, ALERT_RULES_STORE), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {"nextId": 1, "folders": {}, "groups": {}, "rules": {}}


def provision_alert_rules(data, directory):
    """rules_provisioner.go Provision, against a JSON file in paths.data that stands for
    Grafana's database: per file, each group's folder is found by title or created with a new
    uid, each rule created or updated by (org, uid) into that folder and group, the group's
    interval set; then the file's deleteRules are deleted (a uid that is not there is no error).
    A rule that is only left out of the files stays, as in Grafana."""
    store = read_rule_store(data)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    created = updated = deleted = 0
    for f in read_alerting_files(directory):
        for g in f["groups"]:
            folder_key = f"{g['orgID']}/{g['folder']}"
            if folder_key not in store["folders"]:
                store["folders"][folder_key] = base64.b32encode(os.urandom(10)).decode().lower()[:14]
            folder_uid = store["folders"][folder_key]
            for rule in g["rules"]:
                key = f"{g['orgID']}/{rule['uid']}"
                old = store["rules"].get(key)
                new = {**rule, "folderUID": folder_uid, "ruleGroup": g["name"]}
                if old is None:
                    new.update(id=store["nextId"], updated=now)
                    store["nextId"] += 1
                    created += 1
                else:
                    same = {k: v for k, v in old.items() if k not in ("id", "updated")} == new
                    new.update(id=old["id"], updated=old["updated"] if same else now)
                    updated += 0 if same else 1
                store["rules"][key] = new
            store["groups"][f"{g['orgID']}/{folder_uid}/{g['name']}"] = {"interval": g["interval"]}
        for d in f["deleteRules"]:
            if store["rules"].pop(f"{d['orgID']}/{d['uid']}", None) is not None:
                deleted += 1
    path = os.path.join(data, ALERT_RULES_STORE)
    with open(path + ".tmp", "w", encoding="utf-8") as out:
        json.dump(store, out, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)
    say(f"alert rules provisioned from {directory}: {created} created, {updated} changed, {deleted} deleted, "
        f"{len(store['rules'])} stored (STAND-IN: a JSON file in paths.data, not Grafana's database)")


def provisioned_rule_json(rule):
    """pkg/services/ngalert/api/tooling/definitions/provisioning_alert_rules.go
    ProvisionedAlertRule as compat.go ProvisionedAlertRuleFromAlertRule fills it: `for` as a
    model.Duration string, annotations and labels left out when empty, provenance "file"."""
    out = {
        "id": rule["id"], "uid": rule["uid"], "orgID": rule["orgID"], "folderUID": rule["folderUID"],
        "ruleGroup": rule["ruleGroup"], "title": rule["title"], "condition": rule["condition"],
        "data": rule["data"], "updated": rule["updated"], "noDataState": rule["noDataState"],
        "execErrState": rule["execErrState"], "for": duration_text(rule["for"]),
        "keep_firing_for": duration_text(rule["keepFiringFor"]),
    }
    if rule["annotations"]:
        out["annotations"] = rule["annotations"]
    if rule["labels"]:
        out["labels"] = rule["labels"]
    out.update(provenance="file", isPaused=rule["isPaused"], notification_settings=rule["notification_settings"],
               record=rule["record"])
    return out


def grafana(argv):
    if argv[:1] in (["--version"], ["-v"]):
        sys.stdout.write(version_text())
        return
    if argv[:1] == ["cli"]:
        grafana_cli(argv[1:])
        return
    if argv[:1] != ["server"]:
        fail(f"the stand-in knows only `grafana server`, `grafana cli` and `--version`, not {' '.join(argv[:1])}", 2)
    flags = Flags(["config", "homepath", "pidfile", "packaging", "configOverrides"], ["v", "version"]).parse(argv[1:])
    if flags.got.get("v") or flags.got.get("version"):
        sys.stdout.write(version_text())
        return
    setting, data = grafana_settings(flags.got, flags.positional)
    port = setting("server", "http_port", "3000")
    host = setting("server", "http_addr", "")
    touch_state(data)
    ensure_admin(data, setting)
    # pkg/setting/setting.go: paths.provisioning (the unit passes the package's
    # /etc/grafana/provisioning), relative to the homepath when relative (defaults.ini: conf/provisioning).
    provisioning = os.path.join(flags.got.get("homepath") or os.getcwd(),
                                setting("paths", "provisioning", "conf/provisioning"))
    provision_alert_rules(data, os.path.join(provisioning, "alerting"))
    if flags.got.get("pidfile"):
        with open(flags.got["pidfile"], "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")

    def user_of(headers):
        # The users file is read on every request, as the database is, so a reset by the CLI
        # counts at once.
        creds = basic_auth(headers)
        for uid, u in (read_users(data) or {}).items():
            if creds and creds[0] == u["login"] and password_hash(creds[1], u["salt"]) == u["password"]:
                return uid, u
        return None

    refused = 401, json.dumps({"message": "Invalid username or password"}) + "\n", "application/json"

    def signed_in(headers):
        # GET /api/user: the signed-in user.
        user = user_of(headers)
        if user is None:
            return refused
        body = json.dumps({"id": int(user[0]), "login": user[1]["login"], "isGrafanaAdmin": user[0] == "1",
                           "standIn": True})
        return 200, body + "\n", "application/json"

    # pkg/services/ngalert/api/api_provisioning.go RouteGetAlertRules / RouteRouteGetAlertRule,
    # behind the same sign-in as every API route (basic auth here); the store is read on every
    # request, as the database is. The admin is in org 1, the only org the stand-in has.
    def alert_rules(headers):
        if user_of(headers) is None:
            return refused
        rules = sorted(read_rule_store(data)["rules"].values(), key=lambda r: r["id"])
        return 200, json.dumps([provisioned_rule_json(r) for r in rules if r["orgID"] == 1]), "application/json"

    def alert_rule(headers, uid):
        if user_of(headers) is None:
            return refused
        rule = read_rule_store(data)["rules"].get(f"1/{uid}")
        if rule is None:
            # ErrAlertRuleNotFound: response.Empty(404).
            return 404, "", "application/json"
        return 200, json.dumps(provisioned_rule_json(rule)), "application/json"

    # pkg/api/http_server.go metricsEndpoint: basic auth only when both are set.
    metrics_user = setting("metrics", "basic_auth_username", "")
    metrics_password = setting("metrics", "basic_auth_password", "")
    metrics_auth = (metrics_user, metrics_password) if metrics_user and metrics_password else None
    health = json.dumps({"database": "ok", "version": VERSION, "commit": "STAND-IN"}, indent=2) + "\n"
    serve(host, port_of(port, "http_port"), "/api/health", health, "application/json; charset=UTF-8",
          routes={"/api/user": signed_in, "/api/v1/provisioning/alert-rules": alert_rules},
          prefixes={"/api/v1/provisioning/alert-rules/": alert_rule}, metrics_auth=metrics_auth)


def main():
    if "--version" in sys.argv[1:2] or "-version" in sys.argv[1:2]:
        sys.stdout.write(version_text())
        return
    handlers = {"loki": loki, "alloy": alloy, "grafana": grafana}
    if DAEMON not in handlers:
        fail("STANDIN header missing: build this file with tests/fleet/standins/packages.ts", 70)
    handlers[DAEMON](sys.argv[1:])


if __name__ == "__main__":
    main()
