/**
 * The fleet's fixed facts in one table: the address plan it takes its IPs from, the bridge,
 * the proxy, the cache directory, the login user. Everything else in tests/fleet imports these.
 */
import { addressPlan, type AddressPlan } from "../../facts/addressing";
import { hostAddress, parseCidr } from "../../facts/cidr";
import { CONFIG_KEYS } from "../../facts/config";

/** The VPC range of the plan; the bridge carries its first subnet, which is ours alone. */
export const FLEET_VPC_CIDR = "10.42.0.0/16";
export const FLEET_WEB_COUNT = 1;

export const FLEET_PLAN: AddressPlan = addressPlan(FLEET_VPC_CIDR, FLEET_WEB_COUNT);

const subnet = parseCidr(FLEET_PLAN.subnetCidr);
if (!subnet) throw new Error(`address plan subnet ${FLEET_PLAN.subnetCidr} is not a CIDR`);
/** The host side of the bridge: the subnet's first address, which AWS keeps for its router too. */
export const BRIDGE_ADDRESS = hostAddress(subnet, 1);
export const SUBNET_PREFIX = Number(FLEET_PLAN.subnetCidr.split("/")[1]);

/** Linux interface names have at most 15 characters. */
export const BRIDGE_NAME = "titanfleet0";

/** apt-cacher-ng's port, on the bridge address (for the hosts) and loopback (for debootstrap). */
export const APT_PROXY_PORT = 3142;

/** Debian's archive, as the image's sources name it; apt reaches it only through the proxy. */
export const DEBIAN_MIRROR = "http://deb.debian.org/debian";
export const DEBIAN_SECURITY = "http://deb.debian.org/debian-security";
export const DEBIAN_SUITE = "bookworm";

/** Outside the repository: survives clones and `git clean`, shared by every run on the machine. */
export const CACHE_DIR = process.env.TITAN_FLEET_CACHE ?? "/var/cache/titan-fleet";

const sshUserKey = CONFIG_KEYS.find((k) => k.key === "sshUser");
const sshUserDefault = sshUserKey && "default" in sshUserKey ? sshUserKey.default : undefined;
if (typeof sshUserDefault !== "string") throw new Error("facts/config.ts has no string default for sshUser");
/** The image's login user: the stack's sshUser default (Debian's AMIs log in as admin). */
export const LOGIN_USER: string = sshUserDefault;
