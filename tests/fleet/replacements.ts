/**
 * The matrix's transitions that replace hosts, applied as `pulumi up` would (provision.ts
 * applyUpdate: the engine replaces the instances whose user data, image or key changed, deleting
 * each first, and runs each replaced host's whole push on the new one):
 * - a package pin raised (facts/versions.ts, programEdits.ts): docs/operations.md says the roles whose
 *   user data installs it are replaced; the replaced host runs the new version, keeps its volume's
 *   data, and no other host is touched;
 * - the image changed (`amiId`): every host is replaced and boots it (the fake EC2 launches it
 *   from the plan's `ami` and its metadata says so; the fleet has one real root image, so this
 *   proves which image each host is launched from, not the image's content), with its data.
 */
import { VERSIONS, type Component } from "../../facts/versions";
import { hasDataVolume } from "../../facts/topology";
import { bootstrapPlan } from "../../templates/host/bootstrap";
import { fingerprint, untouched, type Fingerprint } from "./checks/changes";
import type { ContainerHost } from "./checks/host";
import { shell } from "./checks/host";
import { lokiNeverUnconfigured } from "./checks/loki";
import { fail, oneLine, type CheckResult } from "./checks/result";
import { bootstrapMarker, cloudInitFinished, pinnedPackages, unitsActive } from "./checks/system";
import { historyKept, recordedSample, volumeMounted, volumeToken, type DataProbe } from "./faults";
import { inEffect, type LiveTiming, type MatrixContext, type Transition } from "./matrix";
import { programEdits, editProgram } from "./programEdits";
import { applyUpdate, pushCheck, type UpdateResult } from "./provision";
import type { LoopVolume } from "./volume";

/** A host's data, recorded before its replacement and read back after. */
function dataProbe(ctx: MatrixContext, h: ContainerHost): DataProbe | undefined {
  if (h.role === "prometheus" && ctx.prometheusUrl) {
    const url = ctx.prometheusUrl;
    let stamp = 0;
    return {
      record: async () => void (stamp = await recordedSample(url)),
      kept: (when) => historyKept(url, h.name, stamp, when),
    };
  }
  return hasDataVolume(h.role) ? volumeToken(h) : undefined;
}

const volumeOf = (ctx: MatrixContext, name: string): LoopVolume | undefined =>
  ctx.pf.hosts.find((p) => p.slot.name === name)?.volume;

/** What a replaced host must show: pushed, bootstrapped, its volume and data back, every unit steady. */
async function replacedHostChecks(
  ctx: MatrixContext,
  h: ContainerHost,
  probe: DataProbe | undefined,
  label: string,
): Promise<CheckResult[]> {
  const provisioned = ctx.pf.hosts.find((p) => p.slot.name === h.name);
  if (!provisioned) return [fail(`${label}: host`, h.name, "no longer in the fleet")];
  h.container = provisioned.container;
  const volume = volumeOf(ctx, h.name);
  const results: CheckResult[] = [
    pushCheck(provisioned, label),
    ...(await Promise.all([cloudInitFinished(h), bootstrapMarker(h)])).map((r) => ({
      ...r,
      name: `${label}: ${r.name}`,
    })),
  ];
  if (volume) results.push(await volumeMounted(h, volume, label));
  results.push(...(await unitsActive(h)).map((r) => ({ ...r, name: `${label}: ${r.name}` })));
  if (probe) results.push(await probe.kept(label));
  if (h.role === "loki") results.push(await lokiNeverUnconfigured(h, label));
  return results;
}

/** The replaced set is what docs/operations.md's table says for this change. */
function replacedAsDocumented(change: string, update: UpdateResult, expected: readonly string[]): CheckResult {
  const got = [...(update.replaced ?? [])].sort();
  const want = [...expected].sort();
  return {
    name: `${change}: the hosts replaced are the ones docs/operations.md names`,
    host: "fleet",
    ok: JSON.stringify(got) === JSON.stringify(want),
    detail: `replaced: ${got.join(" ") || "none"}; expected: ${want.join(" ") || "none"}`,
  };
}

/** The package's Debian version on the host (dpkg's record). */
async function installedVersion(h: ContainerHost, pkg: string): Promise<string> {
  const r = await shell(h, `dpkg-query -W -f='\${Version}' ${pkg}`);
  if (r.status !== 0) throw new Error(`dpkg-query ${pkg}: ${oneLine(r.out)}`);
  return r.out.trim();
}

