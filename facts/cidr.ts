/** Small IPv4 CIDR arithmetic: enough for validation and the address plan, no dependency. */

export interface Cidr {
  readonly base: number; // network address as an unsigned 32-bit integer
  readonly prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

/** Parses "a.b.c.d/n"; returns undefined for anything else, including host bits set. */
export function parseCidr(text: string): Cidr | undefined {
  const match = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  if (!match) return undefined;
  const address = parseIpv4(match[1]);
  const prefix = Number(match[2]);
  if (address === undefined || prefix > 32) return undefined;
  const cidr = { base: address, prefix };
  return networkOf(cidr) === address ? cidr : undefined;
}

/** The canonical form of a CIDR whose host bits are set ("10.0.0.5/24" -> "10.0.0.0/24"). */
export function canonicalCidr(text: string): string | undefined {
  const match = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  const address = match ? parseIpv4(match[1]) : undefined;
  if (!match || address === undefined || Number(match[2]) > 32) return undefined;
  return formatCidr({ base: networkOf({ base: address, prefix: Number(match[2]) }), prefix: Number(match[2]) });
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.base)}/${cidr.prefix}`;
}

function blockSize(prefix: number): number {
  return 2 ** (32 - prefix);
}

function networkOf(cidr: Cidr): number {
  return cidr.base - (cidr.base % blockSize(cidr.prefix));
}

export function contains(outer: Cidr, inner: Cidr): boolean {
  return (
    inner.prefix >= outer.prefix &&
    inner.base >= outer.base &&
    inner.base + blockSize(inner.prefix) <= outer.base + blockSize(outer.prefix)
  );
}

/** The RFC 1918 private ranges: a VPC outside them would shadow public addresses. */
export const PRIVATE_RANGES: readonly Cidr[] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"].map(
  (c) => parseCidr(c) as Cidr,
);

export const isPrivate = (cidr: Cidr): boolean => PRIVATE_RANGES.some((range) => contains(range, cidr));

/** The first subnet of `prefix` bits inside `cidr`. */
export function firstSubnet(cidr: Cidr, prefix: number): Cidr {
  if (prefix < cidr.prefix) throw new Error(`cannot take a /${prefix} out of ${formatCidr(cidr)}`);
  return { base: cidr.base, prefix };
}

/** The address `offset` hosts into the block. */
export function hostAddress(cidr: Cidr, offset: number): string {
  if (offset < 0 || offset >= blockSize(cidr.prefix)) {
    throw new Error(`offset ${offset} is outside ${formatCidr(cidr)}`);
  }
  return formatIpv4(cidr.base + offset);
}
