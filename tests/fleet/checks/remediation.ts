/**
 * The self-healing loop's last hop on real hosts: a Grafana-shaped, signed webhook posted from the
 * Grafana host to a web host's remediation agent (app/remediation), checked by its effect on the
 * web host. What Grafana itself sends cannot run here (the fleet's Grafana is a stand-in): the
 * body has the shape of grafana/alerting receivers/webhook/v1/webhook.go (webhookMessage around
 * templates.ExtendedData) and the headers those of http/hmac.go (hex HMAC-SHA256 of
 * "<unix seconds>:<body>"), which app/remediation's tests hold the agent to as well.
 *
 * - the agent's ports answer only the roles the security groups name (the fleet enforces those
 *   rules with its stand-in, securityGroups.ts): its webhook only Grafana, its metrics only
 *   Prometheus;
 * - an unsigned request and one from another address are refused and change nothing;
 * - below the agent, a gunicorn master that stops (app/demo/hang.sh --master) is restarted by
 *   systemd's watchdog alone;
 * - `restart-app` on an app that hangs (alive, answering nothing: app/demo/hang.sh's flag) gives
 *   gunicorn a new main process, the app answers again and Prometheus scrapes it again;
 * - `free-disk` while the disk-fill demo holds its file ends the demo, removes its file and
 *   rotates the app's logs. The host's root disk here is the machine's own (hundreds of GB, an
 *   overlay): /var/tmp gets a small tmpfs for the check, where the demo's file goes.
 */
import { createHmac, randomBytes } from "node:crypto";
import { REMEDIATION_HEADERS, remediationWebhookUrl } from "../../../facts/remediation";
import { SERVICES } from "../../../facts/topology";
import {
  REMEDIATION_ENV_PATH,
  REMEDIATION_SECRET_PATH,
  REMEDIATION_SERVICE,
  TITAN_APP_DIR,
} from "../../../templates/host/units";
import { waitFor } from "../exec";
import { activeTargets } from "./prometheus";
import { shell, type CheckHost } from "./host";
import { checked, fail, oneLine, type CheckResult } from "./result";

export const AGENT_UNIT = `${REMEDIATION_SERVICE}.service`;
/** app/demo/hang.sh's flag: while it exists in the app's runtime directory every request blocks. */
const HANG_FLAG = "/run/titan/hang";
/** The disk-fill demo's file name prefix (app/titan/diskfill.py). */
const FILL_PREFIX = ".titan-disk-fill-";
/** Where the fleet keeps the self-heal demo's output and exit status on the web host. */
const SELF_HEAL_LOG = "/run/titan-fleet-self-heal.log";
const SELF_HEAL_RC = "/run/titan-fleet-self-heal.rc";
const FILL_DIR = "/var/tmp";
/** Small enough to fill at once, and a percentage the demo accepts (at most 90). */
const FILL_TMPFS_MB = 64;
const FILL_TARGET_PCT = 80;

export interface Alert {
  readonly alertname: string;
  readonly instance: string;
  readonly remediation?: string;
  readonly status?: "firing" | "resolved";
}

