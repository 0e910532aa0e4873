/**
 * The `remediation` key moved on a running stack (dry-run, off, then back to its default), each
 * applied as `pulumi up` would and checked by its effect: the agent restarted in the new mode
 * (its process environment), a signed request answered the way that mode decides (nothing acts
 * in dry-run or off: the app keeps its main process), and Grafana's contact points and routes
 * following (the webhook contact point kept, or listed for deletion and its route gone).
 */
import YAML from "yaml";
import { GRAFANA_PATHS, REMEDIATION_HMAC_SECRET_ENV } from "../../templates/grafana/constants";
import { GRAFANA_SERVICE } from "../../templates/host/grafanaServer";
import { applyUpdate } from "./provision";
import { isVerificationStep } from "./checks/changes";
import { serviceState, shell, unitState, type CheckHost } from "./checks/host";
import {
  AGENT_UNIT,
  agentHostName,
  agentSecret,
  auditLines,
  grafanaWebhookBody,
  hostClock,
  mainPid,
  postFrom,
  signatureHeaders,
  webhookUrl,
} from "./checks/remediation";
import { checked, fail, type CheckResult } from "./checks/result";
import { inEffect, type LiveTiming, type Transition } from "./transition";

type Mode = "on" | "dry-run" | "off";

/** The parts of Grafana's contact-point provisioning file this check reads. */
interface ContactPointsFile {
  readonly contactPoints?: readonly { readonly receivers?: readonly { readonly uid?: string }[] }[];
  readonly deleteContactPoints?: readonly { readonly uid?: string }[];
}

/** The decision the agent records for an allowed, signed, firing alert in each mode. */
const DECISION: Record<Mode, string> = { on: "acted", "dry-run": "dry_run", off: "disabled" };

/** The agent's invocation and, while it runs, its mode (a stopped agent is a state the checks report, not an error). */
async function agentMode(web: CheckHost): Promise<{ invocation: string; mode?: string }> {
  const { invocation, env } = await unitState(web, AGENT_UNIT);
  return { invocation, mode: env?.get("TITAN_REMEDIATION_MODE") || undefined };
}

/** One mode applied: pushes that ran, the agent's new mode, a signed request's decision, Grafana's files. */
async function modeApplied(
  pf: Parameters<Transition["run"]>[0]["pf"],
  hosts: readonly CheckHost[],
  mode: Mode,
  value: string | null,
): Promise<{ results: CheckResult[]; live?: LiveTiming }> {
  const web = hosts.find((h) => h.role === "web");
  const grafana = hosts.find((h) => h.role === "grafana");
  if (!web || !grafana) return { results: [fail(`remediation ${mode}`, "fleet", "needs a web and a grafana host")] };
  const change = `remediation ${value === null ? "back to its default (on)" : `= ${mode}`}`;
  const before = await agentMode(web);
  const started = Date.now();
  const update = await applyUpdate(pf, { remediation: value });
  const ran = update.ran.filter((r) => !isVerificationStep(r.resource));
  // Grafana's files differ only between off and the other two (contact points, routes): dry-run
  // from on, or on from dry-run, is the web hosts' settings alone.
  const grafanaChanges = (before.mode === "off") !== (mode === "off");
  const expected = grafanaChanges ? [web.name, grafana.name] : [web.name];
  const ranOn = new Set(ran.map((r) => r.host));
  const results: CheckResult[] = [
    {
      name: `${change}: only the ${expected.join(" and ")} push${expected.length > 1 ? "es" : ""} run${expected.length > 1 ? "" : "s"}`,
      host: "fleet",
      ok: ranOn.size === expected.length && expected.every((h) => ranOn.has(h)),
      detail: `ran: ${ran.map((r) => `${r.host}:${r.resource} (${r.action})`).join(", ") || "nothing"}`,
    },
  ];
  const e = await inEffect(`${change}: the agent restarted in mode ${mode}`, web.name, started, async () => {
    const now = await agentMode(web);
    return {
      ok: now.invocation !== before.invocation && now.mode === mode,
      detail: `mode ${now.mode ?? "(not running)"}, invocation ${now.invocation === before.invocation ? "unchanged" : "new"}`,
    };
  });
  results.push(e.result);
  if (mode !== "on") {
    results.push(
      await checked(
        `${change}: a signed restart-app is recorded as ${DECISION[mode]}, the app not restarted`,
        web.name,
        async () => {
          const secret = await agentSecret(web);
          const instance = await agentHostName(web);
          const since = await hostClock(web);
          const pid = await mainPid(web, "titan.service");
          const b = grafanaWebhookBody("titan remediation", [
            { alertname: "AppNotAnswering", instance, remediation: "restart-app" },
          ]);
          const url = webhookUrl(web);
          const r = await postFrom(grafana, url, b, signatureHeaders(secret, b, Math.floor(Date.now() / 1000)));
          const after = await mainPid(web, "titan.service");
          const audit = (await auditLines(web, since)).find((l) => l.action === "restart-app");
          const ok = r.status === 200 && after === pid && audit?.decision === DECISION[mode];
          return {
            ok,
            detail: `HTTP ${r.status}; MainPID ${pid} → ${after}; audit ${audit ? JSON.stringify(audit) : "missing"}`,
          };
        },
      ),
    );
  }
  results.push(
    await checked(
      `${change}: Grafana's contact points ${mode === "off" ? "delete" : "keep"} the web host's webhook, its route ${mode === "off" ? "gone" : "kept"}`,
      grafana.name,
      async () => {
        const points = YAML.parse(
          (await shell(grafana, `cat ${GRAFANA_PATHS.contactPoints}`)).out,
        ) as ContactPointsFile;
        const policies = (await shell(grafana, `cat ${GRAFANA_PATHS.notificationPolicies}`)).out;
        const uid = `titan-remediation-${web.name}`;
        const provisioned = (points.contactPoints ?? []).some((c) => (c.receivers ?? []).some((r) => r.uid === uid));
        const deleted = (points.deleteContactPoints ?? []).some((d) => d.uid === uid);
        const routed = new RegExp(`receiver: ${uid}$`, "m").test(policies);
        const ok = mode === "off" ? deleted && !provisioned && !routed : provisioned && !deleted && routed;
        return { ok, detail: `${uid}: provisioned ${provisioned}, listed for deletion ${deleted}, routed ${routed}` };
      },
    ),
  );
  return { results, live: e.live };
}

