/**
 * The lifecycle matrix: each transition of a running stack the fleet proves, applied as `pulumi
 * up` would apply it (provision.ts applyUpdate: the program rendered before and after under the
 * mocks, the engine's steps run on the hosts, a replaced instance booted again), and checked by
 * its effect on the host: the new value in the running daemon (its API, its environment), not
 * only the file or which push ran. Each transition also reports "config change → live": the
 * seconds from the start of its `up` until the change was seen in effect on the host.
 *
 * TRANSITIONS is the table; runMatrix applies them in order, each on the state the one before
 * left (as successive `up`s of one stack do).
 */
import { alertDefinitions } from "../../templates/alerts";
import { GRAFANA_PATHS } from "../../templates/grafana/constants";
import { GRAFANA_SERVICE } from "../../templates/host/grafanaServer";
import { lokiRetentionHours } from "../../templates/loki/config";
import { CONFIG_KEYS, type ConfigKey } from "../../facts/config";
import { key } from "../support/snapshots";
import { changeApplied, secondUpNoOp } from "./checks/changes";
import {
  grafanaAdminLogin,
  grafanaRuleThreshold,
  grafanaRuleUids,
  lokiRunningConfig,
  retentionSeconds,
} from "./checks/effects";
import { grafanaSecretChanges } from "./checks/grafanaSecrets";
import { shell } from "./checks/host";
import { getJson } from "./checks/prometheus";
import { checked, fail, oneLine } from "./checks/result";
import { editProgram } from "./programEdits";
import { metricsStoreAmp } from "./metricsStoreTransition";
import { remediationModes } from "./remediationModes";
import { stackContext, type ProvisionedFleet } from "./provision";

import { inEffect, type LiveTiming, type MatrixContext, type Transition, type TransitionRecord } from "./transition";

export { inEffect, type LiveTiming, type MatrixContext, type Transition, type TransitionRecord };

const thresholds = (pf: ProvisionedFleet) =>
  new Map(alertDefinitions(stackContext(pf.plan).config).map((a) => [a.uid, a.threshold]));

/** Threshold keys changed in one `up`: every rule whose threshold moved holds the new one in Grafana. */
export function thresholdTransition(id: string, changes: (pf: ProvisionedFleet) => Record<string, string>): Transition {
  return {
    id,
    change: `${id} changed`,
    expect: "only the Grafana push runs, only Grafana restarts; the running Grafana evaluates the new threshold",
    async run({ pf, hosts }) {
      const before = thresholds(pf);
      const { results, started } = await changeApplied(pf, hosts, id, changes(pf), "grafana", [GRAFANA_SERVICE]);
      const after = thresholds(pf);
      const moved = [...after].filter(([uid, t]) => before.get(uid) !== t);
      const grafana = hosts.find((h) => h.role === "grafana");
      const live: LiveTiming[] = [];
      if (moved.length === 0)
        results.push(fail(`${id}: a rule's threshold moves`, "fleet", "no rule's threshold changed"));
      if (!grafana) return { results, live };
      for (const [uid, threshold] of moved) {
        const e = await inEffect(`${id}: Grafana evaluates ${uid} at ${threshold}`, grafana.name, started, async () => {
          const held = await grafanaRuleThreshold(grafana, uid, grafanaAdminLogin(pf));
          return { ok: held === threshold, detail: `Grafana holds ${uid} at ${String(held)}` };
        });
        results.push(e.result);
        if (e.live) live.push(e.live);
      }
      return {
        results,
        live: live.length ? [{ host: grafana.name, seconds: Math.max(...live.map((l) => l.seconds)) }] : [],
      };
    },
  };
}

/**
 * A retention key is one daemon's alone: only its host's push runs, only the daemon restarts, and
 * the running daemon holds the new number of days (`held` asks it: its API, not the file).
 */
function retentionTransition(
  role: "prometheus" | "loki",
  id: "prometheusRetentionDays" | "lokiRetentionDays",
  unit: string,
  held: (days: number, ctx: MatrixContext) => Promise<{ ok: boolean; detail: string }>,
): Transition {
  return {
    id,
    change: `${id} changed`,
    expect: `only the ${role} push runs, only ${unit} restarts; the running daemon holds the new retention`,
    async run(ctx) {
      const days = Number(bump(ctx.pf, id));
      const { results, started } = await changeApplied(
        ctx.pf,
        ctx.hosts,
        `${id} change`,
        { [id]: String(days) },
        role,
        [unit],
      );
      const e = await inEffect(`${id}: the running ${unit} keeps ${days} days`, role, started, () => held(days, ctx));
      return { results: [...results, e.result], live: e.live ? [e.live] : [] };
    },
  };
}

/** A numeric key's value in the applied stack, or its documented default (facts/config.ts), moved by `delta`. */
export function bump(pf: ProvisionedFleet, name: ConfigKey, delta = 1): string {
  const spec = CONFIG_KEYS.find((k) => k.key === name);
  const current = Number(pf.config[key(name)] ?? (spec && "default" in spec ? spec.default : NaN));
  if (!Number.isInteger(current)) throw new Error(`${name}: no integer value or default to move`);
  return String(current + delta);
}

