/**
 * What every host gets whatever its role, carried in user data so it holds from the first boot
 * and never depends on what the image happens to ship: time from the Amazon Time Sync Service,
 * and sshd hardened explicitly.
 */

/** The Amazon Time Sync Service, at the link-local address every EC2 instance reaches. */
export const AMAZON_TIME_SYNC = "169.254.169.123";

/**
 * Debian 12's EC2 image keeps time with systemd-timesyncd (debian-cloud-images
 * src/debian_cloud_images/resources/image.yaml: the ec2 vendor builds with class TIME_SYSTEMD;
 * config_space/12/package_config/SYSTEM_BOOT installs systemd-timesyncd for it), and names the
 * Amazon service only as a fallback (config_space/12/files/etc/systemd/timesyncd.conf.d/
 * 01_debian_cloud.conf/EC2: `FallbackNTP=`), which timesyncd uses only when no other server is
 * known. Ours names it as the server, and sorts after the image's file.
 */
export const TIMESYNCD_DROP_IN_PATH = "/etc/systemd/timesyncd.conf.d/50-titan.conf";
export const TIMESYNCD_SERVICE = "systemd-timesyncd";

export function renderTimesyncdDropIn(): string {
  return [
    "# Rendered by templates/host/baseline.ts: the Amazon Time Sync Service is the server, not a fallback.",
    "[Time]",
    `NTP=${AMAZON_TIME_SYNC}`,
    "",
  ].join("\n");
}

/**
 * Debian's sshd_config includes /etc/ssh/sshd_config.d/*.conf first, and sshd keeps the first
 * value it reads for a keyword (sshd_config(5)), so this file, sorted before cloud-init's
 * 50-cloud-init.conf, wins over the image's and cloud-init's settings.
 */
export const SSHD_DROP_IN_PATH = "/etc/ssh/sshd_config.d/00-titan.conf";

/**
 * Keys only: the push (pulumi-command) and operators log in with the stack's key. No
 * forwarding of any kind: pulumi-command runs commands and SFTP over its own session, and
 * nothing in this stack tunnels through a host (the README names no use for it).
 */
export const SSHD_SETTINGS: Readonly<Record<string, string>> = {
  PermitRootLogin: "no",
  PasswordAuthentication: "no",
  KbdInteractiveAuthentication: "no",
  PermitEmptyPasswords: "no",
  AuthenticationMethods: "publickey",
  X11Forwarding: "no",
  AllowAgentForwarding: "no",
  AllowTcpForwarding: "no",
  AllowStreamLocalForwarding: "no",
  PermitTunnel: "no",
};

export function renderSshdDropIn(): string {
  return [
    "# Rendered by templates/host/baseline.ts: keys only, no root, no forwarding.",
    ...Object.entries(SSHD_SETTINGS).map(([k, v]) => `${k} ${v}`),
    "",
  ].join("\n");
}
