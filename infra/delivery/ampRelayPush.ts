/**
 * The Prometheus push's steps for the AMP signing relay (metricsStore=amp only; templates/host/
 * ampRelay.ts renders its files). Its one Debian package is installed here and not by the
 * bootstrap: user data is replaced on change (infra/host.ts userDataReplaceOnChange), so a
 * package added to it for amp would replace the Prometheus host when a stack switches stores,
 * where the push installs it in place. A restart of the relay follows any change of its code,
 * settings or unit; it is enabled so it starts after a reboot.
 */
import {
  AMP_RELAY_DIR,
  AMP_RELAY_ENV_PATH,
  AMP_RELAY_PACKAGE,
  AMP_RELAY_SERVICE,
  AMP_RELAY_UNIT_PATH,
} from "../../templates/host/ampRelay";
import { shellWord } from "../../templates/shell";
import type { InstallPlan } from "./scripts";

export const AMP_RELAY_PUSH = {
  actions: [
    { prefix: `${AMP_RELAY_DIR}/`, then: { service: AMP_RELAY_SERVICE, action: "restart" } },
    { prefix: AMP_RELAY_ENV_PATH, then: { service: AMP_RELAY_SERVICE, action: "restart" } },
    { prefix: AMP_RELAY_UNIT_PATH, then: { service: AMP_RELAY_SERVICE, action: "restart" } },
  ],
  extra: [
    `if ! dpkg-query -W -f='\${Status}' ${shellWord(AMP_RELAY_PACKAGE)} 2>/dev/null | grep -q 'ok installed'; then`,
    "  sudo DEBIAN_FRONTEND=noninteractive apt-get update -q",
    `  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${shellWord(AMP_RELAY_PACKAGE)}`,
    `  changed="$changed ${AMP_RELAY_DIR}/"`,
    "fi",
    `sudo systemctl enable --quiet ${shellWord(`${AMP_RELAY_SERVICE}.service`)}`,
  ],
} as const satisfies Pick<InstallPlan, "actions" | "extra">;

/**
 * The Prometheus push's lines with metricsStore=local: a stack switched back from amp stops,
 * disables and removes the relay an earlier push installed (its unit, settings and package
 * directory), so nothing keeps listening on loopback or restarts it at boot. They run in the push
 * and not as a `delete` of a resource of its own: a delete runs on `pulumi destroy` too, and an
 * SSH step there would stall the teardown of a stack whose Prometheus host is already stopped.
 * python3-botocore stays installed (another package may need it; removing it frees nothing that
 * matters). `root` prefixes every path, for tests that run the lines in a scratch directory.
 * systemd 252: `reset-failed` while the unit is still loaded, so a relay that had failed leaves
 * no "not-found failed" unit behind in `systemctl --failed` once its file is gone; only then, as a
 * stopped unit that did not fail is no longer loaded and reset-failed refuses it.
 */
export function ampRelayRemovalLines(root = ""): string[] {
  const unit = shellWord(`${root}${AMP_RELAY_UNIT_PATH}`);
  const env = shellWord(`${root}${AMP_RELAY_ENV_PATH}`);
  const dir = shellWord(`${root}${AMP_RELAY_DIR}`);
  const service = shellWord(`${AMP_RELAY_SERVICE}.service`);
  return [
    `if [ -e ${unit} ] || [ -e ${env} ] || [ -e ${dir} ]; then`,
    `  if [ -e ${unit} ]; then`,
    `    sudo systemctl disable --quiet --now ${service}`,
    // Only a failed unit: one that stopped cleanly is unloaded (garbage-collected) and
    // ResetFailedUnit then answers "Unit … not loaded." (systemd src/core/dbus-manager.c
    // bus_get_unit_by_name), exit 1, failing the push: seen on the fleet's systemd 252.
    `    if systemctl is-failed --quiet ${service}; then sudo systemctl reset-failed ${service}; fi`,
    `    sudo rm -f ${unit}`,
    "    sudo systemctl daemon-reload",
    "  fi",
    `  sudo rm -rf ${env} ${dir}`,
    `  echo "removed ${AMP_RELAY_SERVICE}"`,
    "fi",
  ];
}
