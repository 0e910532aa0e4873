/**
 * The cloud-config subset the hosts' user data uses, rendered with its `#cloud-config`
 * header. `cloud-init schema` validates the output in the tests.
 */
import { toYaml } from "../yaml";

export interface WriteFile {
  readonly path: string;
  readonly content: string;
  readonly permissions: string;
  readonly owner: string;
}

export interface CloudConfig {
  /** Debian's AMI refreshes package lists in the bootstrap itself, after the pins exist. */
  readonly package_update: false;
  readonly package_upgrade: false;
  readonly write_files: readonly WriteFile[];
  readonly runcmd: readonly (readonly string[])[];
  /** Where cloud-init's own output goes: the console, so failures show in `get-console-output`. */
  readonly output: { readonly all: string };
}

export const renderCloudConfig = (config: CloudConfig): string => `#cloud-config\n${toYaml(config)}`;
