/**
 * The AMP signing relay on the Prometheus host, with metricsStore=amp only: its code (relay/, as it
 * is in the checkout), its settings (the workspace's remote-write URL and region, per stack) and
 * its unit. Prometheus' remote_write points at it on loopback (templates/prometheus/config.ts);
 * why it exists is in facts/metricsStore.ts AMP_RELAY_PORT.
 *
 * The unit: DynamicUser (no account to create, no file of its own to write), the common sandbox
 * with no allowance (it only listens on 127.0.0.1 and connects out over TCP: AF_INET/AF_INET6, and
 * AF_UNIX for the journal), no capabilities. The instance metadata service is reached as by any
 * process on the host (IMDSv2 with a hop limit of 1 serves the host itself: infra/host.ts).
 */
import { AMP_RELAY_PATH, AMP_RELAY_PORT } from "../../facts/metricsStore";
import { readProjectFile } from "../projectFiles";
import type { RenderedFile, TemplateContext } from "../types";
import { environment, renderUnit, sandbox, type UnitFile } from "./systemd";

export const AMP_RELAY_SERVICE = "titan-amp-relay";
/** Where the relay's package is installed: /opt/titan-amp-relay/titan_amp_relay/*.py. */
export const AMP_RELAY_DIR = "/opt/titan-amp-relay";
export const AMP_RELAY_ENV_PATH = `/etc/default/${AMP_RELAY_SERVICE}`;
export const AMP_RELAY_UNIT_PATH = `/etc/systemd/system/${AMP_RELAY_SERVICE}.service`;
/** The package's modules, relative to relay/ (tests/amp-relay.test.ts checks this is all of it). */
export const AMP_RELAY_MODULES = [
  "titan_amp_relay/__init__.py",
  "titan_amp_relay/__main__.py",
  "titan_amp_relay/server.py",
] as const;
/** The Debian package the relay imports (botocore's signer and IMDS client); installed by the push. */
export const AMP_RELAY_PACKAGE = "python3-botocore";

/** The URL Prometheus writes to. */
export const ampRelayUrl = (): string => `http://127.0.0.1:${AMP_RELAY_PORT}${AMP_RELAY_PATH}`;

const unit: UnitFile = {
  Unit: {
    Description: "Titan AMP relay (signs Prometheus' remote writes with SigV4)",
    After: "network-online.target",
    Wants: "network-online.target",
    // Started by the push once the code and the settings are there.
    ConditionPathExists: [`${AMP_RELAY_DIR}/titan_amp_relay/server.py`, AMP_RELAY_ENV_PATH],
  },
  Service: {
    Type: "simple",
    DynamicUser: true,
    WorkingDirectory: AMP_RELAY_DIR,
    ExecStart: "/usr/bin/python3 -m titan_amp_relay",
    Environment: environment({ PYTHONPATH: AMP_RELAY_DIR, PYTHONDONTWRITEBYTECODE: 1 }),
    EnvironmentFile: AMP_RELAY_ENV_PATH,
    // Prometheus retries every write it could not hand over, so a restart loses nothing.
    Restart: "always",
    RestartSec: 2,
    ...sandbox(),
  },
  Install: { WantedBy: "multi-user.target" },
};

/** The relay's files for the Prometheus host; none with metricsStore=local. */
export function renderAmpRelayFiles(ctx: TemplateContext): RenderedFile[] {
  if (ctx.config.metricsStore !== "amp") return [];
  if (!ctx.amp) throw new Error("metricsStore is amp but the render context has no AMP workspace endpoints");
  const header = "# Rendered by templates/host/ampRelay.ts; changes here are overwritten on the next `pulumi up`.\n";
  const settings = {
    TITAN_AMP_RELAY_PORT: String(AMP_RELAY_PORT),
    TITAN_AMP_RELAY_REMOTE_WRITE_URL: ctx.amp.remoteWriteUrl,
    TITAN_AMP_RELAY_REGION: ctx.amp.region,
  };
  for (const [key, value] of Object.entries(settings)) {
    if (!/^[A-Za-z0-9:/._-]+$/.test(value)) {
      throw new Error(
        `AMP relay setting ${key}=${JSON.stringify(value)}: expected a URL or name without spaces or quotes`,
      );
    }
  }
  return [
    ...AMP_RELAY_MODULES.map((module) => ({
      path: `${AMP_RELAY_DIR}/${module}`,
      content: readProjectFile(`relay/${module}`),
      mode: 0o644,
      owner: "root",
      group: "root",
    })),
    {
      path: AMP_RELAY_ENV_PATH,
      content: `${header}${Object.entries(settings)
        .map(([k, v]) => `${k}=${v}`)
        .join("\n")}\n`,
      mode: 0o644,
      owner: "root",
      group: "root",
    },
    {
      path: AMP_RELAY_UNIT_PATH,
      content: renderUnit(unit),
      mode: 0o644,
      owner: "root",
      group: "root",
    },
  ];
}
