/**
 * The `metricsStore` key moved on a running stack: amp, then back to local, each applied as
 * `pulumi up` would (provision.ts applyUpdate) and checked by its effect on the hosts.
 *
 * amp: the fleet's fake AMP (fakeAmp.ts) runs on the bridge in the harness, verifying every write's
 * SigV4 signature against the credentials the fleet's fake IMDS issued; the relay's env file names
 * it instead of the mocks' unreachable workspace (provision.ts overrideAmpRelayUrl, after checking
 * the staged file is the renderer's). Then, on the Prometheus host under its real systemd: the push
 * installed python3-botocore, titan-amp-relay.service runs enabled and steady in the sandbox its
 * unit declares (systemd's view and the kernel's: a dynamic user, no capability, no new
 * privileges, a seccomp filter); the running Prometheus has remote_write to the relay and keeps
 * one day; signed writes from the Prometheus host's issued key bring samples of every target with
 * the labels the dashboards select on; only the Prometheus and Grafana pushes ran, nothing else
 * restarted. "Config change → live": from the up's start until a signed sample of every job
 * arrived. While it runs, the stack's own sample rate is measured (ampSampleRate.ts) and checked
 * against Prometheus' own count of what it sent. Then the fake AMP answers 503 and Prometheus is
 * restarted: the restart must succeed within the unit's stop timeout, and writes resume after.
 *
 * local again: the relay's removal (the Prometheus push of a local stack stops, disables and
 * removes what an amp push installed: infra/delivery/ampRelayPush.ts ampRelayRemovalLines)
 * leaves it stopped, disabled and gone (unit, env file, code; systemd no longer loads it), the
 * running Prometheus has no remote_write and the stack's retention again, nothing more reaches the
 * fake AMP although Prometheus keeps scraping, and nothing else restarted.
 */
import { randomUUID } from "node:crypto";
import YAML from "yaml";
import { AMP_LOCAL_RETENTION } from "../../facts/metricsStore";
import { SCRAPE_JOBS, TARGET_LABELS } from "../../facts/scrapeJobs";
import {
  AMP_RELAY_DIR,
  AMP_RELAY_ENV_PATH,
  AMP_RELAY_PACKAGE,
  AMP_RELAY_SERVICE,
  AMP_RELAY_UNIT_PATH,
  ampRelayUrl,
  renderAmpRelayFiles,
} from "../../templates/host/ampRelay";
import { GRAFANA_SERVICE } from "../../templates/host/grafanaServer";
import { SCRAPE_INTERVAL } from "../../templates/prometheus/config";
import { parseUnit, splitWords } from "../e2e/systemdUnit";
import { parseAmpSampleRate } from "../../templates/ampCostDocs";
import { sampleRate, type AmpSampleRate } from "./ampSampleRate";
import { changesApplied } from "./checks/changes";
import { shell, type CheckHost } from "./checks/host";
import { expectedTargets, getJson, instantQuery, type ExpectedTarget } from "./checks/prometheus";
import { checked, fail, oneLine, type CheckResult } from "./checks/result";
import { unitActive } from "./checks/system";
import { Fatal, waitFor } from "./exec";
import { startFakeAmp, type FakeAmp } from "./fakeAmp";
import { BRIDGE_ADDRESS, FLEET_WEB_COUNT } from "./layout";
import { stackContext, type ProvisionedFleet } from "./provision";
import { VENDOR_PACKAGES } from "./standins/vendor";
import { inEffect, type LiveTiming, type MatrixContext, type Transition } from "./transition";

const RELAY_UNIT = `${AMP_RELAY_SERVICE}.service`;
const SCRAPE_MS = Number(/^(\d+)s$/.exec(SCRAPE_INTERVAL)?.[1]) * 1000;
/** The measurement window: whole scrape intervals, a few of them. */
const WINDOW_SCRAPES = 4;
/** How far Prometheus' own rate of samples sent may differ from the fake's count (extrapolation over 4 points). */
const CROSS_CHECK_TOLERANCE = 0.2;
const MEASURE_TIMEOUT_MS = WINDOW_SCRAPES * SCRAPE_MS + 120_000;