export function pinRaised(component: Component): Transition {
  return {
    id: `${component} pin raised`,
    change: `${VERSIONS[component].package}'s pin raised to the next patch release in facts/versions.ts`,
    expect:
      "the roles whose user data installs it are replaced, boot with the new version and keep their data; no other host is touched",
    async run(ctx) {
      const pkg = VERSIONS[component].package;
      const installs = (h: ContainerHost) =>
        bootstrapPlan(h.role, h.dataVolumeId).pinned.some((p) => p.package === pkg);
      const expected = ctx.hosts.filter(installs);
      const others = ctx.hosts.filter((h) => !installs(h));
      const probes = new Map(expected.map((h) => [h.name, dataProbe(ctx, h)]));
      for (const p of probes.values()) await p?.record();
      const before: Fingerprint[] = await Promise.all(others.map(fingerprint));
      editProgram({ raisePins: [component] });
      const raised = VERSIONS[component];
      ctx.log(`${pkg} pin raised to ${raised.aptPin} (edits so far: ${JSON.stringify(programEdits())})`);
      const started = Date.now();
      const update = await applyUpdate(ctx.pf, {});
      const change = `${pkg} pin raised to ${raised.aptPin}`;
      const results: CheckResult[] = [
        replacedAsDocumented(
          change,
          update,
          expected.map((h) => h.name),
        ),
      ];
      const after = await Promise.all(others.map(fingerprint));
      others.forEach((h, i) => results.push(untouched(h, before[i], after[i], change)));
      const live: LiveTiming[] = [];
      for (const h of expected) {
        const label = `${change}: replaced`;
        results.push(...(await replacedHostChecks(ctx, h, probes.get(h.name), label)));
        // pinnedPackages reads the edited pins: the new version, and only it, is accepted.
        results.push(...(await pinnedPackages(h)).map((r) => ({ ...r, name: `${label}: ${r.name}` })));
        const e = await inEffect(`${change}: ${pkg} ${raised.aptPin} installed`, h.name, started, async () => {
          const version = await installedVersion(h, pkg);
          return { ok: version.startsWith(raised.aptPin), detail: `dpkg: ${pkg} ${version}` };
        });
        results.push(e.result);
        if (e.live) live.push(e.live);
      }
      return { results, live };
    },
  };
}

/** An image id the fleet's stacks have not used (amiId's form: ami- and 8 or 17 hex digits). */
export const NEXT_IMAGE = "ami-0f1ee7000000000b2";

export const imageChanged: Transition = {
  id: "image changed",
  change: "`amiId` set to another image",
  expect: "every host is replaced and launched from that image; data volumes keep their data; every unit steady",
  async run(ctx) {
    const probes = new Map(ctx.hosts.map((h) => [h.name, dataProbe(ctx, h)]));
    for (const p of probes.values()) await p?.record();
    const started = Date.now();
    const update = await applyUpdate(ctx.pf, { amiId: NEXT_IMAGE });
    const change = `amiId set to ${NEXT_IMAGE}`;
    const results: CheckResult[] = [
      replacedAsDocumented(
        change,
        update,
        ctx.hosts.map((h) => h.name),
      ),
    ];
    // Every host asked at once, right after the up: the hosts were replaced in parallel, and a
    // host's time must not include the checks of the hosts before it.
    for (const h of ctx.hosts) {
      const p = ctx.pf.hosts.find((x) => x.slot.name === h.name);
      if (p) h.container = p.container;
    }
    const launched = await Promise.all(
      ctx.hosts.map((h) =>
        // The instance metadata the host itself reads (IMDSv2, as the bootstrap does).
        inEffect(`${change}: the replaced host was launched from it`, h.name, started, async () => {
          const r = await shell(
            h,
            "t=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token) && " +
              'curl -sf -H "X-aws-ec2-metadata-token: $t" http://169.254.169.254/latest/meta-data/ami-id',
          );
          return {
            ok: r.status === 0 && r.out.trim() === NEXT_IMAGE,
            detail: `ami-id ${oneLine(r.out) || "unanswered"}`,
          };
        }),
      ),
    );
    const live = launched.flatMap((e) => (e.live ? [e.live] : []));
    results.push(...launched.map((e) => e.result));
    for (const h of ctx.hosts) {
      results.push(...(await replacedHostChecks(ctx, h, probes.get(h.name), `${change}: replaced`)));
    }
    return { results, live };
  },
};
