/**
 * Each role's cloud-init user data: the apt pins, systemd units and drop-ins, logrotate policy
 * and the bootstrap script, run once at first boot. It depends on the role (and the id of the
 * role's data volume) alone, so a changed threshold, dashboard or peer address never touches
 * it and never replaces a host.
 */
import { hasDataVolume, type Role } from "../../facts/topology";
import { readProjectFile } from "../projectFiles";
import { GRAFANA_APT, type AptRepository } from "../../facts/versions";
import { APT_PREFERENCES_PATH, renderAptPreferences } from "./aptPins";
import { renderSshdDropIn, renderTimesyncdDropIn, SSHD_DROP_IN_PATH, TIMESYNCD_DROP_IN_PATH } from "./baseline";
import {
  BOOTSTRAP_PATH,
  bootstrapPlan,
  dataMountDropInPath,
  renderBootstrapScript,
  renderDataMountDropIn,
} from "./bootstrap";
import { renderCloudConfig, type CloudConfig, type WriteFile } from "./cloudInit";
import { GRAFANA_DROP_IN_PATH, renderGrafanaDropIn } from "./grafanaServer";
import { unitsFor } from "./units";

/** EC2's limit on user data, before base64. */
export const USER_DATA_LIMIT = 16 * 1024;

const file = (path: string, content: string, permissions = "0644"): WriteFile => ({
  path,
  content,
  permissions,
  owner: "root:root",
});

/**
 * Everything user data may depend on: the role, the id of its data volume if it has one, and
 * where the vendor packages come from (only for the roles that install one).
 */
export interface UserDataInput {
  readonly role: Role;
  readonly dataVolumeId?: string;
  /** The stack's `vendorAptRepository`; Grafana's own when absent. */
  readonly vendorRepository?: AptRepository;
}

export function cloudConfigFor({ role, dataVolumeId, vendorRepository = GRAFANA_APT }: UserDataInput): CloudConfig {
  const plan = bootstrapPlan(role, dataVolumeId, vendorRepository);
  const files: WriteFile[] = [
    file(APT_PREFERENCES_PATH, renderAptPreferences(plan.pinned, vendorRepository)),
    ...unitsFor(role).map((unit) => file(unit.path, unit.content)),
    file(TIMESYNCD_DROP_IN_PATH, renderTimesyncdDropIn()),
    file(SSHD_DROP_IN_PATH, renderSshdDropIn(), "0600"),
  ];
  if (hasDataVolume(role)) files.push(file(dataMountDropInPath(role), renderDataMountDropIn(role)));
  if (role === "web") files.push(file("/etc/logrotate.d/titan", readProjectFile("app/packaging/titan.logrotate")));
  // Here, not in the push: the unit must be held back from its very first boot on.
  if (role === "grafana") files.push(file(GRAFANA_DROP_IN_PATH, renderGrafanaDropIn()));
  files.push(file(BOOTSTRAP_PATH, renderBootstrapScript(plan), "0755"));
  return {
    package_update: false,
    package_upgrade: false,
    write_files: files,
    runcmd: [[BOOTSTRAP_PATH]],
    output: { all: "| tee -a /var/log/cloud-init-output.log" },
  };
}

export function renderUserData(input: UserDataInput): string {
  const { role } = input;
  const text = renderCloudConfig(cloudConfigFor(input));
  if (Buffer.byteLength(text) > USER_DATA_LIMIT) {
    throw new Error(`user data of the ${role} role is ${Buffer.byteLength(text)} bytes, over EC2's ${USER_DATA_LIMIT}`);
  }
  return text;
}