/** A webhook body as Grafana's webhook notifier marshals it (field names from webhook.go and template_data.go). */
export function grafanaWebhookBody(receiver: string, alerts: readonly Alert[], now = new Date()): string {
  const rendered = alerts.map((a) => {
    const labels: Record<string, string> = {
      alertname: a.alertname,
      grafana_folder: "Titan",
      instance: a.instance,
      severity: "critical",
      ...(a.remediation ? { remediation: a.remediation } : {}),
    };
    return {
      status: a.status ?? "firing",
      labels,
      annotations: { summary: `${a.alertname} on ${a.instance}` },
      startsAt: now.toISOString(),
      endsAt: "0001-01-01T00:00:00Z",
      generatorURL: "http://grafana.invalid/alerting/grafana/x/view",
      fingerprint: randomBytes(8).toString("hex"),
      silenceURL: "",
      dashboardURL: "",
      panelURL: "",
      values: { B: 0, C: 1 },
      valueString: "[ var='B' labels={} value=0 ]",
    };
  });
  const firing = rendered.some((a) => a.status === "firing");
  return JSON.stringify({
    receiver,
    status: firing ? "firing" : "resolved",
    alerts: rendered,
    groupLabels: { alertname: alerts[0]?.alertname ?? "" },
    commonLabels: rendered[0]?.labels ?? {},
    commonAnnotations: {},
    externalURL: "http://grafana.invalid/",
    version: "1",
    groupKey: `{}:{alertname="${alerts[0]?.alertname ?? ""}"}`,
    truncatedAlerts: 0,
    orgId: 1,
    title: `[${firing ? "FIRING" : "RESOLVED"}:${alerts.length}]`,
    state: firing ? "alerting" : "ok",
    message: "",
  });
}

/** The headers Grafana's HMACRoundTripper sets with a timestamp header configured. */
export function signatureHeaders(secret: string, body: string, nowSeconds: number): Record<string, string> {
  const timestamp = String(nowSeconds);
  const signature = createHmac("sha256", secret).update(`${timestamp}:${body}`).digest("hex");
  return { [REMEDIATION_HEADERS.signature]: signature, [REMEDIATION_HEADERS.timestamp]: timestamp };
}

interface Posted {
  /** The HTTP status, or 0 when no connection was made within the connect timeout. */
  readonly status: number;
  readonly body: string;
  readonly curlExit: number;
}

