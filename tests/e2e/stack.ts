/**
 * Brings up, inside one network namespace, the parts of the stack that have real binaries here,
 * using the files the templates render for the hosts: node_exporter on every host address, the
 * Titan app and its traffic generator on each web host, and Prometheus with the rendered
 * prometheus.yml (its EC2 endpoint pointed at the fake). Tears everything down again, on failure
 * and on SIGINT/SIGTERM too.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { SERVICES, type ServiceName } from "../../facts/topology";
import { TITAN_APP_DIR, unitsFor } from "../../templates/host/units";
import { PROMETHEUS_CONFIG_PATH, prometheusArgs, renderPrometheusFiles } from "../../templates/prometheus/config";
import { SCRAPE_JOBS, SELF_JOB } from "../../facts/scrapeJobs";
import type { TemplateContext } from "../../templates/types";
import { ROOT } from "../support/files";
import { testContext } from "../support/render";
import { snapshot } from "../support/snapshots";
import { titanReadyPids } from "../support/titanReady";
import { bridgeRequest } from "./bridge";
import type { Ec2Instance, Ec2Request } from "./fakeEc2";
import { decoys, instancesFromSnapshot, tag } from "./hosts";
import { createNamespace, deleteNamespace, namespaceExists, namespacePids, requireRoot, type Namespace } from "./netns";
import type { HelperConfig, HelperReady } from "./nsHelper";
import { PrometheusApi } from "./prometheusApi";
import { parseDuration } from "./promql";
import { Processes } from "./processes";
import { parseUnit, serviceDirective, splitWords, unitEnvironment } from "./systemdUnit";
import { waitFor as sharedWaitFor } from "../support/wait";

/** Requests per second from each traffic generator: higher than production's, to get data quickly. */
export const E2E_TRAFFIC_RATE = 15;
/** Page size of the fake EC2 API, below the host count so Prometheus must follow NextToken. */
const EC2_PAGE_SIZE = 2;
const PYTHON = "/usr/bin/python3";
const NODE_EXPORTER = "/usr/bin/prometheus-node-exporter";
const PROMETHEUS = "/usr/bin/prometheus";
/** Collectors the dashboards and alerts read; they must work here. */
export const REQUIRED_COLLECTORS = ["cpu", "meminfo", "filesystem", "loadavg", "diskstats", "netdev"] as const;
/** Debian enables the systemd collector, which needs a system D-Bus the namespace does not have. */
const DISABLED_COLLECTORS = ["systemd"];

/** Services with a binary on this machine; the rest are only discovered. */
const RUNNABLE: readonly ServiceName[] = ["nodeExporter", "titan", "prometheus"];
export const RUNNABLE_JOBS: readonly string[] = [
  SELF_JOB,
  ...SCRAPE_JOBS.filter((j) => RUNNABLE.includes(j.service)).map((j) => j.job),
];
export const NOT_RUNNABLE_JOBS: readonly string[] = SCRAPE_JOBS.filter((j) => !RUNNABLE.includes(j.service)).map(
  (j) => j.job,
);

export interface WebHost {
  readonly name: string;
  readonly ip: string;
  readonly logDir: string;
  readonly app: string;
  readonly traffic: string;
}

export interface Stack {
  readonly ctx: TemplateContext;
  readonly ns: Namespace;
  readonly root: string;
  readonly procs: Processes;
  readonly instances: readonly Ec2Instance[];
  readonly decoys: readonly Ec2Instance[];
  readonly webHosts: readonly WebHost[];
  readonly prom: PrometheusApi;
  readonly prometheusConfig: string;
  readonly scrapeIntervalMs: number;
  readonly startedAt: number;
  readonly socketPath: string;
  ec2Requests(): Ec2Request[];
  get(url: string): Promise<{ status: number; body: string }>;
  diagnostics(): string;
  teardown(): Promise<void>;
}

/** tests/support/wait.ts's wait, in the argument order this suite's callers use. */
export const waitFor = <T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  intervalMs = 500,
): Promise<T> => sharedWaitFor(what, probe, { timeoutMs, intervalMs });

/** Re-roots an absolute host path under the run's temporary root. */
const under = (root: string, hostPath: string) => path.join(root, "host", hostPath);

/** The rendered unit for a web host, read back as data. */
export function webUnit(file: string) {
  const unit = unitsFor("web").find((u) => u.path.endsWith(`/${file}`));
  if (!unit) throw new Error(`unitsFor("web") renders no ${file}`);
  return parseUnit(unit.content);
}