/** Jobs whose exporter on the fleet is a stand-in package (standins/vendor.ts), not the vendor's daemon. */
export const STANDIN_JOBS: readonly string[] = SCRAPE_JOBS.filter((j) =>
  Object.values(VENDOR_PACKAGES).some((v) => v.daemon === (j.service as string)),
).map((j) => j.job);

/** The labels a target's samples must carry: what the dashboards and alerts select on. */
function targetLabels(pf: ProvisionedFleet, t: ExpectedTarget): Record<string, string> {
  const planned = pf.plan.hosts.find((h) => h.name === t.host);
  if (!planned) throw new Error(`${t.host}: not in the stack's plan`);
  const labels: Record<string, string> = { job: t.job, instance: planned.tags.Name };
  for (const name of TARGET_LABELS) {
    const tag = name === "role" ? planned.tags.Role : planned.tags.Environment;
    if (!tag) throw new Error(`${t.host}: no ${name} tag in the plan`);
    labels[name] = tag;
  }
  return labels;
}

const targetKey = (l: Readonly<Record<string, string>>) => `${l.job} ${l.instance}`;

/** What restarts on each owner: `onPrometheus` on the Prometheus host, grafana-server on every other (Grafana's). */
const restartsOf = (owners: readonly string[], p: CheckHost, onPrometheus: readonly string[]) =>
  Object.fromEntries(owners.map((o) => [o, o === p.name ? onPrometheus : [GRAFANA_SERVICE]]));

async function botocoreInstalled(p: CheckHost): Promise<boolean> {
  const r = await shell(p, `dpkg-query -W -f='\${Status}' ${AMP_RELAY_PACKAGE} 2>/dev/null`);
  return r.status === 0 && r.out.trim() === "install ok installed";
}

/** The running Prometheus: its remote_write URLs (its loaded config) and its retention flag. */
async function prometheusStore(prometheusUrl: string): Promise<{ remoteWrite: string[]; retention: string }> {
  const { yaml } = await getJson<{ yaml: string }>(`${prometheusUrl}/api/v1/status/config`);
  const config = YAML.parse(yaml) as { remote_write?: { url?: string }[] } | null;
  const flags = await getJson<Record<string, string>>(`${prometheusUrl}/api/v1/status/flags`);
  return {
    remoteWrite: (config?.remote_write ?? []).map((r) => String(r.url)),
    retention: flags["storage.tsdb.retention.time"] ?? "(unset)",
  };
}

/** One number from the running Prometheus' query API at `atS` (the sum of the vector); undefined if empty. */
async function promScalar(prometheusUrl: string, query: string, atS: number): Promise<number | undefined> {
  const vector = await instantQuery(prometheusUrl, query, atS);
  return vector.length === 0 ? undefined : vector.reduce((n, r) => n + r.value, 0);
}

/**
 * Directives of the relay's sandbox that `systemctl show` prints as the unit file writes them
 * (booleans as yes/no); RestrictAddressFamilies is compared as a set, capabilities and the
 * seccomp filter from the kernel's view of the process.
 */
const SHOWN_AS_WRITTEN = [
  "DynamicUser",
  "NoNewPrivileges",
  "PrivateTmp",
  "PrivateDevices",
  "ProtectSystem",
  "ProtectHome",
  "ProtectKernelTunables",
  "ProtectKernelModules",
  "ProtectKernelLogs",
  "ProtectControlGroups",
  "ProtectClock",
  "ProtectHostname",
  "RestrictRealtime",
  "RestrictSUIDSGID",
  "LockPersonality",
  "MemoryDenyWriteExecute",
  "UMask",
] as const;

