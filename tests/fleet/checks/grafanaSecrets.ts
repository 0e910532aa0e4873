/**
 * Grafana's secrets changed on a running stack, applied as `pulumi up` would (provision.ts
 * applyUpdate), and checked by their effect on the host (issue 17, item 1): a webhook set and
 * then rotated restarts grafana-server with the new value in its process environment (Grafana
 * reads its environment and provisioning only at start), and a rotated admin password is reset
 * in Grafana's database: the new one logs in, the old one is refused.
 */
import { GRAFANA_SERVICE } from "../../../templates/host/grafanaServer";
import { SLACK_WEBHOOK_ENV } from "../../../templates/grafana";
import { SERVICES } from "../../../facts/topology";
import { key } from "../../support/snapshots";
import { waitFor } from "../exec";
import { applyUpdate, type ProvisionedFleet, type UpdateResult } from "../provision";
import { isVerificationStep } from "./changes";
import { shell, type CheckHost } from "./host";
import { checked, fail, oneLine, type CheckResult } from "./result";

/** grafana-server's InvocationID (renewed by every start) and its main process's environment. */
async function serviceState(h: CheckHost): Promise<{ invocation: string; env: Map<string, string> }> {
  // One property a call: `systemctl show -p A,B` prints them in systemd's order, not ours.
  const prop = async (name: string) =>
    (await shell(h, `systemctl show -p ${name} --value ${GRAFANA_SERVICE}`)).out.trim();
  const invocation = await prop("InvocationID");
  const pid = await prop("MainPID");
  if (!/^[1-9]\d*$/.test(pid)) throw new Error(`${GRAFANA_SERVICE} is not running (MainPID ${pid || "unknown"})`);
  const environ = await shell(h, `tr '\\0' '\\n' </proc/${pid}/environ`);
  if (environ.status !== 0) throw new Error(`reading /proc/${pid}/environ: ${oneLine(environ.out)}`);
  const env = new Map(
    environ.out
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as [string, string]),
  );
  return { invocation, env };
}

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

async function webhookApplied(
  pf: ProvisionedFleet,
  h: CheckHost,
  change: string,
  url: string,
  previous?: string,
): Promise<CheckResult[]> {
  const before = await serviceState(h);
  const update = await applyUpdate(pf, { slackWebhookUrl: url });
  const results = [onlyGrafanaRan(change, update)];
  results.push(
    await checked(`${change}: ${GRAFANA_SERVICE} restarted with the new value in its environment`, h.name, async () => {
      const after = await waitFor(
        `${GRAFANA_SERVICE} running again`,
        async () => {
          const s = await serviceState(h);
          return s.invocation !== before.invocation ? s : undefined;
        },
        { timeoutMs: 60_000 },
      );
      const value = after.env.get(SLACK_WEBHOOK_ENV);
      const ok = value === url && (previous === undefined || value !== previous);
      return {
        ok,
        detail: `InvocationID ${before.invocation.slice(0, 8)} -> ${after.invocation.slice(0, 8)}; ${SLACK_WEBHOOK_ENV} ${
          value === url ? "is the new value" : value === previous ? "is still the OLD value" : "is missing or other"
        }`,
      };
    }),
  );
  return results;
}

/** GET /api/user with basic auth: the HTTP status. */
async function signIn(h: CheckHost, user: string, password: string): Promise<number> {
  const res = await fetch(`http://${h.privateIp}:${SERVICES.grafana.port}/api/user`, {
    headers: { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` },
    signal: AbortSignal.timeout(10_000),
  });
  return res.status;
}

const output = (pf: ProvisionedFleet, name: string): string => {
  const value = pf.plan.outputs[name]?.value;
  if (typeof value !== "string") throw new Error(`the stack exports no ${name}`);
  return value;
};

export async function grafanaSecretChanges(pf: ProvisionedFleet, hosts: readonly CheckHost[]): Promise<CheckResult[]> {
  const h = hosts.find((x) => x.role === "grafana");
  if (!h) return [fail("Grafana secret changes", "fleet", "no grafana host in this run: not checked")];
  const first = "https://hooks.slack.com/services/T0FLEET/B0FLEET/first0000";
  const second = "https://hooks.slack.com/services/T0FLEET/B0FLEET/second000";
  const results = [
    ...(await webhookApplied(pf, h, "slackWebhookUrl set", first)),
    ...(await webhookApplied(pf, h, "slackWebhookUrl rotated", second, first)),
  ];

  const user = output(pf, "grafanaAdminUser");
  const oldPassword = output(pf, "grafanaAdminPassword");
  const rotation = Number(pf.config[key("grafanaAdminPasswordRotation")] ?? 0) + 1;
  const update = await applyUpdate(pf, { grafanaAdminPasswordRotation: String(rotation) });
  const newPassword = output(pf, "grafanaAdminPassword");
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
            const fresh = await signIn(h, user, newPassword).catch(() => undefined);
            return fresh === undefined ? undefined : { fresh, stale: await signIn(h, user, oldPassword) };
          },
          { timeoutMs: 60_000 },
        );
        return {
          ok: newPassword !== oldPassword && reset && status.fresh === 200 && status.stale === 401,
          detail: `password ${newPassword === oldPassword ? "NOT " : ""}regenerated; reset ${reset ? "ran" : "did NOT run"}; new password: HTTP ${status.fresh}, old: HTTP ${status.stale}`,
        };
      },
    ),
  );
  return results;
}
