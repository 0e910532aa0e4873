/**
 * Our own services (the Titan app and its traffic generator) and drop-ins that add sandboxing to
 * the packaged services. Restart= comes from the packaged units, which all have one (checked in
 * tests/templates-host.test.ts); each allowance on top of HARDENING is proven by
 * tests/sandbox.test.ts (binaries here) or cited from the vendor's source (Loki, Alloy).
 */
import { SERVICES, type Role } from "../../facts/topology";
import { LOKI_CONFIGURED_PATH, LOKI_SERVICE } from "../loki/config";
import { environment, renderUnit, sandbox, type Section, type UnitFile } from "./systemd";

/** Where the configuration push puts the app (a copy of this repository's app/). */
export const TITAN_APP_DIR = "/opt/titan/app";
export const TITAN_LOG_DIR = "/var/log/titan";
export const TITAN_USER = "titan";
export const TRAFFIC_RATE = 3;
/**
 * titan.service's WatchdogSec=. The gunicorn master's loop turns at least once a second when all
 * is well; 30 s of silence is a hung master, not a slow one.
 */
export const TITAN_WATCHDOG_SECONDS = 30;

export interface UnitSpec {
  readonly path: string;
  readonly content: string;
}

const titan: UnitFile = {
  Unit: {
    Description: "Titan demo app (gunicorn)",
    After: "network-online.target",
    Wants: "network-online.target",
    // Enabled at boot, started once the configuration push has delivered the app.
    ConditionPathExists: `${TITAN_APP_DIR}/bin/titan-serve`,
  },
  Service: {
    // gunicorn 20.1's master sends READY=1 itself (gunicorn/arbiter.py Arbiter.start ->
    // gunicorn/systemd.py sd_notify), and titan-serve execs it, so the master is the main PID.
    // It also pings WATCHDOG=1 every WatchdogSec/2 while its loop turns (app/titan/watchdog.py):
    // a master that hangs or is stopped for WatchdogSec is killed (SIGABRT) and, as a watchdog
    // timeout counts as a failure for Restart=on-failure, started again. NotifyAccess=main: only
    // the master speaks for the service, never a worker.
    Type: "notify",
    NotifyAccess: "main",
    WatchdogSec: TITAN_WATCHDOG_SECONDS,
    User: TITAN_USER,
    Group: TITAN_USER,
    ExecStart: `${TITAN_APP_DIR}/bin/titan-serve`,
    Environment: environment({
      TITAN_BIND: "0.0.0.0",
      TITAN_PORT: SERVICES.titan.port,
      TITAN_LOG_DIR: TITAN_LOG_DIR,
      TITAN_DATA_DIR: "/var/lib/titan",
      TITAN_WORKERS: 3,
    }),
    // /run/titan (tmpfs) holds prometheus-client's multiprocess files; titan-serve finds it
    // through $RUNTIME_DIRECTORY.
    RuntimeDirectory: "titan",
    StateDirectory: "titan",
    LogsDirectory: "titan",
    // Alloy reads the logs through the titan group; nobody else can.
    LogsDirectoryMode: "0750",
    Restart: "on-failure",
    RestartSec: 2,
    // gunicorn 20.1 (Debian 12) sets every worker's owner to its configured uid, by default the
    // uid it already has: os.setgroups([]) (EPERM tolerated), initgroups() and os.setuid(uid)
    // unconditionally (gunicorn/util.py set_owner_process). Refused, no worker boots. Without any
    // capability (CapabilityBoundingSet= empty) these calls cannot change identity.
    ...sandbox({ syscalls: ["setuid", "setgroups"] }),
  },
  Install: { WantedBy: "multi-user.target" },
};

const traffic: UnitFile = {
  Unit: {
    Description: "Titan traffic generator",
    After: "titan.service",
    ConditionPathExists: `${TITAN_APP_DIR}/titan/traffic.py`,
  },
  Service: {
    Type: "simple",
    DynamicUser: true,
    WorkingDirectory: TITAN_APP_DIR,
    ExecStart: "/usr/bin/python3 -m titan.traffic",
    Environment: environment({
      PYTHONDONTWRITEBYTECODE: 1,
      TITAN_TRAFFIC_TARGET: `http://127.0.0.1:${SERVICES.titan.port}`,
      TITAN_TRAFFIC_RATE: TRAFFIC_RATE,
    }),
    // It rides out app restarts itself; systemd restarts it if it ever exits.
    Restart: "always",
    RestartSec: 5,
    ...sandbox(),
  },
  Install: { WantedBy: "multi-user.target" },
};

/**
 * Drop-in for a packaged unit: the sandbox, minus what it must write. Restart= stays the
 * package's; RestartSec= is set only where the package leaves systemd's 100 ms default, so a
 * crash loop does not hit the start limit (5 starts in 10 s) within a second.
 */
function dropIn(options: {
  writable?: readonly string[];
  restartSec?: number;
  unit?: Section;
  service: Section;
}): string {
  const writable = options.writable ?? [];
  return renderUnit({
    Unit: options.unit ?? {},
    Service: {
      ...(options.restartSec !== undefined ? { RestartSec: options.restartSec } : {}),
      ...options.service,
      ...(writable.length > 0 ? { ReadWritePaths: writable } : {}),
    },
  });
}

