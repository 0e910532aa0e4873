/**
 * Our own services (the Titan app and its traffic generator) and drop-ins that add restart
 * and sandboxing to the packaged services that ship without them.
 */
import { SERVICES, type Role } from "../../infra/topology";
import { environment, HARDENING, renderUnit, type UnitFile } from "./systemd";

/** Where the configuration push puts the app (a copy of this repository's app/). */
export const TITAN_APP_DIR = "/opt/titan/app";
export const TITAN_LOG_DIR = "/var/log/titan";
export const TITAN_USER = "titan";
export const TRAFFIC_RATE = 3;

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
    Type: "simple",
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
    ...HARDENING,
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
    ...HARDENING,
  },
  Install: { WantedBy: "multi-user.target" },
};

/** Drop-in for a packaged unit: restart on failure and the sandbox, minus what it must write. */
function dropIn(writable: readonly string[], extra: UnitFile["Service"] = {}): string {
  return renderUnit({
    Unit: {},
    Service: {
      Restart: "on-failure",
      RestartSec: 5,
      ...HARDENING,
      ...(writable.length > 0 ? { ReadWritePaths: writable } : {}),
      ...extra,
    },
  });
}

/** node_exporter reads /proc, /sys and statfs()es every mount, so it keeps /home visible. */
const NODE_EXPORTER_DROP_IN: UnitSpec = {
  path: "/etc/systemd/system/prometheus-node-exporter.service.d/titan.conf",
  content: dropIn([], { ProtectHome: "read-only", PrivateDevices: false }),
};

export function unitsFor(role: Role): UnitSpec[] {
  const units: UnitSpec[] = [NODE_EXPORTER_DROP_IN];
  if (role === "web") {
    units.push(
      { path: "/etc/systemd/system/titan.service", content: renderUnit(titan) },
      { path: "/etc/systemd/system/titan-traffic.service", content: renderUnit(traffic) },
      { path: "/etc/systemd/system/alloy.service.d/titan.conf", content: dropIn(["/var/lib/alloy"]) },
    );
  }
  if (role === "loki") {
    units.push({ path: "/etc/systemd/system/loki.service.d/titan.conf", content: dropIn(["/var/lib/loki"]) });
  }
  return units;
}

/** The services a role runs, enabled by the bootstrap. */
export function servicesFor(role: Role): string[] {
  const base = ["prometheus-node-exporter"];
  const byRole: Record<Role, string[]> = {
    web: ["titan", "titan-traffic", "alloy"],
    prometheus: ["prometheus"],
    loki: ["loki"],
    grafana: ["grafana-server"],
  };
  return [...base, ...byRole[role]];
}