/** The relay runs in the sandbox its rendered unit declares: systemd's properties and the kernel's view of the process. */
function relaySandboxed(pf: ProvisionedFleet, p: CheckHost, change: string): Promise<CheckResult> {
  return checked(`${change}: ${RELAY_UNIT} runs in the sandbox its unit declares`, p.name, async () => {
    const rendered = renderAmpRelayFiles(stackContext(pf.plan)).find((f) => f.path === AMP_RELAY_UNIT_PATH);
    if (!rendered) return { ok: false, detail: "the stack renders no relay unit" };
    const service = parseUnit(rendered.content).get("Service");
    const declared = (k: string) => service?.get(k)?.at(-1);
    const keys = [...SHOWN_AS_WRITTEN, "RestrictAddressFamilies", "MainPID"];
    const show = await p.exec(["systemctl", "show", "-p", keys.join(","), RELAY_UNIT]);
    const props = new Map(
      show.out
        .trim()
        .split("\n")
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as const),
    );
    const problems: string[] = [];
    for (const k of SHOWN_AS_WRITTEN) {
      const want = declared(k);
      if (want === undefined) problems.push(`${k} not in the rendered unit`);
      else if (props.get(k) !== want) problems.push(`${k}=${props.get(k)} (unit: ${want})`);
    }
    const families = (v: string | undefined) =>
      splitWords(v ?? "")
        .sort()
        .join(" ");
    if (families(props.get("RestrictAddressFamilies")) !== families(declared("RestrictAddressFamilies"))) {
      problems.push(
        `RestrictAddressFamilies=${props.get("RestrictAddressFamilies")} (unit: ${declared("RestrictAddressFamilies")})`,
      );
    }
    const pid = props.get("MainPID") ?? "";
    if (!/^[1-9]\d*$/.test(pid)) return { ok: false, detail: `no main process (MainPID=${pid})` };
    const status = (await shell(p, `cat /proc/${pid}/status`)).out;
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1]?.trim() ?? "";
    const uid = field("Uid").split(/\s+/)[0];
    // DynamicUser: systemd allocates from 61184-65519 (systemd 252 DYNAMIC_UID_MIN/MAX).
    if (!(Number(uid) >= 61184 && Number(uid) <= 65519)) problems.push(`runs as uid ${uid}, not a dynamic user`);
    if (field("NoNewPrivs") !== "1") problems.push(`NoNewPrivs ${field("NoNewPrivs")}`);
    if (field("Seccomp") !== "2") problems.push(`Seccomp ${field("Seccomp")} (2: a filter)`);
    for (const cap of ["CapBnd", "CapEff", "CapPrm"]) {
      if (!/^0+$/.test(field(cap))) problems.push(`${cap} ${field(cap)}`);
    }
    return {
      ok: problems.length === 0,
      detail: problems.length
        ? problems.join("; ")
        : `${SHOWN_AS_WRITTEN.length + 1} directives as the unit writes them; pid ${pid} uid ${uid}, no capability, NoNewPrivs, seccomp filter`,
    };
  });
}