/**
 * Debian's node_exporter 1.5 (Restart=on-failure, no RestartSec, no sandbox in its unit). Proven
 * under strace by tests/sandbox.test.ts with every default collector:
 * - netdev lists interfaces over an AF_NETLINK socket (NETLINK_ROUTE);
 * - timex reads the kernel clock state with adjtimex(modes=0), which @clock (ProtectClock= and
 *   ~@privileged) refuses. Only reading: without CAP_SYS_TIME (CapabilityBoundingSet= is empty)
 *   the kernel refuses any adjtimex that would set the clock.
 * It statfs()es every mount, so /home stays visible (read-only), and reads device data.
 */
const NODE_EXPORTER_DROP_IN: UnitSpec = {
  path: "/etc/systemd/system/prometheus-node-exporter.service.d/titan.conf",
  content: dropIn({
    restartSec: 5,
    service: sandbox({
      families: ["AF_NETLINK"],
      syscalls: ["adjtimex"],
      overrides: { ProtectHome: "read-only", PrivateDevices: false, ProtectClock: false },
    }),
  }),
};

/**
 * Grafana Alloy 1.21 (vendor unit packaging/deb/alloy.service: Restart=always, no RestartSec, no
 * sandbox; see tests/fleet/standins/vendor.ts). It writes only its storage path under
 * /var/lib/alloy (the unit's --storage.path and WorkingDirectory). AF_NETLINK stays open: Alloy
 * lists network interfaces for its cluster advertise address (grafana/alloy v1.19.0-rc.3
 * internal/alloycli/cluster_builder.go getAdvertiseAddress; clustering is off here, but nothing in
 * its source shows the family is never used), and its vendor unit restricts none.
 */
const ALLOY_DROP_IN: UnitSpec = {
  path: "/etc/systemd/system/alloy.service.d/titan.conf",
  content: dropIn({ writable: ["/var/lib/alloy"], restartSec: 5, service: sandbox({ families: ["AF_NETLINK"] }) }),
};

/**
 * Debian's Prometheus 2.42 (/lib/systemd/system/prometheus.service: Restart=on-failure, no
 * RestartSec, and already ProtectSystem=full, NoNewPrivileges, PrivateTmp, PrivateDevices,
 * MemoryDenyWriteExecute, an empty capability set). Ours tightens that to the common sandbox:
 * the whole file system read-only but its data directory (--storage.tsdb.path, on the data
 * volume), a system-call filter and address families. Proven under strace by
 * tests/sandbox.test.ts while it discovers through an EC2 API, scrapes and answers queries: no
 * netlink, no call outside @system-service.
 */
const PROMETHEUS_DROP_IN: UnitSpec = {
  path: "/etc/systemd/system/prometheus.service.d/titan.conf",
  content: dropIn({ writable: ["/var/lib/prometheus"], restartSec: 5, service: sandbox() }),
};

/**
 * Loki 3.7 (vendor unit tools/packaging/loki.service: Restart=on-failure, RestartSec=2, no
 * sandbox). Evidence, grafana/loki v3.7.6:
 * - AF_NETLINK: besides its own address (now configured, templates/loki/config.ts), Loki still
 *   lists interfaces in code it vendors (dskit netutil.GetFirstAddressOf, hashicorp/go-sockaddr
 *   for memberlist, jaeger-client utils/localip.go); net.Interfaces() opens a netlink socket.
 * - MemoryDenyWriteExecute and the syscall filter: the binary is pure Go (Makefile builds
 *   cmd/loki/loki with CGO_ENABLED=0), so no dynamic loader or JIT maps writable code.
 * - Writes: common.path_prefix (/var/lib/loki) holds the WAL, TSDB index, cache and compactor
 *   state (pkg/loki/config_wrapper.go applyPathPrefixDefaults; the other paths are ours).
 * - Held back until the push has configured it: the package ships its example config at
 *   /etc/loki/config.yml (tools/packaging/nfpm.jsonnet, cmd/loki/loki-local-config.yaml: a
 *   filesystem store under /tmp/loki, which PrivateTmp throws away) and its postinst unmasks,
 *   enables and restarts the unit on a clean install (tools/packaging/loki-postinstall.sh), so
 *   masking cannot hold it. A condition on a file only the push writes can: a skipped start is
 *   no failure, so the postinst, the bootstrap and every boot before the push pass quietly.
 */
const LOKI_DROP_IN: UnitSpec = {
  path: `/etc/systemd/system/${LOKI_SERVICE}.service.d/titan.conf`,
  content: dropIn({
    writable: ["/var/lib/loki"],
    unit: { ConditionPathExists: LOKI_CONFIGURED_PATH },
    service: sandbox({ families: ["AF_NETLINK"] }),
  }),
};

export function unitsFor(role: Role): UnitSpec[] {
  const units: UnitSpec[] = [NODE_EXPORTER_DROP_IN];
  if (role === "web") {
    units.push(
      { path: "/etc/systemd/system/titan.service", content: renderUnit(titan) },
      { path: "/etc/systemd/system/titan-traffic.service", content: renderUnit(traffic) },
      ALLOY_DROP_IN,
    );
  }
  if (role === "prometheus") {
    units.push(PROMETHEUS_DROP_IN);
  }
  if (role === "loki") {
    units.push(LOKI_DROP_IN);
  }
  return units;
}

/** The services a role runs, enabled by the bootstrap. */
export function servicesFor(role: Role): string[] {
  const base = ["prometheus-node-exporter"];
  const byRole: Record<Role, string[]> = {
    web: ["titan", "titan-traffic", "alloy"],
    prometheus: ["prometheus"],
    loki: [LOKI_SERVICE],
    grafana: ["grafana-server"],
  };
  return [...base, ...byRole[role]];
}