export const TRANSITIONS: readonly Transition[] = [
  {
    id: "nothing changed",
    change: "a second `pulumi up` with nothing changed",
    expect: "no command runs, no service restarts, no pushed file changes",
    run: async ({ pf, hosts }) => ({ results: await secondUpNoOp(pf, hosts), live: [] }),
  },
  thresholdTransition("rootDiskCriticalPercent", (pf) => ({
    rootDiskCriticalPercent: bump(pf, "rootDiskCriticalPercent", 5),
  })),
  thresholdTransition("cpuWarningPercent, memoryWarningPercent, logErrorLinesPerMinute", (pf) => ({
    cpuWarningPercent: bump(pf, "cpuWarningPercent", -5),
    memoryWarningPercent: bump(pf, "memoryWarningPercent", -5),
    logErrorLinesPerMinute: bump(pf, "logErrorLinesPerMinute", 15),
  })),
  retentionTransition("prometheus", "prometheusRetentionDays", "prometheus", async (days, { prometheusUrl }) => {
    if (!prometheusUrl) throw new Error("no Prometheus in this run");
    const flags = await getJson<Record<string, string>>(`${prometheusUrl}/api/v1/status/flags`);
    const retention = flags["storage.tsdb.retention.time"];
    return { ok: retention === `${days}d`, detail: `flag storage.tsdb.retention.time=${retention}` };
  }),
  retentionTransition("loki", "lokiRetentionDays", "loki", async (days, { hosts }) => {
    const loki = hosts.find((h) => h.role === "loki");
    if (!loki) throw new Error("no Loki in this run");
    const held = retentionSeconds(await lokiRunningConfig(loki));
    const ok = held === lokiRetentionHours(days) * 3600;
    return { ok, detail: `/config: limits_config.retention_period ${held / 86400} days` };
  }),
  {
    id: "slackWebhookUrl set, rotated, removed; admin password rotated",
    change: "slackWebhookUrl set, then rotated, then removed; grafanaAdminPasswordRotation raised",
    expect:
      "only the Grafana push runs each time; Grafana restarts with the new webhook in its environment, and without it once removed (its contact point deleted); the new password logs in, the old one is refused",
    run: async ({ pf, hosts }) => {
      const r = await grafanaSecretChanges(pf, hosts);
      return { results: r.results, live: r.live };
    },
  },
  remediationModes,
  {
    id: "alert rule removed",
    change: "an alert rule taken out of the table (its uid retired)",
    expect:
      "only the Grafana push runs; the rules file's deleteRules reach the host and Grafana no longer holds the rule",
    async run({ pf, hosts }) {
      const uid = "titan-app-error-log-lines";
      editProgram({ retireAlerts: [uid] });
      const { results, started } = await changeApplied(pf, hosts, "alert rule removed", {}, "grafana", [
        GRAFANA_SERVICE,
      ]);
      const grafana = hosts.find((h) => h.role === "grafana");
      if (!grafana) return { results, live: [] };
      results.push(
        await checked(
          `alert rule removed: ${GRAFANA_PATHS.alertRules} lists ${uid} under deleteRules`,
          grafana.name,
          async () => {
            const r = await shell(grafana, `cat ${GRAFANA_PATHS.alertRules}`);
            const section = r.out.slice(r.out.indexOf("deleteRules:"));
            const ok = r.status === 0 && r.out.includes("deleteRules:") && section.includes(uid);
            return { ok, detail: ok ? "deleteRules names it" : `file: ${oneLine(r.out, 200)}` };
          },
        ),
      );
      const e = await inEffect(
        `alert rule removed: Grafana no longer holds ${uid}`,
        grafana.name,
        started,
        async () => {
          const uids = await grafanaRuleUids(grafana, grafanaAdminLogin(pf));
          return {
            ok: uids.length > 0 && !uids.includes(uid),
            detail: `Grafana holds ${uids.length} rules${uids.includes(uid) ? `, ${uid} among them` : ""}`,
          };
        },
      );
      return { results: [...results, e.result], live: e.live ? [e.live] : [] };
    },
  },
  // Last: it leaves the stack on local again, as every transition before it found it.
  metricsStoreAmp,
];

/** Runs the table in order; a transition whose machinery fails is that transition's failure. */
export async function runMatrix(ctx: MatrixContext, table = TRANSITIONS): Promise<TransitionRecord[]> {
  const records: TransitionRecord[] = [];
  for (const t of table) {
    ctx.log(`transition: ${t.id}`);
    try {
      const r = await t.run(ctx);
      records.push({ id: t.id, ...r });
    } catch (err) {
      records.push({ id: t.id, results: [fail(t.id, "fleet", (err as Error).message)], live: [] });
    }
  }
  return records;
}

/** One line per transition: its checks' verdict and config change → live per host. */
export function transitionLines(records: readonly TransitionRecord[]): string {
  const rows = records.map((r) => {
    const failed = r.results.filter((x) => !x.ok).length;
    const verdict =
      failed === 0 ? `${r.results.length} checks passed` : `${failed} of ${r.results.length} checks FAILED`;
    const live = r.live.map((l) => `${l.host} ${l.seconds.toFixed(1)} s`).join(", ") || "-";
    return `transition ${r.id}: ${verdict}; config change → live: ${live}`;
  });
  return `${rows.join("\n")}\n`;
}
