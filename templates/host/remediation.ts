/**
 * What the configuration push gives each web host for the remediation agent (its units are in
 * units.ts, carried by user data): the agent's settings (agent.env, no secret in it) and the
 * polkit rule that lets the agent's user restart the app and start the free-disk worker, and
 * nothing else. The HMAC secret is not here: the push writes it from stdin
 * (infra/delivery/remediationSecrets.ts).
 */
import type { HostSlot } from "../../facts/addressing";
import { physicalName } from "../../facts/naming";
import {
  REMEDIATION_SIGNATURE_HEADER,
  REMEDIATION_TIMESTAMP_HEADER,
  type RemediationMode,
} from "../../facts/remediation";
import { SERVICES } from "../../facts/topology";
import { addressOf, type RenderedFile, type TemplateContext } from "../types";
import { APP_UNIT, FREE_DISK_UNIT, REMEDIATION_ENV_PATH, REMEDIATION_USER } from "./units";

/** How far Grafana's timestamp may be from the agent's clock, either way (and how long a signature is remembered). */
export const REMEDIATION_MAX_SKEW_SECONDS = 300;

/**
 * polkitd (Debian 12's 122) reads /etc/polkit-1/rules.d first, then /usr/share/polkit-1/rules.d,
 * and reloads every rule by itself when a `.rules` file there is created, changed or deleted
 * (src/polkitbackend/polkitbackendduktapeauthority.c watches both directories;
 * polkitbackendcommon.c polkit_backend_common_on_dir_monitor_changed reloads on CREATED, DELETED
 * and CHANGES_DONE_HINT): a pushed rule needs nothing restarted.
 */
export const POLKIT_RULE_PATH = "/etc/polkit-1/rules.d/50-titan-remediation.rules";

/** The action systemd asks polkit about for a job on a unit. */
export const MANAGE_UNITS_ACTION = "org.freedesktop.systemd1.manage-units";

/**
 * Everything the agent's user may do, as systemd 252 names it to polkit. src/core/dbus-util.c
 * bus_verify_manage_units_async_full passes the details `unit` (the unit's id, its main name
 * even when called by an alias) and `verb`; src/core/dbus-unit.c bus_unit_method_start_generic
 * sets `verb` to job_type_to_string() of the job ("start", "restart"; "reload-or-restart" for
 * ReloadOrRestart), and the manager's StartUnit/RestartUnit (src/core/dbus-manager.c
 * method_start_unit_generic) end up there too, so `systemctl restart titan.service` and
 * `systemctl start titan-free-disk.service` are exactly these two pairs.
 */
export const REMEDIATION_GRANTS: readonly { readonly unit: string; readonly verb: string }[] = [
  { unit: APP_UNIT, verb: "restart" },
  { unit: FREE_DISK_UNIT, verb: "start" },
];

/**
 * The rule (plain ES5, run by polkitd's duktape engine). For the agent's user it decides every
 * request itself: YES for a granted (unit, verb) pair, NO for anything else, so no later rule
 * and no interactive authentication can give it more. Other users fall through untouched.
 */
export function renderPolkitRule(): string {
  return [
    "// Rendered by templates/host/remediation.ts; do not edit on the host.",
    `// ${REMEDIATION_USER} may restart ${APP_UNIT} and start ${FREE_DISK_UNIT}; nothing else.`,
    "polkit.addRule(function (action, subject) {",
    `  if (subject.user !== ${JSON.stringify(REMEDIATION_USER)}) return undefined;`,
    `  var grants = ${JSON.stringify(REMEDIATION_GRANTS)};`,
    `  if (action.id === ${JSON.stringify(MANAGE_UNITS_ACTION)}) {`,
    "    for (var i = 0; i < grants.length; i++) {",
    '      if (action.lookup("unit") === grants[i].unit && action.lookup("verb") === grants[i].verb) {',
    "        return polkit.Result.YES;",
    "      }",
    "    }",
    "  }",
    "  return polkit.Result.NO;",
    "});",
    "",
  ].join("\n");
}

/** The agent's settings on one web host, in the order written. */
export function remediationSettings(
  ctx: TemplateContext,
  host: HostSlot,
  mode: RemediationMode,
): Record<string, string> {
  if (host.role !== "web") throw new Error(`remediation settings: ${host.name} is a ${host.role} host, expected web`);
  return {
    TITAN_REMEDIATION_MODE: mode,
    // The alert's `instance` label (or `host`, from Loki's rules) must equal it.
    TITAN_REMEDIATION_HOST: physicalName(ctx.config, host.name),
    TITAN_REMEDIATION_LISTEN: `0.0.0.0:${SERVICES.remediation.port}`,
    TITAN_REMEDIATION_METRICS_LISTEN: `0.0.0.0:${SERVICES.remediationMetrics.port}`,
    // Grafana alone posts webhooks (its security group alone reaches the port, too).
    TITAN_REMEDIATION_ALLOWED_SOURCES: addressOf(ctx.plan, "grafana"),
    TITAN_REMEDIATION_SIGNATURE_HEADER: REMEDIATION_SIGNATURE_HEADER,
    TITAN_REMEDIATION_TIMESTAMP_HEADER: REMEDIATION_TIMESTAMP_HEADER,
    TITAN_REMEDIATION_MAX_SKEW_SECONDS: String(REMEDIATION_MAX_SKEW_SECONDS),
    TITAN_REMEDIATION_APP_URL: `http://127.0.0.1:${SERVICES.titan.port}`,
  };
}

/** systemd's EnvironmentFile= format: one KEY=value a line, nothing that needs quoting. */
export function renderAgentEnv(settings: Readonly<Record<string, string>>): string {
  const lines = ["# Rendered by templates/host/remediation.ts; do not edit on the host. No secret here."];
  for (const [key, value] of Object.entries(settings)) {
    if (!/^[A-Za-z0-9_.:,/-]*$/.test(value))
      throw new Error(`agent.env: ${key}=${JSON.stringify(value)}: expected letters, digits and _ . : , / - only`);
    lines.push(`${key}=${value}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The web host's remediation files for the push. */
export function renderRemediationFiles(ctx: TemplateContext, host: HostSlot): RenderedFile[] {
  const mode = ctx.config.remediation;
  return [
    {
      path: REMEDIATION_ENV_PATH,
      content: renderAgentEnv(remediationSettings(ctx, host, mode)),
      mode: 0o644,
      owner: "root",
      group: "root",
    },
    // polkitd (user polkitd) reads it through its own 0700 directory.
    { path: POLKIT_RULE_PATH, content: renderPolkitRule(), mode: 0o644, owner: "root", group: "root" },
  ];
}
