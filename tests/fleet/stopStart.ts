/**
 * A host stopped and started outside Pulumi (the console, an operator, a scheduled stop): EC2
 * gives an instance a new auto-assigned public address at every start, but every host of the
 * stack has its own Elastic IP (infra/host.ts), which stays associated. So the next `up` with
 * nothing changed runs nothing, and the next change reaches the host at the address EC2 lists
 * now (provision.ts runSteps refuses a push that dials any other) with its pinned host key,
 * without a refresh. The fleet stops and starts it as a reboot of the same root (same disk,
 * same host key, as an EBS root keeps them) with its data volume attached late; the fake EC2
 * API moves or keeps its address as EC2 does (awsEndpoints.ts stopStart).
 */
import { secondUpNoOp } from "./checks/changes";
import { fail, pass, type CheckResult } from "./checks/result";
import { rebootDataHost, volumeToken } from "./faults";
import { bump, thresholdTransition, type Transition } from "./matrix";
import { setContainer } from "./provision";

export const stoppedAndStarted: Transition = {
  id: "host stopped and started",
  change: "the Grafana host stopped and started outside Pulumi",
  expect:
    "its Elastic IP stays its address, so the next up with nothing changed runs nothing, and a change after it reaches the host at the address EC2 lists, its pinned host key verified",
  async run(ctx) {
    const h = ctx.hosts.find((x) => x.role === "grafana");
    const p = ctx.pf.hosts.find((x) => x.slot.role === "grafana");
    const aws = ctx.pf.aws;
    if (!h || !p || !aws)
      return { results: [fail("stop and start", "fleet", "no Grafana host or no fake EC2")], live: [] };
    const volume = p.volume;
    if (!volume) return { results: [fail("stop and start", h.name, "the Grafana host has no data volume")], live: [] };
    const before = aws.publicIpOf(p.instanceId);
    ctx.log(`${h.name}: stopping and starting`);
    // Down and up again with its volume attached late (as an EBS volume may be after a start):
    // Grafana must wait for its mount and find its data (faults.ts rebootDataHost).
    const rebooted = await rebootDataHost(h, volume, volumeToken(h), ctx.pf.cleanup, ctx.log, () =>
      aws.stopStart(p.instanceId),
    );
    setContainer(ctx.pf, h.name, h.container);
    const after = aws.publicIpOf(p.instanceId);
    const results: CheckResult[] = [
      ...rebooted.map((r) => ({ ...r, name: r.name.replace(/^after reboot/, "stopped and started") })),
      before !== undefined && after === before && after === p.planned.publicIp
        ? pass("stopped and started: EC2 lists it at its Elastic IP still", h.name, `${after}`)
        : fail("stopped and started: EC2 lists it at its Elastic IP still", h.name, `before ${before}, after ${after}`),
      ...(await secondUpNoOp(ctx.pf, ctx.hosts)).map((r) => ({ ...r, name: `after a stop and start: ${r.name}` })),
    ];
    const change = await thresholdTransition("after a stop and start: rootDiskCriticalPercent", (pf) => ({
      rootDiskCriticalPercent: bump(pf, "rootDiskCriticalPercent"),
    })).run(ctx);
    return { results: [...results, ...change.results], live: change.live };
  },
};
