/**
 * Memory of an EC2 instance type, from its name, for the families this stack is sized for:
 * a daemon's memory limits must follow the host it runs on, not the vendor's defaults. EC2's
 * published sizes (instance type pages of the EC2 user guide): the burstable T families
 * (t2, t3, t3a, t4g) go from nano 0.5 GiB to 2xlarge 32 GiB; the general-purpose M, compute C
 * and memory R families have 4, 2 and 8 GiB per vCPU, with 1 vCPU for medium, 2 for large and
 * 4 for each "xlarge" step.
 */

const BURSTABLE_GIB: Readonly<Record<string, number>> = {
  nano: 0.5,
  micro: 1,
  small: 2,
  medium: 4,
  large: 8,
  xlarge: 16,
  "2xlarge": 32,
};

const GIB_PER_VCPU: Readonly<Record<string, number>> = { m: 4, c: 2, r: 8 };

function vcpus(size: string): number | undefined {
  if (size === "medium") return 1;
  if (size === "large") return 2;
  if (size === "xlarge") return 4;
  const n = /^([1-9][0-9]*)xlarge$/.exec(size)?.[1];
  return n ? 4 * Number(n) : undefined;
}

/** MiB of memory of `type`, or a sentence saying what was expected. */
export function instanceMemoryMiB(type: string): number | { expected: string } {
  const [family = "", size = ""] = type.split(".");
  const expected = {
    expected:
      "a t2/t3/t3a/t4g type (nano to 2xlarge) or an m, c or r family type (medium, large, xlarge, Nxlarge), whose memory is known",
  };
  if (/^t(2|3|3a|4g)$/.test(family)) {
    const gib = BURSTABLE_GIB[size];
    return gib === undefined ? expected : gib * 1024;
  }
  const perVcpu = GIB_PER_VCPU[family.charAt(0)];
  const count = vcpus(size);
  if (perVcpu === undefined || count === undefined || !/^[mcr][0-9]+[a-z]*$/.test(family)) return expected;
  return perVcpu * count * 1024;
}