/** metricsStore=amp applied: the fake AMP started, the up run, every effect checked, the sample rate measured. */
async function ampApplied(
  ctx: MatrixContext,
  amp: FakeAmp,
  p: CheckHost,
  owners: readonly string[],
): Promise<{ results: CheckResult[]; live?: LiveTiming; sampleRate?: AmpSampleRate }> {
  const { pf, hosts, prometheusUrl } = ctx;
  const change = "metricsStore=amp";
  const aws = pf.aws as NonNullable<ProvisionedFleet["aws"]>;
  const promInstance = pf.hosts.find((h) => h.slot.name === p.name)?.instanceId ?? "";
  const issued = aws.credentials.get(promInstance);
  if (!issued || !prometheusUrl) {
    return {
      results: [fail(change, p.name, `the IMDS issued no credentials to ${promInstance}, or no Prometheus URL`)],
    };
  }
  const targets = expectedTargets(hosts);
  const jobs = [...new Set(targets.map((t) => t.job))].sort();
  const botocoreBefore = await botocoreInstalled(p);
  const requestsBefore = amp.requests.length;
  const applied = await changesApplied(
    pf,
    hosts,
    change,
    { metricsStore: "amp" },
    restartsOf(owners, p, ["prometheus"]),
  );
  const { started } = applied;
  const results: CheckResult[] = [...applied.results];

  // First signed sample of every job: "config change → live".
  const e = await inEffect(`${change}: a signed sample of every job reaches the fake AMP`, p.name, started, () => {
    const seen = new Set(amp.samples.map((s) => s.labels.job));
    const missing = jobs.filter((j) => !seen.has(j));
    return Promise.resolve({
      ok: missing.length === 0,
      detail: missing.length ? `no sample yet of ${missing.join(", ")}` : `samples of ${jobs.join(", ")}`,
    });
  });
  results.push(e.result);

  const installedNow = await botocoreInstalled(p);
  results.push({
    name: `${change}: the push installed ${AMP_RELAY_PACKAGE}`,
    host: p.name,
    ok: !botocoreBefore && installedNow,
    detail: `before the up: ${botocoreBefore ? "installed" : "not installed"}; after: ${installedNow ? "install ok installed" : "not installed"}`,
  });
  results.push(await unitActive(p, RELAY_UNIT));
  results.push(
    await checked(`${change}: ${RELAY_UNIT} enabled`, p.name, async () => {
      const r = await p.exec(["systemctl", "is-enabled", RELAY_UNIT]);
      return { ok: r.out.trim() === "enabled", detail: `is-enabled: ${r.out.trim()}` };
    }),
  );
  results.push(await relaySandboxed(pf, p, change));
  const store = await inEffect(
    `${change}: the running Prometheus writes to the relay and keeps ${AMP_LOCAL_RETENTION}`,
    p.name,
    started,
    async () => {
      const s = await prometheusStore(prometheusUrl);
      return {
        ok: JSON.stringify(s.remoteWrite) === JSON.stringify([ampRelayUrl()]) && s.retention === AMP_LOCAL_RETENTION,
        detail: `remote_write ${JSON.stringify(s.remoteWrite)}, storage.tsdb.retention.time=${s.retention}`,
      };
    },
  );
  results.push(store.result);

  // Every target's samples, with the labels the dashboards use, and its `up` at 1.
  results.push(
    ...(await Promise.all(
      targets.map((t) =>
        checked(`${change}: ${t.job} of ${t.host} arrives with its labels, up 1`, t.host, async () => {
          const want = targetLabels(pf, t);
          let detail = "";
          await waitFor(
            `up of ${targetKey(want)} at the fake AMP`,
            () => {
              const mine = amp.samples.filter((s) => targetKey(s.labels) === targetKey(want));
              const up = mine.filter((s) => s.labels.__name__ === "up");
              const others = mine.filter((s) => s.labels.__name__ !== "up" && !s.labels.__name__.startsWith("scrape_"));
              const wrong = mine.find((s) => Object.entries(want).some(([k, v]) => s.labels[k] !== v));
              detail = `${mine.length} samples, ${up.length} of up (last ${up.at(-1)?.value}), ${others.length} of its own metrics${
                wrong ? `; ${wrong.labels.__name__} has ${JSON.stringify(wrong.labels)}` : ""
              }`;
              if (wrong) throw new Fatal(detail);
              return up.at(-1)?.value === 1 && others.length > 0 ? true : undefined;
            },
            { timeoutMs: 60_000, intervalMs: 500, why: () => detail },
          );
          return {
            ok: true,
            detail: `${detail}; ${TARGET_LABELS.join(", ")}: ${TARGET_LABELS.map((k) => want[k]).join(", ")}`,
          };
        }),
      ),
    )),
  );

  // Measure the stack's sample rate over whole scrape intervals, once every sample of the window arrived.
  const windowSeconds = (WINDOW_SCRAPES * SCRAPE_MS) / 1000;
  const fromMs = Date.now();
  const toMs = fromMs + windowSeconds * 1000;
  let sampleRateRecord: AmpSampleRate | undefined;
  results.push(
    await checked(
      `${change}: the stack's sample rate over ${WINDOW_SCRAPES} scrape intervals, Prometheus' own count agreeing`,
      "fleet",
      async () => {
        let why = "";
        await waitFor(
          "a sample after the window of every target",
          () => {
            const latest = new Map<string, number>();
            for (const s of amp.samples) {
              const k = targetKey(s.labels);
              latest.set(k, Math.max(latest.get(k) ?? 0, s.timestampMs));
            }
            const behind = targets
              .map((t) => targetKey(targetLabels(pf, t)))
              .filter((k) => (latest.get(k) ?? 0) < toMs + SCRAPE_MS);
            why = `waiting for ${behind.join(", ")}`;
            return behind.length === 0 ? true : undefined;
          },
          { timeoutMs: MEASURE_TIMEOUT_MS, intervalMs: 1000, why: () => why },
        );
        const webHosts = hosts.filter((h) => h.role === "web").length;
        const rate = sampleRate(amp.samples, fromMs, windowSeconds, Math.max(webHosts, 1));
        // storage/remote/queue_manager.go (v2.42.0, newQueueManagerMetrics): samples_total, "Total
        // number of samples sent to remote storage", per remote_write queue.
        const sent = await promScalar(
          prometheusUrl,
          `sum(rate(prometheus_remote_storage_samples_total[${windowSeconds}s]))`,
          toMs / 1000,
        );
        const agree =
          sent !== undefined && Math.abs(sent - rate.samplesPerSecond) <= CROSS_CHECK_TOLERANCE * rate.samplesPerSecond;
        const missingJobs = jobs.filter((j) => !(j in rate.byJob));
        const measured = {
          measured: new Date().toISOString().slice(0, 10),
          run: "fleet",
          webCount: FLEET_WEB_COUNT,
          scrapeIntervalSeconds: SCRAPE_MS / 1000,
          windowSeconds,
          ...rate,
          standIns: STANDIN_JOBS.filter((j) => jobs.includes(j)),
        };
        ctx.log(`AMP sample rate: ${JSON.stringify(measured)}`);
        // Held to the schema the cost generator reads; a rate without every job is not recorded.
        if (missingJobs.length === 0) sampleRateRecord = parseAmpSampleRate(measured, "the fleet's measured rate");
        return {
          ok: agree && missingJobs.length === 0,
          detail: `${rate.samplesPerSecond} samples/s at the fake AMP (${Object.entries(rate.byJob)
            .map(([j, n]) => `${j} ${n}`)
            .join(", ")}); Prometheus' rate(prometheus_remote_storage_samples_total) ${
            sent === undefined ? "empty" : sent.toFixed(2)
          }${missingJobs.length ? `; no samples of ${missingJobs.join(", ")} in the window` : ""}`,
        };
      },
    ),
  );

  // Every write was signed with the key the IMDS issued to the Prometheus host, and accepted.
  results.push(
    await checked(`${change}: every write signed with the Prometheus host's issued key, accepted`, p.name, () => {
      const mine = amp.requests.slice(requestsBefore);
      const bad = mine.filter(
        (r) => r.status !== 200 || r.accessKeyId !== issued.accessKeyId || r.from !== p.privateIp,
      );
      return Promise.resolve({
        ok: mine.length > 0 && bad.length === 0,
        detail: `${mine.length} writes from ${p.privateIp} with ${issued.accessKeyId}${
          bad.length
            ? `; ${bad.length} otherwise, e.g. ${JSON.stringify({ ...bad[0], error: oneLine(bad[0].error ?? "", 200) })}`
            : ""
        }`,
      });
    }),
  );
  return { results, live: e.live, sampleRate: sampleRateRecord };
}