/** POSTs `body` from inside `from` to `url` with curl (the body on stdin, never on a command line). */
export async function postFrom(
  from: CheckHost,
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<Posted> {
  const b64 = Buffer.from(body).toString("base64");
  // Header values are hex digits and decimals: safe inside single quotes.
  const h = Object.entries(headers)
    .map(([k, v]) => `-H '${k}: ${v}'`)
    .join(" ");
  const line = [
    `printf %s '${b64}' | base64 -d > /tmp/remediation-body`,
    `out=$(curl -sS -o /tmp/remediation-answer -w '%{http_code}' --connect-timeout 3 -m 120 -H 'Content-Type: application/json' ${h} --data-binary @/tmp/remediation-body '${url}' 2>/dev/null)`,
    "rc=$?",
    'echo "$rc $out"',
    "cat /tmp/remediation-answer 2>/dev/null; rm -f /tmp/remediation-body /tmp/remediation-answer",
  ].join("; ");
  const r = await shell(from, line, 150_000);
  const [first, ...rest] = r.out.split("\n");
  const [rc, code] = first.trim().split(" ");
  return { curlExit: Number(rc), status: Number(code ?? 0) || 0, body: rest.join("\n").trim() };
}

export async function mainPid(h: CheckHost, unit: string): Promise<string> {
  return (await shell(h, `systemctl show -p MainPID --value ${unit}`)).out.trim();
}

/** The agent's audit lines (one JSON object a line) written since `since` (a journalctl --since value). */
export async function auditLines(h: CheckHost, since: string): Promise<Record<string, unknown>[]> {
  const r = await shell(h, `journalctl -u ${AGENT_UNIT} --since '${since}' -o cat --no-pager`);
  const lines: Record<string, unknown>[] = [];
  for (const l of r.out.split("\n")) {
    if (!l.startsWith("{")) continue;
    try {
      const o = JSON.parse(l) as Record<string, unknown>;
      if (o.event === "remediation") lines.push(o);
    } catch {
      // Not an audit line.
    }
  }
  return lines;
}

export async function hostClock(h: CheckHost): Promise<string> {
  return (await shell(h, "date '+%Y-%m-%d %H:%M:%S'")).out.trim();
}

/** The HMAC secret the push delivered to the web host (the one Grafana signs with). */
export async function agentSecret(web: CheckHost): Promise<string> {
  const r = await shell(web, `cat ${REMEDIATION_SECRET_PATH}`);
  if (r.status !== 0 || r.out.trim() === "") throw new Error(`reading ${REMEDIATION_SECRET_PATH}: ${oneLine(r.out)}`);
  return r.out.trim();
}

export interface RemediationHosts {
  readonly web: CheckHost;
  readonly grafana: CheckHost;
  /** Every other host: none may reach the webhook. */
  readonly others: readonly CheckHost[];
  readonly prometheusUrl?: string;
}

export const webhookUrl = (web: CheckHost): string => remediationWebhookUrl(web.privateIp);
const metricsUrl = (web: CheckHost) => `http://${web.privateIp}:${SERVICES.remediationMetrics.port}/metrics`;

/** The agent's ports: reached by the one role each flow names, by no other host. */
async function portsClosedToOthers(hosts: RemediationHosts): Promise<CheckResult[]> {
  const { web, grafana, others } = hosts;
  const prometheus = others.find((o) => o.role === "prometheus");
  const results: CheckResult[] = [];
  results.push(
    await checked(`webhook :${SERVICES.remediation.port} answers the grafana host`, web.name, async () => {
      const r = await postFrom(grafana, webhookUrl(web), "{}");
      return { ok: r.status > 0, detail: `HTTP ${r.status} (curl exit ${r.curlExit})` };
    }),
  );
  for (const o of others) {
    results.push(
      await checked(
        `webhook :${SERVICES.remediation.port} unreachable from ${o.name} (${o.role})`,
        web.name,
        async () => {
          const r = await postFrom(o, webhookUrl(web), "{}");
          // 28: curl's connect timeout; a security group drops, so nothing answers at all.
          return {
            ok: r.status === 0 && r.curlExit === 28,
            detail: `HTTP ${r.status || "none"}, curl exit ${r.curlExit}`,
          };
        },
      ),
    );
  }
  if (prometheus) {
    results.push(
      await checked(
        `metrics :${SERVICES.remediationMetrics.port} answer prometheus, not grafana`,
        web.name,
        async () => {
          const fromProm = await shell(
            prometheus,
            `curl -s -o /dev/null -w '%{http_code}' --connect-timeout 3 ${metricsUrl(web)}`,
          );
          const fromGrafana = await shell(
            grafana,
            `curl -s -o /dev/null -w '%{http_code}' --connect-timeout 3 ${metricsUrl(web)}; echo " $?"`,
          );
          const ok = fromProm.out.trim() === "200" && /^000 28$/.test(fromGrafana.out.trim());
          return { ok, detail: `prometheus: HTTP ${fromProm.out.trim()}; grafana: ${fromGrafana.out.trim()}` };
        },
      ),
    );
  }
  return results;
}

/** The host name the agent acts for (its settings file): what an alert's instance label must be. */
export async function agentHostName(web: CheckHost): Promise<string> {
  return (await shell(web, `sed -n 's/^TITAN_REMEDIATION_HOST=//p' ${REMEDIATION_ENV_PATH}`)).out.trim();
}

/** The instance label Prometheus (and so every Grafana alert) gives the web host. */
async function instanceLabel(hosts: RemediationHosts): Promise<string> {
  const fromEnv = await agentHostName(hosts.web);
  if (!hosts.prometheusUrl) return fromEnv;
  const t = (await activeTargets(hosts.prometheusUrl)).find(
    (x) =>
      x.labels.job === "titan" && x.discoveredLabels.__address__ === `${hosts.web.privateIp}:${SERVICES.titan.port}`,
  );
  if (t && t.labels.instance !== fromEnv)
    throw new Error(`Prometheus labels the web host ${t.labels.instance}, the agent expects ${fromEnv}`);
  return fromEnv;
}

/** Refused requests: nothing restarts, and the agent says why. */
async function refusals(hosts: RemediationHosts, instance: string, secret: string): Promise<CheckResult[]> {
  const { web, grafana } = hosts;
  const body = () =>
    grafanaWebhookBody("titan remediation", [{ alertname: "AppNotAnswering", instance, remediation: "restart-app" }]);
  const results: CheckResult[] = [];
  const before = await mainPid(web, "titan.service");
  results.push(
    await checked("unsigned webhook refused (401), the app not restarted", web.name, async () => {
      const r = await postFrom(grafana, webhookUrl(web), body());
      const after = await mainPid(web, "titan.service");
      return {
        ok: r.status === 401 && after === before,
        detail: `HTTP ${r.status}: ${oneLine(r.body)}; MainPID ${before} → ${after}`,
      };
    }),
  );
  results.push(
    await checked(
      "webhook from the web host's own address refused (403), the app not restarted",
      web.name,
      async () => {
        const b = body();
        const r = await postFrom(web, webhookUrl(web), b, signatureHeaders(secret, b, Math.floor(Date.now() / 1000)));
        const after = await mainPid(web, "titan.service");
        return {
          ok: r.status === 403 && after === before,
          detail: `HTTP ${r.status}: ${oneLine(r.body)}; MainPID ${before} → ${after}`,
        };
      },
    ),
  );
  return results;
}

/** The app hung (alive, answering nothing); a signed restart-app brings it back. */
async function restartsHungApp(hosts: RemediationHosts, instance: string, secret: string): Promise<CheckResult> {
  const { web, grafana } = hosts;
  return checked(
    "self-heal.sh hang, then a signed restart-app from grafana: the hung app restarted (new main PID), answering and scraped again, the demo saw it",
    web.name,
    async () => {
      const since = await hostClock(web);
      const before = await mainPid(web, "titan.service");
      // The operator's demo makes the hang and follows the loop; its exit status says whether it
      // saw the agent fix it. In the background, as its own unit: it waits for the fix.
      const demo = await shell(
        web,
        `rm -f ${SELF_HEAL_RC}; systemd-run --unit=titan-fleet-self-heal --collect --quiet /bin/sh -c '${TITAN_APP_DIR}/demo/self-heal.sh hang --timeout 240 > ${SELF_HEAL_LOG} 2>&1; echo $? > ${SELF_HEAL_RC}'`,
      );
      if (demo.status !== 0) return { ok: false, detail: `starting self-heal.sh hang: ${oneLine(demo.out)}` };
      try {
        await waitFor(
          "the app hung by the demo (the flag set, /health not answering)",
          async () => {
            const hung = await shell(
              web,
              `test -e ${HANG_FLAG} && curl -s -o /dev/null -m 3 http://127.0.0.1:${SERVICES.titan.port}/health; echo $?`,
            );
            return hung.out.trim() === "28" ? true : undefined;
          },
          { timeoutMs: 60_000 },
        );
      } catch (err) {
        const log = await shell(web, `cat ${SELF_HEAL_LOG}`);
        return { ok: false, detail: `${(err as Error).message}; self-heal.sh: ${oneLine(log.out)}` };
      }
      const restartedAt = Date.now();
      const b = grafanaWebhookBody("titan remediation", [
        { alertname: "AppNotAnswering", instance, remediation: "restart-app" },
      ]);
      const r = await postFrom(grafana, webhookUrl(web), b, signatureHeaders(secret, b, Math.floor(Date.now() / 1000)));
      const after = await mainPid(web, "titan.service");
      const answers = await shell(
        web,
        `curl -s -o /dev/null -w '%{http_code}' -m 5 http://127.0.0.1:${SERVICES.titan.port}/health`,
      );
      const flagGone = (await shell(web, `test -e ${HANG_FLAG}; echo $?`)).out.trim() === "1";
      const audit = (await auditLines(web, since)).find((l) => l.decision === "acted" && l.action === "restart-app");
      let scraped = "no Prometheus in this run";
      if (hosts.prometheusUrl) {
        const url = hosts.prometheusUrl;
        scraped = await waitFor(
          "the titan target scraped up after the restart",
          async () => {
            const t = (await activeTargets(url)).find(
              (x) =>
                x.labels.job === "titan" &&
                x.discoveredLabels.__address__ === `${web.privateIp}:${SERVICES.titan.port}`,
            );
            return t && t.health === "up" && Date.parse(t.lastScrape) > restartedAt
              ? `up, scraped ${t.lastScrape}`
              : undefined;
          },
          { timeoutMs: 90_000, intervalMs: 1000 },
        );
      }
      const demoExit = await waitFor(
        "self-heal.sh to see the fix and exit",
        async () => {
          const rc = await shell(web, `cat ${SELF_HEAL_RC} 2>/dev/null`);
          return rc.status === 0 && rc.out.trim() !== "" ? rc.out.trim() : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 1000 },
      ).catch((err: Error) => `none (${err.message})`);
      const demoLog = await shell(web, `tail -n 3 ${SELF_HEAL_LOG}`);
      const ok =
        demoExit === "0" &&
        r.status === 200 &&
        after !== before &&
        /^[1-9]\d*$/.test(after) &&
        answers.out.trim() === "200" &&
        flagGone &&
        audit !== undefined;
      return {
        ok,
        detail: `self-heal.sh hang exit ${demoExit} (${oneLine(demoLog.out, 200)}); HTTP ${r.status}; MainPID ${before} → ${after}; /health ${answers.out.trim()}; flag ${flagGone ? "gone" : "still there"}; audit ${audit ? JSON.stringify(audit) : "missing"}; target ${scraped}`,
      };
    },
  );
}

/** The layer below the agent: a stopped gunicorn master stops its WATCHDOG=1, and systemd restarts it by itself. */
async function watchdogRestartsStoppedMaster(web: CheckHost): Promise<CheckResult> {
  return checked(
    "a SIGSTOPped gunicorn master (hang.sh --master): systemd's watchdog restarts titan, no alert involved",
    web.name,
    async () => {
      const since = await hostClock(web);
      const before = await mainPid(web, "titan.service");
      const stop = await shell(web, `${TITAN_APP_DIR}/demo/hang.sh --master 2>&1`);
      if (stop.status !== 0)
        return { ok: false, detail: `hang.sh --master: exit ${stop.status}: ${oneLine(stop.out)}` };
      const after = await waitFor(
        "titan running under a new main process and answering",
        async () => {
          const pid = await mainPid(web, "titan.service");
          if (pid === before || !/^[1-9]\d*$/.test(pid)) return undefined;
          const health = await shell(
            web,
            `curl -s -o /dev/null -w '%{http_code}' -m 5 http://127.0.0.1:${SERVICES.titan.port}/health`,
          );
          return health.out.trim() === "200" ? pid : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 1000 },
      );
      const journal = await shell(
        web,
        `journalctl -u titan.service --since '${since}' -o cat --no-pager | grep -i 'watchdog timeout' | head -1`,
      );
      const ok = journal.out.trim() !== "";
      return {
        ok,
        detail: `MainPID ${before} → ${after}; systemd: ${oneLine(journal.out) || "no watchdog timeout logged"}`,
      };
    },
  );
}

/** The disk-fill demo running; a signed free-disk ends it, removes its file and rotates the logs. */
async function freesDisk(hosts: RemediationHosts, instance: string, secret: string): Promise<CheckResult> {
  const { web, grafana } = hosts;
  return checked(
    `signed free-disk from grafana: the disk-fill demo's file gone, the app's logs rotated (/var/tmp a ${FILL_TMPFS_MB} MiB tmpfs here)`,
    web.name,
    async () => {
      const mounted = await shell(
        web,
        `mount -t tmpfs -o size=${FILL_TMPFS_MB}m,mode=1777 titan-fleet-fill ${FILL_DIR}`,
      );
      if (mounted.status !== 0)
        return { ok: false, detail: `mounting a tmpfs on ${FILL_DIR}: ${oneLine(mounted.out)}` };
      try {
        const since = await hostClock(web);
        const demo = await shell(
          web,
          `systemd-run --unit=titan-fleet-disk-fill --collect --quiet ${TITAN_APP_DIR}/demo/disk-fill.sh --path ${FILL_DIR} --target-pct ${FILL_TARGET_PCT} --hold 900`,
        );
        if (demo.status !== 0) return { ok: false, detail: `starting the demo: ${oneLine(demo.out)}` };
        const used = await waitFor(
          "the demo's file in place",
          async () => {
            const r = await shell(
              web,
              `ls ${FILL_DIR}/${FILL_PREFIX}* >/dev/null 2>&1 && df --output=pcent ${FILL_DIR} | tail -1`,
            );
            const pct = Number(r.out.trim().replace("%", ""));
            return r.status === 0 && pct >= FILL_TARGET_PCT ? pct : undefined;
          },
          { timeoutMs: 60_000 },
        );
        const rotatedBefore = (await shell(web, "ls /var/log/titan/*.gz 2>/dev/null | wc -l")).out.trim();
        const b = grafanaWebhookBody("titan remediation", [
          { alertname: "RootDiskAlmostFull", instance, remediation: "free-disk" },
        ]);
        const r = await postFrom(
          grafana,
          webhookUrl(web),
          b,
          signatureHeaders(secret, b, Math.floor(Date.now() / 1000)),
        );
        const left = (await shell(web, `ls -A ${FILL_DIR} | grep -c '^${FILL_PREFIX}' || true`)).out.trim();
        const pct = Number((await shell(web, `df --output=pcent ${FILL_DIR} | tail -1`)).out.trim().replace("%", ""));
        const demoState = (await shell(web, "systemctl is-active titan-fleet-disk-fill.service")).out.trim();
        const rotatedAfter = (await shell(web, "ls /var/log/titan/*.gz 2>/dev/null | wc -l")).out.trim();
        const audit = (await auditLines(web, since)).find((l) => l.decision === "acted" && l.action === "free-disk");
        const ok =
          r.status === 200 &&
          left === "0" &&
          pct < 10 &&
          demoState !== "active" &&
          Number(rotatedAfter) > Number(rotatedBefore) &&
          audit !== undefined;
        return {
          ok,
          detail: `HTTP ${r.status}; ${FILL_DIR} ${used}% → ${pct}%; demo files left ${left}; demo unit ${demoState}; compressed logs ${rotatedBefore} → ${rotatedAfter}; audit ${audit ? JSON.stringify(audit) : "missing"}`,
        };
      } finally {
        await shell(web, "systemctl stop titan-fleet-disk-fill.service 2>/dev/null; true");
        await shell(web, `umount ${FILL_DIR}`);
      }
    },
  );
}

/** The whole set, in an order where no check disturbs the next. */
export async function remediationChecks(hosts: RemediationHosts): Promise<CheckResult[]> {
  const { web } = hosts;
  let secret: string;
  try {
    secret = await agentSecret(web);
  } catch (err) {
    return [fail("the agent's HMAC secret delivered", web.name, (err as Error).message)];
  }
  let instance: string;
  try {
    instance = await instanceLabel(hosts);
  } catch (err) {
    return [fail("the agent's host name matches Prometheus' instance label", web.name, (err as Error).message)];
  }
  return [
    ...(await portsClosedToOthers(hosts)),
    ...(await refusals(hosts, instance, secret)),
    await watchdogRestartsStoppedMaster(web),
    await restartsHungApp(hosts, instance, secret),
    await freesDisk(hosts, instance, secret),
  ];
}
