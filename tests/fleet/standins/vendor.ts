/**
 * What Grafana's three vendor packages put on a host, as data: package name and version, the
 * packaged systemd unit and environment file, the users their maintainer scripts create, the
 * binary paths and the config file each daemon reads. The stand-in packages (packages.ts) are
 * built from this table only. Facts, read from the vendors' packaging sources (cited per entry);
 * re-read them when a pin in facts/versions.ts moves.
 */
import type { UnitFile } from "../../../templates/host/systemd";
import { VERSIONS, type PinnedPackage } from "../../../facts/versions";

export type Daemon = "loki" | "alloy" | "grafana";

/** A system user as the vendor's postinst makes it, with the exact tool and options it uses. */
export type SystemUser =
  | {
      /** `adduser --system` (Debian's adduser): without `ingroup` the user lands in nogroup. */
      readonly tool: "adduser";
      readonly name: string;
      readonly shell: string;
      readonly home?: string;
      readonly createHome: boolean;
      readonly ingroup?: string;
      readonly disabledPassword: boolean;
    }
  | {
      /** `useradd -r` (passwd's useradd). */
      readonly tool: "useradd";
      readonly name: string;
      readonly shell: string;
      readonly home: string;
      readonly createHome: boolean;
      readonly group: string;
      readonly comment: string;
    };

export interface SystemGroup {
  readonly name: string;
  readonly tool: "addgroup" | "groupadd";
}

export interface StateDir {
  readonly path: string;
  readonly owner: string;
  readonly group: string;
  readonly mode: string;
}

/** What the vendor's postinst does on `configure`, in its order. */
export interface PostinstFacts {
  /** Whether the script runs under `set -e` (then a failing step fails the install). */
  readonly exitOnError: boolean;
  /** A variable file the script sources first (it may override the user and group names). */
  readonly sources?: string;
  readonly groups: readonly SystemGroup[];
  readonly user: SystemUser;
  /** Groups the user joins only when they exist on the host. */
  readonly joinIfPresent: readonly string[];
  /** Directories created when missing, then owned and moded. */
  readonly stateDirs: readonly StateDir[];
  /** Directories made (root-owned) when missing. */
  readonly configDirs: readonly string[];
  /** Config files copied from a shipped sample when missing on the host. */
  readonly copyIfMissing: readonly { readonly from: string; readonly to: string }[];
  /** Directories whose contents are handed to root:<group> (config must not be writable by the daemon). */
  readonly configTree?: {
    readonly dir: string;
    readonly group: string;
    readonly dirMode: string;
    readonly fileMode?: string;
  };
  /** systemctl verbs run on a first install (`configure` without an old version), each `||:`. */
  readonly onInstall: readonly ("daemon-reload" | "unmask" | "preset" | "enable" | "restart")[];
  /** On upgrade: daemon-reload + restart when the sourced file says RESTART_ON_UPGRADE=true. */
  readonly restartOnUpgrade: boolean;
}

export interface VendorPackage {
  readonly daemon: Daemon;
  readonly pin: PinnedPackage;
  /** Debian `Version:` as the vendor's build writes it (what `apt-get install name=version` asks for). */
  readonly debianVersion: string;
  readonly depends: readonly string[];
  /** The vendor's own description, kept after "STAND-IN" so nobody mistakes the package. */
  readonly vendorDescription: string;
  readonly unit: { readonly name: string; readonly path: string; readonly file: UnitFile };
  /** The environment file the unit reads (EnvironmentFile=), shipped as a conffile. */
  readonly defaults?: { readonly path: string; readonly values: Readonly<Record<string, string>> };
  /** The config file the unit makes the daemon read; shipped only where the vendor ships one. */
  readonly config: { readonly path: string; readonly shipped: boolean };
  /** Files dpkg treats as conffiles (kept over local edits on upgrade), as the vendor's build marks them. */
  readonly conffiles: readonly string[];
  /** Where the daemon's program lives. */
  readonly binary: string;
  /** Shell wrappers the vendor installs around the binary (path -> what it runs). */
  readonly wrappers: readonly { readonly path: string; readonly execs: string; readonly prepend: readonly string[] }[];
  readonly postinst: PostinstFacts;
  /** The daemon's health endpoint (what the stand-in serves, besides /metrics). */
  readonly health: string;
  readonly defaultPort: number;
}