/** How long the outage check waits for a refused write, and for an accepted one after it. */
const OUTAGE_WAIT_MS = 90_000;

/**
 * A Prometheus restart while AMP is away: its queue holds samples it cannot send, and its stop
 * waits `--storage.remote.flush-deadline` for them (facts/metricsStore.ts AMP_FLUSH_DEADLINE_SECONDS)
 * inside Debian's TimeoutStopSec=20s with SendSIGKILL=no. With 2.42's default minute systemd gave
 * up on the stop and refused the start while the old process lived: Prometheus stayed down. The
 * restart must succeed, and Prometheus' writes be accepted again once AMP is back.
 */
async function restartDuringOutage(amp: FakeAmp, p: CheckHost, change: string): Promise<CheckResult[]> {
  const refused = () => amp.requests.filter((r) => r.status === 503).length;
  const results: CheckResult[] = [];
  const refusedBefore = refused();
  amp.setDown(true);
  try {
    results.push(
      await checked(
        `${change}: with AMP answering 503, a restart of Prometheus succeeds within its unit's stop timeout`,
        p.name,
        async () => {
          // Two refusals: Prometheus' queue holds samples it is retrying, so the stop has something to flush.
          await waitFor("writes refused by the fake AMP", () => (refused() >= refusedBefore + 2 ? true : undefined), {
            timeoutMs: OUTAGE_WAIT_MS,
            why: () => `${refused() - refusedBefore} refused so far`,
          });
          const before = (await shell(p, "systemctl show -p InvocationID --value prometheus")).out.trim();
          const r = await shell(
            p,
            "systemctl restart prometheus; echo rc=$?; systemctl show -p ActiveState,Result,InvocationID prometheus",
            60_000,
          );
          const after = /^InvocationID=(\S*)$/m.exec(r.out)?.[1] ?? "";
          const ok = /^rc=0$/m.test(r.out) && /^ActiveState=active$/m.test(r.out) && after !== "" && after !== before;
          return { ok, detail: oneLine(r.out, 300) };
        },
      ),
    );
  } finally {
    amp.setDown(false);
  }
  const acceptedBefore = amp.requests.length;
  results.push(
    await checked(`${change}: once AMP is back, the restarted Prometheus' writes are accepted`, p.name, async () => {
      await waitFor(
        "a write accepted after the outage",
        () => (amp.requests.slice(acceptedBefore).some((r) => r.status === 200) ? true : undefined),
        { timeoutMs: OUTAGE_WAIT_MS, why: () => `${amp.requests.length - acceptedBefore} requests since` },
      );
      return { ok: true, detail: "accepted" };
    }),
  );
  return results;
}

