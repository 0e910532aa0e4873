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