/** An exact Debian version from a pin; a glob here would mean "whatever the archive has". */
function exactVersion(pin: PinnedPackage): string {
  if (!/^[0-9][0-9A-Za-z.+~-]*$/.test(pin.aptPin))
    throw new Error(`VERSIONS.${pin.package}.aptPin: ${JSON.stringify(pin.aptPin)} is not an exact Debian version`);
  if (pin.origin !== "grafana") throw new Error(`${pin.package} comes from ${pin.origin}, not Grafana's repository`);
  return pin.aptPin;
}

/**
 * Loki 3.7.x. grafana/loki tools/packaging/nfpm.jsonnet (release-3.7.x 2e1f7f28; the v3.7.7 and v3.7.8
 * tags postdate the stored snapshot, the files are unchanged since v3.7.6): /usr/bin/loki, the unit
 * at /etc/systemd/system/loki.service, /etc/loki/config.yml as `config|noreplace`, no Depends,
 * version `${DRONE_TAG}` without a Debian revision. Unit directives: tools/packaging/loki.service.
 * User and systemctl steps: tools/packaging/loki-postinstall.sh (clean install only).
 */
const loki: VendorPackage = {
  daemon: "loki",
  pin: VERSIONS.loki,
  debianVersion: exactVersion(VERSIONS.loki),
  depends: [],
  vendorDescription: "Loki is a horizontally-scalable, highly-available, multi-tenant log aggregation system",
  unit: {
    name: "loki.service",
    path: "/etc/systemd/system/loki.service",
    file: {
      Unit: { Description: "Loki service", After: "network-online.target", Wants: "network-online.target" },
      Service: {
        Type: "simple",
        User: "loki",
        ExecStart: "/usr/bin/loki -config.file /etc/loki/config.yml",
        TimeoutSec: 120,
        Restart: "on-failure",
        RestartSec: 2,
      },
      Install: { WantedBy: "multi-user.target" },
    },
  },
  config: { path: "/etc/loki/config.yml", shipped: true },
  // nfpm marks only `type: config|noreplace` entries; the unit in /etc is a plain file.
  conffiles: ["/etc/loki/config.yml"],
  binary: "/usr/bin/loki",
  wrappers: [],
  postinst: {
    exitOnError: false,
    groups: [],
    user: { tool: "adduser", name: "loki", shell: "/bin/false", createHome: false, disabledPassword: false },
    joinIfPresent: [],
    stateDirs: [],
    configDirs: [],
    copyIfMissing: [],
    onInstall: ["daemon-reload", "unmask", "preset", "enable", "restart"],
    restartOnUpgrade: false,
  },
  // grafana/loki pkg/loki/loki.go: `/ready` on the HTTP server; the HTTP port defaults to 3100.
  health: "/ready",
  defaultPort: 3100,
};

/**
 * Alloy 1.21.x. grafana/alloy build-tools/make/packaging.mk (v1.19.0-rc.3 acc8ece1; no later
 * tag in the stored snapshot, packaging unchanged to main 66ebea85): fpm with `--iteration 1`
 * (hence 1.21.2-1), no Depends, /usr/bin/alloy, the unit at /usr/lib/systemd/system/alloy.service,
 * conffiles /etc/alloy/config.alloy and /etc/default/alloy. Unit: packaging/deb/alloy.service.
 * Defaults: packaging/environment-file. Users and directories: packaging/deb/control/postinst
 * (it never enables or starts the service on a first install).
 */