/**
 * remediationSecretRotation set: a new key reaches Grafana (its environment, which its contact
 * points sign with) and the agent at once; the old key is refused, the new one accepted.
 */
async function keyRotated(
  pf: Parameters<Transition["run"]>[0]["pf"],
  hosts: readonly CheckHost[],
): Promise<{ results: CheckResult[]; live?: LiveTiming }> {
  const web = hosts.find((h) => h.role === "web");
  const grafana = hosts.find((h) => h.role === "grafana");
  if (!web || !grafana)
    return { results: [fail("remediation key rotated", "fleet", "needs a web and a grafana host")] };
  const change = "remediationSecretRotation set";
  const oldKey = await agentSecret(web);
  const agentBefore = await agentMode(web);
  const grafanaBefore = await serviceState(grafana, GRAFANA_SERVICE);
  const started = Date.now();
  const update = await applyUpdate(pf, { remediationSecretRotation: "1" });
  const ran = new Set(update.ran.filter((r) => !isVerificationStep(r.resource)).map((r) => r.host));
  const results: CheckResult[] = [
    {
      name: `${change}: only the web and grafana pushes run`,
      host: "fleet",
      ok: ran.size === 2 && ran.has(web.name) && ran.has(grafana.name),
      detail: `ran on: ${[...ran].join(", ") || "nothing"}`,
    },
  ];
  const e = await inEffect(
    `${change}: Grafana and the agent restarted with one new key`,
    web.name,
    started,
    async () => {
      const newKey = await agentSecret(web);
      const agent = await agentMode(web);
      const g = await serviceState(grafana, GRAFANA_SERVICE);
      const ok =
        newKey !== oldKey &&
        agent.invocation !== agentBefore.invocation &&
        g.invocation !== grafanaBefore.invocation &&
        g.env.get(REMEDIATION_HMAC_SECRET_ENV) === newKey;
      return {
        ok,
        detail: `web key ${newKey === oldKey ? "unchanged" : "new"}; agent ${agent.invocation === agentBefore.invocation ? "not restarted" : "restarted"}; Grafana ${g.invocation === grafanaBefore.invocation ? "not restarted" : "restarted"}, its key ${g.env.get(REMEDIATION_HMAC_SECRET_ENV) === newKey ? "the agent's" : "another"}`,
      };
    },
  );
  results.push(e.result);
  results.push(
    await checked(`${change}: the old key is refused (401), the new one accepted`, web.name, async () => {
      const newKey = await agentSecret(web);
      // An alert for another host: a signature accepted changes nothing (decision refused).
      const b = () =>
        grafanaWebhookBody("titan remediation", [
          { alertname: "AppNotAnswering", instance: "not-this-host", remediation: "restart-app" },
        ]);
      const url = webhookUrl(web);
      const now = () => Math.floor(Date.now() / 1000);
      const oldBody = b();
      const withOld = await postFrom(grafana, url, oldBody, signatureHeaders(oldKey, oldBody, now()));
      const newBody = b();
      const withNew = await postFrom(grafana, url, newBody, signatureHeaders(newKey, newBody, now()));
      return {
        ok: withOld.status === 401 && withNew.status === 200,
        detail: `old key: HTTP ${withOld.status}; new key: HTTP ${withNew.status}`,
      };
    }),
  );
  return { results, live: e.live };
}

export const remediationModes: Transition = {
  id: "remediation dry-run, off, on; its key rotated",
  change: "remediation set to dry-run, then off, then back to its default (on); remediationSecretRotation set",
  expect:
    "only the web push runs, and Grafana's when the mode moves from or to off; the agent restarts in the new mode and a signed request changes nothing in dry-run or off; Grafana deletes the agent's contact point and route when off and provisions them again when on; a rotated key reaches Grafana and the agent in one up, the old one refused",
  async run({ pf, hosts }) {
    const results: CheckResult[] = [];
    const live: LiveTiming[] = [];
    for (const [mode, value] of [
      ["dry-run", "dry-run"],
      ["off", "off"],
      ["on", null],
    ] as const) {
      const r = await modeApplied(pf, hosts, mode, value);
      results.push(...r.results);
      if (r.live) live.push(r.live);
    }
    const rotated = await keyRotated(pf, hosts);
    results.push(...rotated.results);
    if (rotated.live) live.push(rotated.live);
    return {
      results,
      live: live.length ? [{ host: live[0].host, seconds: Math.max(...live.map((l) => l.seconds)) }] : [],
    };
  },
};
