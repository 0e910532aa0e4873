# STAND-IN body for Grafana's loki, alloy and grafana daemons in the local fleet. The package
# generator (tests/fleet/standins/packages.ts) prepends STANDIN = {...} naming the daemon and its
# pinned version. Python 3 stdlib only: every Debian 12 host has /usr/bin/python3.
#
# It takes the command line the vendor's unit passes, reads the config file it is given (and
# fails, like the daemon, when it is missing), creates the state directory the daemon would
# write, and serves the daemon's health endpoint and /metrics on the port the config names.
# Nothing else: see CANNOT below.
import base64
import hashlib
import hashlib
import http.server
import json
import os
import signal
import sys
import threading
import time

STANDIN = globals().get("STANDIN") or {"daemon": "unset", "version": "0"}
DAEMON = STANDIN["daemon"]
VERSION = STANDIN["version"]
STARTED = time.time()

CANNOT = {
    "loki": "it does not ingest, store, compact or query logs, never touches S3, and does not "
    "validate the configuration beyond the keys it reads (server.http_listen_port, "
    "server.http_listen_address, common.path_prefix)",
    "alloy": "it does not parse or run the Alloy pipeline, tail files, read the journal or push "
    "to Loki; the config file is only read, never evaluated",
    "grafana": "it has no SQL database, no UI, no provisioning and no alerting; it keeps only "
    "the admin user (a JSON file in paths.data) for basic auth on /api/user, and its `grafana cli` "
    "knows only `admin reset-admin-password`",
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
          metrics_auth=None):
    """routes: path -> f(headers) returning (status, body, content type); metrics_auth: (user, password) or None."""
    routes = routes or {}

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
            else:
                known = " ".join([health_path, "/metrics", *routes])
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
    port = port_of(yaml_scalar(text, "server", "http_listen_port") or "3100", "server.http_listen_port")
    host = yaml_scalar(text, "server", "http_listen_address") or ""
    prefix = yaml_scalar(text, "common", "path_prefix")
    if prefix:
        touch_state(prefix)
    serve(host, port, "/ready", "ready\n")


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
    if flags.got.get("pidfile"):
        with open(flags.got["pidfile"], "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")

    def signed_in(headers):
        # GET /api/user: the signed-in user; the users file is read on every request, as the
        # database is, so a reset by the CLI counts at once.
        creds = basic_auth(headers)
        for uid, u in (read_users(data) or {}).items():
            if creds and creds[0] == u["login"] and password_hash(creds[1], u["salt"]) == u["password"]:
                body = json.dumps({"id": int(uid), "login": u["login"], "isGrafanaAdmin": uid == "1",
                                   "standIn": True})
                return 200, body + "\n", "application/json"
        return 401, json.dumps({"message": "Invalid username or password"}) + "\n", "application/json"

    # pkg/api/http_server.go metricsEndpoint: basic auth only when both are set.
    metrics_user = setting("metrics", "basic_auth_username", "")
    metrics_password = setting("metrics", "basic_auth_password", "")
    metrics_auth = (metrics_user, metrics_password) if metrics_user and metrics_password else None
    health = json.dumps({"database": "ok", "version": VERSION, "commit": "STAND-IN"}, indent=2) + "\n"
    serve(host, port_of(port, "http_port"), "/api/health", health, "application/json; charset=UTF-8",
          routes={"/api/user": signed_in}, metrics_auth=metrics_auth)


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