const alloy: VendorPackage = {
  daemon: "alloy",
  pin: VERSIONS.alloy,
  debianVersion: exactVersion(VERSIONS.alloy),
  depends: [],
  vendorDescription: "Grafana Alloy is an OpenTelemetry Collector distribution with programmable pipelines.",
  unit: {
    name: "alloy.service",
    path: "/usr/lib/systemd/system/alloy.service",
    file: {
      Unit: {
        Description: "Vendor-agnostic OpenTelemetry Collector distribution with programmable pipelines",
        Documentation: "https://grafana.com/docs/alloy",
        Wants: "network-online.target",
        After: "network-online.target",
      },
      Service: {
        Restart: "always",
        User: "alloy",
        Environment: ["HOSTNAME=%H", "ALLOY_DEPLOY_MODE=deb"],
        EnvironmentFile: "/etc/default/alloy",
        WorkingDirectory: "/var/lib/alloy",
        ExecStart: "/usr/bin/alloy run $CUSTOM_ARGS --storage.path=/var/lib/alloy/data $CONFIG_FILE",
        ExecReload: "/usr/bin/env kill -HUP $MAINPID",
        TimeoutStopSec: "20s",
      },
      Install: { WantedBy: "multi-user.target" },
    },
  },
  defaults: {
    path: "/etc/default/alloy",
    values: { CONFIG_FILE: "/etc/alloy/config.alloy", CUSTOM_ARGS: "", RESTART_ON_UPGRADE: "true" },
  },
  config: { path: "/etc/alloy/config.alloy", shipped: true },
  conffiles: ["/etc/alloy/config.alloy", "/etc/default/alloy"],
  binary: "/usr/bin/alloy",
  wrappers: [],
  postinst: {
    exitOnError: true,
    sources: "/etc/default/alloy",
    groups: [{ name: "alloy", tool: "groupadd" }],
    user: {
      tool: "useradd",
      name: "alloy",
      shell: "/sbin/nologin",
      home: "/var/lib/alloy",
      createHome: true,
      group: "alloy",
      comment: "alloy user",
    },
    joinIfPresent: ["adm", "systemd-journal"],
    stateDirs: [
      { path: "/var/lib/alloy", owner: "alloy", group: "alloy", mode: "770" },
      { path: "/var/lib/alloy/data", owner: "alloy", group: "alloy", mode: "770" },
    ],
    configDirs: [],
    copyIfMissing: [],
    configTree: { dir: "/etc/alloy", group: "alloy", dirMode: "770" },
    onInstall: [],
    restartOnUpgrade: true,
  },
  // grafana/alloy internal/service/http/http.go: `/-/ready`; internal/alloycli/cmd_run.go:
  // --server.http.listen-addr defaults to 127.0.0.1:12345.
  health: "/-/ready",
  defaultPort: 12345,
};

/**
 * Grafana 12.4.x. grafana/grafana pkg/build/daggerbuild/artifacts/package_deb.go and fpm/build.go
 * (stored 33544556, 20e5b1d9): Depends adduser, version without a revision, the tree under
 * /usr/share/grafana (binary bin/grafana), wrappers in /usr/sbin, conffiles
 * /etc/default/grafana-server and the unit at /usr/lib/systemd/system/grafana-server.service.
 * Wrappers: packaging/wrappers/grafana-server and packaging/wrappers/grafana (0368e7e8).
 * Unit directives: packaging/deb/systemd/grafana-server.service. CAVEAT: the stored copies of
 * that file here predate 12.x; the directives below are the hardened `grafana server` form that
 * installed 11.x/12.x hosts report (quoted in public issues); re-check at the 12.4.3 tag.
 * Defaults: packaging/deb/default/grafana-server. Users, directories, sample config:
 * packaging/deb/control/postinst (03ff8dd4): it does not enable or start on a first install.
 */
