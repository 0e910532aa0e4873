/**
 * Grafana's secrets changed on a running stack, applied as `pulumi up` would (provision.ts
 * applyUpdate), and checked by their effect on the host: a webhook set and then rotated
 * restarts grafana-server with the new value in its process environment (Grafana reads its
 * environment and provisioning only at start); removed, it restarts without it and the contact
 * points file asks Grafana to delete the stored contact point; a rotated admin password is
 * reset in Grafana's database: the new one logs in, the old one is refused.
 */
import { GRAFANA_SERVICE } from "../../../templates/host/grafanaServer";
import { SLACK_CONTACT_POINT, SLACK_WEBHOOK_ENV } from "../../../templates/grafana";
import { GRAFANA_PATHS } from "../../../templates/grafana/constants";
import { grafanaAdminLogin, grafanaGet, type GrafanaLogin } from "./effects";
import { key } from "../../support/snapshots";
import { waitFor } from "../exec";
import { applyUpdate, type ProvisionedFleet, type UpdateResult } from "../provision";
import { isVerificationStep } from "./changes";
import { serviceState, shell, type CheckHost } from "./host";
import { checked, fail, oneLine, type CheckResult } from "./result";
import type { LiveTiming } from "../matrix";

/** Only the Grafana host's steps ran (the verification's markers aside). */
function onlyGrafanaRan(change: string, update: UpdateResult): CheckResult {
  const ran = update.ran.filter((r) => !isVerificationStep(r.resource));
  const strays = ran.filter((r) => r.host !== "grafana");
  const ok = strays.length === 0 && ran.some((r) => r.host === "grafana");
  return {
    name: `${change}: only the grafana push runs`,
    host: "fleet",
    ok,
    detail: `ran: ${ran.map((r) => `${r.host}:${r.resource} (${r.action})`).join(", ") || "nothing"}`,
  };
}

/** The webhook set to `url` (or removed, with null): Grafana restarts with (or without) it. */
async function webhookApplied(
  pf: ProvisionedFleet,
  h: CheckHost,
  change: string,
  url: string | null,
  previous?: string,
): Promise<{ results: CheckResult[]; live?: LiveTiming }> {
  const before = await serviceState(h, GRAFANA_SERVICE);
  const started = Date.now();
  const update = await applyUpdate(pf, { slackWebhookUrl: url });
  const results = [onlyGrafanaRan(change, update)];
  let live: LiveTiming | undefined;
  const what = url === null ? "without the webhook in its environment" : "with the new value in its environment";
  results.push(
    await checked(`${change}: ${GRAFANA_SERVICE} restarted ${what}`, h.name, async () => {
      const after = await waitFor(
        `${GRAFANA_SERVICE} running again`,
        async () => {
          const s = await serviceState(h, GRAFANA_SERVICE);
          return s.invocation !== before.invocation ? s : undefined;
        },
        { timeoutMs: 60_000 },
      );
      live = { host: h.name, seconds: (Date.now() - started) / 1000 };
      const value = after.env.get(SLACK_WEBHOOK_ENV);
      const ok = url === null ? value === undefined : value === url && (previous === undefined || value !== previous);
      const held =
        value === undefined
          ? "is not set"
          : value === url
            ? "is the new value"
            : value === previous
              ? "is still the OLD value"
              : "is another value";
      return {
        ok,
        detail: `InvocationID ${before.invocation.slice(0, 8)} -> ${after.invocation.slice(0, 8)}; ${SLACK_WEBHOOK_ENV} ${held}`,
      };
    }),
  );
  if (url === null) {
    // templates/grafana/alerting.ts contactPointsFile: without a webhook the file deletes it.
    results.push(
      await checked(`${change}: the contact points file deletes ${SLACK_CONTACT_POINT.uid}`, h.name, async () => {
        const r = await shell(h, `cat ${GRAFANA_PATHS.contactPoints}`);
        const ok = r.status === 0 && /deleteContactPoints:/.test(r.out) && r.out.includes(SLACK_CONTACT_POINT.uid);
        return { ok, detail: ok ? "deleteContactPoints names it" : oneLine(r.out, 200) };
      }),
    );
  }
  return { results, live };
}

/** GET /api/user with basic auth: the HTTP status. */
const signIn = async (h: CheckHost, login: GrafanaLogin): Promise<number> =>
  (await grafanaGet(h, "/api/user", login)).status;

export async function grafanaSecretChanges(
  pf: ProvisionedFleet,
  hosts: readonly CheckHost[],
): Promise<{ results: CheckResult[]; live: LiveTiming[] }> {
  const h = hosts.find((x) => x.role === "grafana");
  if (!h)
    return { results: [fail("Grafana secret changes", "fleet", "no grafana host in this run: not checked")], live: [] };
  const first = "https://hooks.slack.com/services/T0FLEET/B0FLEET/first0000";
  const second = "https://hooks.slack.com/services/T0FLEET/B0FLEET/second000";
  const steps = [
    await webhookApplied(pf, h, "slackWebhookUrl set", first),
    await webhookApplied(pf, h, "slackWebhookUrl rotated", second, first),
    await webhookApplied(pf, h, "slackWebhookUrl removed", null, second),
  ];
  const results = steps.flatMap((s) => s.results);
  const live = steps.flatMap((s) => (s.live ? [s.live] : []));

  const old = grafanaAdminLogin(pf);
  const rotation = Number(pf.config[key("grafanaAdminPasswordRotation")] ?? 0) + 1;
  const started = Date.now();
  const update = await applyUpdate(pf, { grafanaAdminPasswordRotation: String(rotation) });
  const fresh = grafanaAdminLogin(pf);
  results.push(onlyGrafanaRan("grafanaAdminPasswordRotation raised", update));
  results.push(
    await checked(
      "admin password rotated: the reset ran, the new password logs in, the old one is refused",
      h.name,
      async () => {
        const install = update.ran.find((r) => r.host === h.name && r.resource.endsWith("-push-install"));
        const reset = install?.stdout?.includes("grafana admin password set") ?? false;
        const status = await waitFor(
          "Grafana answering /api/user",
          async () => {
            const now = await signIn(h, fresh).catch(() => undefined);
            return now === undefined ? undefined : { fresh: now, stale: await signIn(h, old) };
          },
          { timeoutMs: 60_000 },
        );
        if (status.fresh === 200) live.push({ host: h.name, seconds: (Date.now() - started) / 1000 });
        return {
          ok: fresh.password !== old.password && reset && status.fresh === 200 && status.stale === 401,
          detail: `password ${fresh.password === old.password ? "NOT " : ""}regenerated; reset ${reset ? "ran" : "did NOT run"}; new password: HTTP ${status.fresh}, old: HTTP ${status.stale}`,
        };
      },
    ),
  );
  return { results, live };
}