/** Back to local: the relay removed, Prometheus without remote_write and with the stack's retention, the fake AMP quiet. */
async function localAgain(
  ctx: MatrixContext,
  amp: FakeAmp,
  p: CheckHost,
  owners: readonly string[],
): Promise<CheckResult[]> {
  const { pf, hosts, prometheusUrl } = ctx;
  const change = "metricsStore back to local";
  if (!prometheusUrl) return [fail(change, p.name, "no Prometheus URL")];
  const applied = await changesApplied(
    pf,
    hosts,
    change,
    { metricsStore: null },
    restartsOf(owners, p, ["prometheus", RELAY_UNIT]),
  );
  const { started, ended: upEnded } = applied;
  const results: CheckResult[] = [...applied.results];
  const days = `${stackContext(pf.plan).config.retention.prometheusDays}d`;
  const store = await inEffect(
    `${change}: the running Prometheus has no remote_write and keeps ${days} again`,
    p.name,
    started,
    async () => {
      const s = await prometheusStore(prometheusUrl);
      return {
        ok: s.remoteWrite.length === 0 && s.retention === days,
        detail: `remote_write ${JSON.stringify(s.remoteWrite)}, storage.tsdb.retention.time=${s.retention}`,
      };
    },
  );
  results.push(store.result);
  results.push(
    await checked(
      `${change}: ${RELAY_UNIT} stopped, not enabled, its unit, env file and code gone`,
      p.name,
      async () => {
        const show = await p.exec(["systemctl", "show", "-p", "LoadState,ActiveState,UnitFileState", RELAY_UNIT]);
        const files = await shell(
          p,
          `for f in ${AMP_RELAY_UNIT_PATH} ${AMP_RELAY_ENV_PATH} ${AMP_RELAY_DIR}; do [ -e "$f" ] && echo "$f"; done; true`,
        );
        const props = oneLine(show.out.replace(/\n/g, " "));
        const ok =
          /ActiveState=inactive/.test(show.out) &&
          !/UnitFileState=enabled/.test(show.out) &&
          /LoadState=not-found/.test(show.out) &&
          files.out.trim() === "";
        return { ok, detail: `${props}; left: ${files.out.trim().split("\n").filter(Boolean).join(" ") || "nothing"}` };
      },
    ),
  );
  // Nothing more reaches the fake AMP, while Prometheus goes on scraping: two scrapes of every
  // target after the up ended, and not one write since.
  results.push(
    await checked(`${change}: nothing more reaches the fake AMP while Prometheus scrapes on`, p.name, async () => {
      const requestsAtEnd = amp.requests.filter((r) => r.atMs <= upEnded).length;
      const threshold = (upEnded + 2 * SCRAPE_MS) / 1000;
      let oldest = 0;
      await waitFor(
        "two scrapes of every target after the up",
        async () => {
          oldest = (await promScalar(prometheusUrl, "min(timestamp(up))", Date.now() / 1000)) ?? 0;
          return oldest >= threshold ? true : undefined;
        },
        { timeoutMs: 4 * SCRAPE_MS + 60_000, intervalMs: 1000, why: () => `oldest last scrape at ${oldest}` },
      );
      const since = amp.requests.length - requestsAtEnd;
      return {
        ok: since === 0,
        detail: `${since} writes after the up ended; every target scraped again up to ${new Date(oldest * 1000).toISOString()}`,
      };
    }),
  );
  return results;
}