/** The unit's paths point at the deployed copy of app/; here that is this checkout's app/. */
const appPath = (p: string) =>
  p.startsWith(TITAN_APP_DIR) ? path.join(ROOT, "app", p.slice(TITAN_APP_DIR.length)) : p;

export async function startStack(): Promise<Stack> {
  requireRoot();
  const startedAt = Date.now();
  const ctx = testContext();
  const instances = instancesFromSnapshot(await snapshot());
  const fakes = decoys(instances);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "titan-e2e-"));
  const procs = new Processes(path.join(root, "logs"));
  const ns = createNamespace(
    `titan-e2e-${process.pid}`,
    instances.map((i) => i.privateIp),
  );
  const socketPath = path.join(root, "bridge.sock");
  const baseEnv = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8", HOME: root };

  let tornDown = false;
  const teardownSync = () => {
    if (tornDown) return;
    tornDown = true;
    procs.killAllSync();
    killNamespaceLeftovers(ns.name);
    deleteNamespace(ns.name);
    fs.rmSync(root, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    void teardown().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  const teardown = async () => {
    if (tornDown) return;
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("exit", teardownSync);
    await procs.stopAll();
    teardownSync();
    if (namespaceExists(ns.name)) throw new Error(`network namespace ${ns.name} is still there`);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.once("exit", teardownSync);

  const get = (url: string) => bridgeRequest(socketPath, url, { timeoutMs: 10_000 });
  const diagnostics = () => procs.diagnostics();

  try {
    // The fake EC2 API and the bridge, inside the namespace.
    const helperConfig: HelperConfig = {
      socketPath,
      region: ctx.config.region,
      pageSize: EC2_PAGE_SIZE,
      instances: [...instances, ...fakes],
      allowedHosts: ["127.0.0.1", ...instances.map((i) => i.privateIp)],
    };
    const helperConfigPath = path.join(root, "helper.json");
    fs.writeFileSync(helperConfigPath, JSON.stringify(helperConfig));
    const helper = procs.start(
      "ns-helper",
      ...ns.wrap(process.execPath, [path.join(__dirname, "nsHelper.js"), helperConfigPath]),
      { env: baseEnv },
    );
    const ready = await waitFor("the fake EC2 API and bridge", 10_000, () =>
      Promise.resolve(
        fs
          .readFileSync(helper.logPath, "utf8")
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as Partial<HelperReady>)
          .find((m) => m.ready),
      ),
    );

    // node_exporter, as every host runs one, on that host's address.
    for (const i of instances) {
      procs.start(
        `node-exporter-${tag(i, "Role")}-${i.privateIp}`,
        ...ns.wrap(NODE_EXPORTER, [
          `--web.listen-address=${i.privateIp}:${SERVICES.nodeExporter.port}`,
          ...DISABLED_COLLECTORS.map((c) => `--no-collector.${c}`),
        ]),
        { env: baseEnv },
      );
    }

    // The Titan app and its traffic generator on each web host, as their units run them.
    const titanUnit = webUnit("titan.service");
    const trafficUnit = webUnit("titan-traffic.service");
    const webHosts: WebHost[] = instances
      .filter((i) => tag(i, "Role") === "web")
      .map((i) => {
        const name = tag(i, "Name");
        const dir = path.join(root, "web", name);
        const host: WebHost = {
          name,
          ip: i.privateIp,
          logDir: path.join(dir, "log"),
          app: `titan-${name}`,
          traffic: `traffic-${name}`,
        };
        fs.mkdirSync(path.join(dir, "run"), { recursive: true });
        const appEnv = {
          ...baseEnv,
          ...unitEnvironment(titanUnit),
          TITAN_LOG_DIR: host.logDir,
          TITAN_DATA_DIR: path.join(dir, "data"),
          // Production binds 0.0.0.0 on its own host; here the hosts share one namespace, so each
          // app binds its host's address and a scrape of the wrong address fails.
          TITAN_BIND: i.privateIp,
          RUNTIME_DIRECTORY: path.join(dir, "run"),
        };
        const [cmd, ...args] = splitWords(serviceDirective(titanUnit, "ExecStart")).map(appPath);
        procs.start(host.app, ...ns.wrap(cmd, args), { env: appEnv });

        const trafficEnv = unitEnvironment(trafficUnit);
        const target = new URL(trafficEnv.TITAN_TRAFFIC_TARGET);
        target.hostname = i.privateIp;
        const [tcmd, ...targs] = splitWords(serviceDirective(trafficUnit, "ExecStart"));
        // Debian's interpreter sees Debian's python3-* packages; another python3 may not.
        if (tcmd !== PYTHON) throw new Error(`the traffic unit runs ${tcmd}, not ${PYTHON}`);
        procs.start(host.traffic, ...ns.wrap(tcmd, targs), {
          env: {
            ...baseEnv,
            ...trafficEnv,
            TITAN_TRAFFIC_TARGET: target.toString().replace(/\/$/, ""),
            TITAN_TRAFFIC_RATE: String(E2E_TRAFFIC_RATE),
          },
          cwd: appPath(serviceDirective(trafficUnit, "WorkingDirectory")),
        });
        return host;
      });

    // Prometheus with the rendered prometheus.yml; only the EC2 endpoint differs from production.
    const rendered = renderPrometheusFiles(ctx, { ec2Endpoint: `http://127.0.0.1:${ready.ec2Port}` });
    const configFile = rendered.find((f) => f.path === PROMETHEUS_CONFIG_PATH);
    if (!configFile) throw new Error(`renderPrometheusFiles renders no ${PROMETHEUS_CONFIG_PATH}`);
    const configPath = under(root, PROMETHEUS_CONFIG_PATH);
    fs.mkdirSync(path.dirname(configPath), { recursive: true });
    fs.writeFileSync(configPath, configFile.content);
    const parsed = YAML.parse(configFile.content) as { global?: { scrape_interval?: string } };
    const scrapeIntervalMs = parseDuration(parsed.global?.scrape_interval ?? "1m");
    // Every path flag points into the temporary root; the rest (listen address, retention) is as rendered.
    const args = prometheusArgs(ctx).map((flag) => {
      const m = /^(--[^=]+)=(\/.*)$/.exec(flag);
      return m ? `${m[1]}=${under(root, m[2])}` : flag;
    });
    procs.start("prometheus", ...ns.wrap(PROMETHEUS, args), {
      env: {
        ...baseEnv,
        // Discovery signs its requests; the fake ignores signatures, the SDK still wants keys.
        AWS_ACCESS_KEY_ID: "AKIAE2EFAKEFAKEFAKE0",
        AWS_SECRET_ACCESS_KEY: "e2e-fake-secret-key-not-used-anywhere",
        AWS_EC2_METADATA_DISABLED: "true",
      },
    });

    const prometheusIp = instances.find((i) => tag(i, "Role") === "prometheus")?.privateIp;
    if (!prometheusIp) throw new Error("the program declares no prometheus host");
    const prom = new PrometheusApi(socketPath, `http://${prometheusIp}:${SERVICES.prometheus.port}`);

    // Everything answers before the checks start.
    const endpoints = [
      `${prom.baseUrl}/-/ready`,
      ...instances.map((i) => `http://${i.privateIp}:${SERVICES.nodeExporter.port}/metrics`),
      ...webHosts.map((h) => `http://${h.ip}:${SERVICES.titan.port}/health`),
    ];
    await Promise.all(
      endpoints.map((url) =>
        waitFor(url, 20_000, async () => ((await get(url)).status === 200 ? true : undefined), 250),
      ),
    );
    // One answer proves one gunicorn worker; the others may still be loading the app. Every
    // worker logs once it serves: wait for as many as the unit asks for.
    const workers = Number(unitEnvironment(titanUnit).TITAN_WORKERS);
    if (!Number.isInteger(workers) || workers < 1) {
      throw new Error(
        `titan.service TITAN_WORKERS=${unitEnvironment(titanUnit).TITAN_WORKERS}: expected an integer >= 1`,
      );
    }
    await Promise.all(
      webHosts.map((h) =>
        waitFor(
          `${workers} workers of ${h.app} to serve`,
          30_000,
          () => {
            const ready = titanReadyPids(fs.readFileSync(procs.get(h.app).logPath, "utf8")).size;
            return Promise.resolve(ready >= workers ? true : undefined);
          },
          250,
        ),
      ),
    );

    return {
      ctx,
      ns,
      root,
      procs,
      instances,
      decoys: fakes,
      webHosts,
      prom,
      prometheusConfig: configFile.content,
      scrapeIntervalMs,
      startedAt,
      socketPath,
      ec2Requests: () =>
        fs
          .readFileSync(helper.logPath, "utf8")
          .split("\n")
          .filter((l) => l.startsWith('{"ec2"'))
          .map((l) => (JSON.parse(l) as { ec2: Ec2Request }).ec2),
      get,
      diagnostics,
      teardown,
    };
  } catch (err) {
    const message = `${(err as Error).message}\n${diagnostics()}`;
    await teardown();
    throw new Error(message);
  }
}

/** Anything still in the namespace was started by this run (the namespace is the run's own). */
function killNamespaceLeftovers(name: string): void {
  for (const pid of namespacePids(name)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}
