/**
 * `node build/tests/fleet/main.js [--hosts web-1,prometheus] [--hold]`: boots the fleet, prints
 * each host's readiness and timings, and removes everything it made: at the end, on a failure,
 * or on SIGINT/SIGTERM. --hold keeps the hosts up until interrupted (to look around inside).
 */
import { Cleanup } from "./cleanup";
import { startFleet, type Fleet } from "./fleet";

interface Args {
  readonly hosts?: string[];
  readonly hold: boolean;
}

export function parseArgs(argv: readonly string[]): Args {
  let hosts: string[] | undefined;
  let hold = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--hold") hold = true;
    else if (a === "--hosts" && argv[i + 1]) hosts = argv[++i].split(",").filter(Boolean);
    else throw new Error(`argument ${JSON.stringify(a)}: expected --hosts NAME[,NAME...] or --hold`);
  }
  return { hosts, hold };
}

export function summary(fleet: Fleet): string {
  const lines = [
    `base image ${fleet.image.key}: ${fleet.image.built ? "built" : "from cache"} in ${fleet.imageSeconds.toFixed(1)} s`,
    "host         ip            boot→ssh  boot→cloud-init end  systemd    cloud-init  failed units",
    ...fleet.hosts.map((h) =>
      [
        h.slot.name.padEnd(12),
        h.slot.privateIp.padEnd(13),
        `${h.bootToSshSeconds.toFixed(1)} s`.padEnd(9),
        `${h.bootToCloudInitSeconds.toFixed(1)} s`.padEnd(20),
        h.readiness.systemState.padEnd(10),
        h.readiness.cloudInit.padEnd(11),
        h.readiness.failedUnits.join(" ") || "-",
      ].join(" "),
    ),
  ];
  return `${lines.join("\n")}\n`;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const cleanup = new Cleanup();
  cleanup.onSignals();
  const log = (l: string) => process.stderr.write(`fleet: ${l}\n`);
  let status = 0;
  try {
    const fleet = await startFleet(cleanup, { hosts: args.hosts, log });
    process.stdout.write(summary(fleet));
    for (const h of fleet.hosts) {
      if (h.readiness.cloudInit !== "done")
        process.stdout.write(`\n--- ${h.slot.name}: ${h.readiness.cloudInitDetail}\n`);
    }
    if (args.hold) {
      log("holding; interrupt (Ctrl-C) to remove everything");
      // A timer keeps the event loop (and so the process) alive until a signal ends it.
      await new Promise(() => setInterval(() => undefined, 1 << 30));
    }
  } catch (err) {
    process.stderr.write(`fleet: FAILED: ${(err as Error).message}\n`);
    status = 1;
  }
  const failures = await cleanup.run();
  for (const f of failures) process.stderr.write(`fleet: cleanup failed: ${f}\n`);
  return failures.length > 0 ? 1 : status;
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