export const metricsStoreAmp: Transition = {
  id: "metricsStore amp, then local",
  change: "metricsStore set to amp (the fleet's fake AMP in place of the workspace), then back to local (its default)",
  expect:
    "only the Prometheus and Grafana pushes run each time, only Prometheus and Grafana restart; with amp the push installs python3-botocore, titan-amp-relay runs enabled in its sandbox, the running Prometheus writes to it and keeps one day, and signed writes with the Prometheus host's key bring every job's samples with their labels; with AMP answering 503 a restart of Prometheus succeeds and writes resume after; back to local the relay is stopped, disabled and removed, Prometheus has no remote_write and the stack's retention, and nothing more is written",
  async run(ctx) {
    const { pf, hosts } = ctx;
    const p = hosts.find((h) => h.role === "prometheus");
    if (!p || !pf.aws || !ctx.prometheusUrl) {
      return { results: [fail(this.id, "fleet", "needs the prometheus host and the fake EC2 API and IMDS")], live: [] };
    }
    const owners = pf.plan.hosts.filter((h) => h.role === "prometheus" || h.role === "grafana").map((h) => h.name);
    const aws = pf.aws;
    const amp = await startFakeAmp(pf.cleanup, {
      address: BRIDGE_ADDRESS,
      region: stackContext(pf.plan).config.region,
      workspaceId: `ws-${randomUUID()}`,
      lookup: (accessKeyId) => [...aws.credentials.values()].find((c) => c.accessKeyId === accessKeyId),
    });
    pf.ampRemoteWriteUrl = amp.remoteWriteUrl;
    // A half whose machinery fails (its up failed on a host) is that half's failure; the other still runs.
    const failed = (half: string) => (err: unknown) => [fail(`${this.id}: ${half}`, "fleet", (err as Error).message)];
    try {
      const on = await ampApplied(ctx, amp, p, owners).catch((err) => ({
        results: failed("metricsStore=amp")(err),
        live: undefined,
        sampleRate: undefined,
      }));
      const outage = await restartDuringOutage(amp, p, "metricsStore=amp").catch(failed("restart during an outage"));
      const off = await localAgain(ctx, amp, p, owners).catch(failed("back to local"));
      return {
        results: [...on.results, ...outage, ...off],
        live: on.live ? [on.live] : [],
        sampleRate: on.sampleRate,
      };
    } finally {
      pf.ampRemoteWriteUrl = undefined;
      await amp.stop();
    }
  },
};