const GRAFANA_HOME = "/usr/share/grafana";
const grafana: VendorPackage = {
  daemon: "grafana",
  pin: VERSIONS.grafana,
  debianVersion: exactVersion(VERSIONS.grafana),
  depends: ["adduser"],
  vendorDescription: "Grafana",
  unit: {
    name: "grafana-server.service",
    path: "/usr/lib/systemd/system/grafana-server.service",
    file: {
      Unit: {
        Description: "Grafana instance",
        Documentation: "http://docs.grafana.org",
        Wants: "network-online.target",
        After: ["network-online.target", "postgresql.service", "mariadb.service", "mysql.service", "influxdb.service"],
      },
      Service: {
        EnvironmentFile: "/etc/default/grafana-server",
        User: "grafana",
        Group: "grafana",
        Type: "simple",
        Restart: "on-failure",
        WorkingDirectory: GRAFANA_HOME,
        RuntimeDirectory: "grafana",
        RuntimeDirectoryMode: "0750",
        ExecStart: [
          `${GRAFANA_HOME}/bin/grafana server`,
          "--config=${CONF_FILE}",
          "--pidfile=${PID_FILE_DIR}/grafana-server.pid",
          "--packaging=deb",
          "cfg:default.paths.logs=${LOG_DIR}",
          "cfg:default.paths.data=${DATA_DIR}",
          "cfg:default.paths.plugins=${PLUGINS_DIR}",
          "cfg:default.paths.provisioning=${PROVISIONING_CFG_DIR}",
        ].join(" "),
        LimitNOFILE: 10000,
        TimeoutStopSec: 20,
        CapabilityBoundingSet: "",
        DeviceAllow: "",
        LockPersonality: true,
        MemoryDenyWriteExecute: false,
        NoNewPrivileges: true,
        PrivateDevices: true,
        PrivateTmp: true,
        ProtectClock: true,
        ProtectControlGroups: true,
        ProtectHome: true,
        ProtectHostname: true,
        ProtectKernelLogs: true,
        ProtectKernelModules: true,
        ProtectKernelTunables: true,
        ProtectProc: "invisible",
        ProtectSystem: "full",
        RemoveIPC: true,
        RestrictAddressFamilies: ["AF_INET", "AF_INET6", "AF_UNIX"],
        RestrictNamespaces: true,
        RestrictRealtime: true,
        RestrictSUIDSGID: true,
        SystemCallArchitectures: "native",
        UMask: "0027",
      },
      Install: { WantedBy: "multi-user.target" },
    },
  },
  defaults: {
    path: "/etc/default/grafana-server",
    values: {
      GRAFANA_USER: "grafana",
      GRAFANA_GROUP: "grafana",
      GRAFANA_HOME,
      LOG_DIR: "/var/log/grafana",
      DATA_DIR: "/var/lib/grafana",
      MAX_OPEN_FILES: "10000",
      CONF_DIR: "/etc/grafana",
      CONF_FILE: "/etc/grafana/grafana.ini",
      RESTART_ON_UPGRADE: "true",
      PLUGINS_DIR: "/var/lib/grafana/plugins",
      PROVISIONING_CFG_DIR: "/etc/grafana/provisioning",
      PID_FILE_DIR: "/var/run/grafana",
    },
  },
  // Not shipped: the postinst copies conf/sample.ini here when it is missing.
  config: { path: "/etc/grafana/grafana.ini", shipped: false },
  // --deb-no-default-config-files plus explicit --config-files (the init.d script is not shipped here).
  conffiles: ["/etc/default/grafana-server", "/usr/lib/systemd/system/grafana-server.service"],
  binary: `${GRAFANA_HOME}/bin/grafana`,
  wrappers: [
    { path: "/usr/sbin/grafana-server", execs: `${GRAFANA_HOME}/bin/grafana`, prepend: ["server"] },
    { path: "/usr/sbin/grafana-cli", execs: `${GRAFANA_HOME}/bin/grafana`, prepend: ["cli"] },
    { path: "/usr/sbin/grafana", execs: `${GRAFANA_HOME}/bin/grafana`, prepend: [] },
  ],
  postinst: {
    exitOnError: true,
    sources: "/etc/default/grafana-server",
    groups: [{ name: "grafana", tool: "addgroup" }],
    user: {
      tool: "adduser",
      name: "grafana",
      shell: "/bin/false",
      home: GRAFANA_HOME,
      createHome: false,
      ingroup: "grafana",
      disabledPassword: true,
    },
    joinIfPresent: [],
    stateDirs: [
      { path: "/var/log/grafana", owner: "grafana", group: "grafana", mode: "755" },
      { path: "/var/lib/grafana", owner: "grafana", group: "grafana", mode: "755" },
    ],
    configDirs: ["dashboards", "datasources", "plugins", "access-control", "alerting"].map(
      (d) => `/etc/grafana/provisioning/${d}`,
    ),
    copyIfMissing: [
      { from: `${GRAFANA_HOME}/conf/sample.ini`, to: "/etc/grafana/grafana.ini" },
      { from: `${GRAFANA_HOME}/conf/ldap.toml`, to: "/etc/grafana/ldap.toml" },
    ],
    configTree: { dir: "/etc/grafana", group: "grafana", dirMode: "755", fileMode: "640" },
    onInstall: [],
    restartOnUpgrade: true,
  },
  // grafana/grafana: GET /api/health; http_port defaults to 3000 (conf/defaults.ini).
  health: "/api/health",
  defaultPort: 3000,
};

export const VENDOR_PACKAGES: Readonly<Record<Daemon, VendorPackage>> = { loki, alloy, grafana };
