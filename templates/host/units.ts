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

/** The remediation agent's system user (created by the bootstrap) and what it is given. */
export const REMEDIATION_USER = "titan-remediation";
export const REMEDIATION_SERVICE = "titan-remediation";
export const FREE_DISK_SERVICE = "titan-free-disk";
/** The two units the agent may act on (templates/host/remediation.ts grants exactly these). */
export const APP_UNIT = "titan.service";
export const FREE_DISK_UNIT = `${FREE_DISK_SERVICE}.service`;
/** Non-secret settings (agent.env, pushed) and the HMAC secret (written by the push from stdin). */
export const REMEDIATION_ETC_DIR = "/etc/titan-remediation";
export const REMEDIATION_ENV_PATH = `${REMEDIATION_ETC_DIR}/agent.env`;
export const REMEDIATION_SECRET_PATH = `${REMEDIATION_ETC_DIR}/hmac-secret`;
/** The credential's name: the agent reads $CREDENTIALS_DIRECTORY/hmac-secret. */
export const REMEDIATION_CREDENTIAL = "hmac-secret";

/**
 * The remediation agent. It runs as its own user with no capability at all: it only acts through
 * `systemctl --no-ask-password` over the system bus (AF_UNIX, in the base sandbox), which asks
 * polkit; the rule lets this user restart titan.service and start titan-free-disk.service, nothing
 * else. connect() on the bus socket asks for write permission on the socket's inode
 * (net/unix/af_unix.c unix_find_bsd), which a read-only mount refuses only for regular files,
 * directories and links (fs/namei.c sb_permission), so ProtectSystem=strict does not stand in
 * the way; tests/sandbox.test.ts traces the agent with the real systemctl.
 *
 * LoadCredential= with a non-root User= (systemd 252, src/core/execute.c): exec_child sets up the
 * credentials (setup_credentials -> load_credential, reading the 0400 root:root file) while it is
 * still root, before enforce_user(); write_credential then gives the service's uid read access
 * (an ACL, or ownership on a file system without ACLs, remounted read-only). So the secret stays
 * root-only on disk and only this service sees its copy.
 */
const remediation: UnitFile = {
  Unit: {
    Description: "Titan remediation agent (Grafana's signed webhooks)",
    After: "network-online.target",
    Wants: "network-online.target",
    // Enabled at boot, started once the push has delivered the app and the secret: a skipped
    // start is no failure, so the bootstrap passes quietly.
    ConditionPathExists: [`${TITAN_APP_DIR}/remediation/agent.py`, REMEDIATION_SECRET_PATH, REMEDIATION_ENV_PATH],
  },
  Service: {
    Type: "simple",
    User: REMEDIATION_USER,
    Group: REMEDIATION_USER,
    WorkingDirectory: TITAN_APP_DIR,
    ExecStart: "/usr/bin/python3 -m remediation.agent",
    Environment: environment({ PYTHONPATH: TITAN_APP_DIR, PYTHONDONTWRITEBYTECODE: 1 }),
    EnvironmentFile: REMEDIATION_ENV_PATH,
    LoadCredential: `${REMEDIATION_CREDENTIAL}:${REMEDIATION_SECRET_PATH}`,
    // Seen requests and rate-limit counters survive a restart ($STATE_DIRECTORY).
    StateDirectory: REMEDIATION_SERVICE,
    StateDirectoryMode: "0700",
    Restart: "on-failure",
    RestartSec: 2,
    ...sandbox(),
  },
  Install: { WantedBy: "multi-user.target" },
};

/**
 * The free-disk worker, started (never enabled) by the agent through polkit. Root, because it
 * acts on what others own, with only the capabilities that takes:
 * - CAP_KILL: SIGTERM to the disk-fill demo, run by root or by an operator's user;
 * - CAP_SYS_PTRACE: it finds the demo's holders through /proc/<pid>/fd (app/remediation/
 *   freedisk.py holders), which the kernel shows another uid's process, or a root process with
 *   capabilities beyond this bounded set, only with it (ptrace_may_access, PTRACE_MODE_READ;
 *   security/commoncap.c cap_ptrace_access_check). ptrace() itself is outside @system-service,
 *   so the filter still refuses it;
 * - CAP_DAC_OVERRIDE: /var/log/titan is titan:titan 0750 (LogsDirectoryMode), its logs titan's;
 * - CAP_CHOWN, CAP_FOWNER and the @chown calls: logrotate, as root, gives the copy it makes (copytruncate)
 *   and the compressed file the log's owner, then the log's ACL (logrotate 3.21 logrotate.c
 *   createOutputFile: fchown, then acl_set_fd on a file root no longer owns).
 * (Unlinking another user's file in the sticky /var/tmp needs nothing: root owns the directory.)
 * tests/sandbox.test.ts runs the worker as root with exactly this bounding set: each one is
 * needed, and they are enough.
 * No PrivateTmp: the demo writes the real /var/tmp. Writes only there and in the app's logs.
 */
const freeDisk: UnitFile = {
  Unit: {
    Description: "Titan free-disk action (rotate the app's logs, remove the disk-fill demo's files)",
    ConditionPathExists: `${TITAN_APP_DIR}/remediation/freedisk.py`,
  },
  Service: {
    Type: "oneshot",
    WorkingDirectory: TITAN_APP_DIR,
    ExecStart: "/usr/bin/python3 -m remediation.freedisk",
    Environment: environment({ PYTHONPATH: TITAN_APP_DIR, PYTHONDONTWRITEBYTECODE: 1 }),
    StateDirectory: FREE_DISK_SERVICE,
    // A run that hangs must not hold the agent's next start forever.
    TimeoutStartSec: 120,
    ...sandbox({
      syscalls: ["@chown"],
      overrides: {
        PrivateTmp: false,
        CapabilityBoundingSet: "CAP_KILL CAP_SYS_PTRACE CAP_DAC_OVERRIDE CAP_FOWNER CAP_CHOWN",
      },
    }),
    ReadWritePaths: [TITAN_LOG_DIR, "/var/tmp"],
  },
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
      { path: `/etc/systemd/system/${REMEDIATION_SERVICE}.service`, content: renderUnit(remediation) },
      { path: `/etc/systemd/system/${FREE_DISK_UNIT}`, content: renderUnit(freeDisk) },
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
    web: ["titan", "titan-traffic", REMEDIATION_SERVICE, "alloy"],
    prometheus: ["prometheus"],
    loki: [LOKI_SERVICE],
    grafana: ["grafana-server"],
  };
  return [...base, ...byRole[role]];
}
