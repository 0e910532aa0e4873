/**
 * Runs inside the run's namespace (`ip netns exec <ns> node nsHelper.js <config.json>`): the fake
 * EC2 API on 127.0.0.1 on a free port, and the bridge the test process talks through. Prints one
 * JSON line `{"ready":...,"ec2Port":N}` once both listen, then one `{"ec2":request}` line per
 * EC2 request, so the test can see what Prometheus asked. On SIGHUP it reads the instances from
 * the config file again (a test marks a host stopped there) and prints `{"reloaded":N}`, the Nth.
 */
import * as fs from "node:fs";
import type { AddressInfo } from "node:net";
import { createBridge } from "./bridge";
import { createFakeEc2, type Ec2Instance } from "./fakeEc2";

export interface HelperConfig {
  readonly socketPath: string;
  readonly region: string;
  readonly pageSize: number;
  readonly instances: readonly Ec2Instance[];
  /** In-namespace addresses the bridge may forward to. */
  readonly allowedHosts: readonly string[];
}

export interface HelperReady {
  readonly ready: true;
  readonly ec2Port: number;
}

export interface HelperReloaded {
  readonly reloaded: number;
}

function main(): void {
  const read = () => JSON.parse(fs.readFileSync(process.argv[2], "utf8")) as HelperConfig;
  const config = read();
  // The fake reads this array on every request: replacing its contents changes what EC2 answers.
  const instances = [...config.instances];
  let reloads = 0;
  process.on("SIGHUP", () => {
    instances.splice(0, instances.length, ...read().instances);
    reloads += 1;
    const done: HelperReloaded = { reloaded: reloads };
    process.stdout.write(`${JSON.stringify(done)}\n`);
  });
  const { server } = createFakeEc2(instances, { region: config.region, pageSize: config.pageSize }, (r) =>
    process.stdout.write(`${JSON.stringify({ ec2: r })}\n`),
  );
  const bridge = createBridge(new Set(config.allowedHosts));
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo;
    bridge.listen(config.socketPath, () => {
      const ready: HelperReady = { ready: true, ec2Port: port };
      process.stdout.write(`${JSON.stringify(ready)}\n`);
    });
  });
  const stop = () => {
    server.close();
    bridge.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

if (require.main === module) main();
