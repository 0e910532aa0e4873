/**
 * Delivery for the whole stack: one ConfigPush per host, a marker line written on every web
 * host, and the verification that proves the pipeline once everything is pushed. Both run
 * again only when something they verify changed (a no-op `up` runs nothing); `npm run verify`
 * (tools/verifyStack.ts) runs them on demand.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import { alertDefinitions, DASHBOARD_UIDS } from "../../templates/alerts";
import { TITAN_JOB } from "../../templates/alloy/config";
import { DASHBOARDS_DIR, DATASOURCE_UIDS, SLACK_CONTACT_POINT } from "../../templates/grafana";
import { DATA_MOUNTS } from "../../templates/host/bootstrap";
import { REMEDIATION_ETC_DIR, REMEDIATION_SERVICE, TITAN_APP_DIR } from "../../templates/host/units";
import { renderHostFiles } from "../../templates/index";
import { projectRoot } from "../../templates/projectFiles";
import { SCRAPE_JOBS, SELF_JOB } from "../../facts/scrapeJobs";
import type { TemplateContext } from "../../templates/types";
import type { AddressPlan } from "../../facts/addressing";
import type { StackConfig } from "../../facts/config";
import type { AmpEndpoints } from "../../facts/metricsStore";
import type { Host } from "../host";
import { physicalName } from "../../facts/naming";
import { hasDataVolume, type Role } from "../../facts/topology";
import type { ExpectedTarget, VerificationSpec } from "../verify/checks";
import { markerFor, markerLineCommand, markersWrittenAt, VERIFY_COMMAND } from "../verify/marker";
import { AMP_RELAY_PUSH, ampRelayRemovalLines } from "./ampRelayPush";
import { appFiles } from "./appFiles";
import { ConfigPush, digest } from "./configPush";
import { GRAFANA_ADMIN_USER_CHECK, GRAFANA_POST_LINES, GRAFANA_SECRET_LINES, grafanaStdin } from "./grafanaSecrets";
import { LOKI_POST_LINES } from "./lokiPush";
import { PROMETHEUS_SECRET_LINES, prometheusStdin } from "./prometheusSecrets";
import { REMEDIATION_SECRET_LINES, remediationStdin } from "./remediationSecrets";
import type { InstallPlan } from "./scripts";
import { COMMAND_TIMEOUTS, VERIFY_TIMEOUT_MS } from "./timeouts";

/** What each role's files set in motion when they change. */
const ACTIONS: Record<Role, InstallPlan["actions"]> = {
  prometheus: [
    // SIGHUP for a new prometheus.yml; new flags need a restart.
    { prefix: "/etc/prometheus/", then: { service: "prometheus", action: "reload" } },
    { prefix: "/etc/default/prometheus", then: { service: "prometheus", action: "restart" } },
  ],
  loki: [{ prefix: "/etc/loki/", then: { service: "loki", action: "restart" } }],
  web: [
    { prefix: "/etc/alloy/", then: { service: "alloy", action: "restart" } },
    { prefix: "/etc/default/alloy", then: { service: "alloy", action: "restart" } },
    { prefix: `${TITAN_APP_DIR}/`, then: { service: "titan", action: "restart" } },
    { prefix: `${TITAN_APP_DIR}/`, then: { service: "titan-traffic", action: "restart" } },
    // The agent's code ships with the app; its settings and secret live in /etc/titan-remediation.
    // The polkit rule needs nothing: polkitd reloads its rules itself (templates/host/remediation.ts).
    { prefix: `${TITAN_APP_DIR}/`, then: { service: REMEDIATION_SERVICE, action: "restart" } },
    { prefix: `${REMEDIATION_ETC_DIR}/`, then: { service: REMEDIATION_SERVICE, action: "restart" } },
  ],
  grafana: [
    { prefix: "/etc/grafana/", then: { service: "grafana-server", action: "restart" } },
    { prefix: "/etc/systemd/system/grafana-server", then: { service: "grafana-server", action: "restart" } },
  ],
};

/** The Grafana push's steps besides placing files (CI replays them: tools/validate/renderForValidation.ts). */
export const GRAFANA_PUSH = {
  actions: ACTIONS.grafana,
  owned: [DASHBOARDS_DIR],
  // A renamed admin is refused before any secret is written or anything restarts.
  extra: [...GRAFANA_ADMIN_USER_CHECK, ...GRAFANA_SECRET_LINES],
  post: GRAFANA_POST_LINES,
} as const satisfies Omit<InstallPlan, "staging" | "files">;

/** The web push's steps besides placing files: the app's code, then the agent's secret from stdin. */
export const WEB_PUSH = {
  actions: ACTIONS.web,
  extra: (): string[] => [...appSyncLines(), ...REMEDIATION_SECRET_LINES],
} as const;

/** Staged app code replaces the installed copy only when it differs. */
function appSyncLines(): string[] {
  const staged = '"$staging/app"';
  return [
    `if ! sudo diff -rq ${staged} ${TITAN_APP_DIR} >/dev/null 2>&1; then`,
    `  sudo rm -rf ${TITAN_APP_DIR}.new && sudo cp -r ${staged} ${TITAN_APP_DIR}.new`,
    `  sudo chown -R root:root ${TITAN_APP_DIR}.new && sudo chmod -R u=rwX,go=rX ${TITAN_APP_DIR}.new`,
    `  sudo chmod 0755 ${TITAN_APP_DIR}.new/bin/titan-serve ${TITAN_APP_DIR}.new/demo/*.sh`,
    `  sudo rm -rf ${TITAN_APP_DIR} && sudo mv ${TITAN_APP_DIR}.new ${TITAN_APP_DIR}`,
    `  changed="$changed ${TITAN_APP_DIR}/"`,
    "fi",
  ];
}

export interface DeliveryArgs {
  readonly config: StackConfig;
  readonly plan: AddressPlan;
  readonly hosts: readonly Host[];
  readonly privateKey: pulumi.Output<string>;
  readonly lokiBucket: pulumi.Output<string>;
  /** Only with metricsStore=amp: the workspace's endpoints, for the Prometheus and Grafana files. */
  readonly amp?: pulumi.Output<AmpEndpoints>;
  /** Public URLs the verification polls (and Grafana's root URL for notification links). */
  readonly grafanaUrl: pulumi.Output<string>;
  readonly prometheusUrl: pulumi.Output<string>;
  readonly grafanaAdminPassword: pulumi.Output<string>;
  /** Grafana's [security] secret_key: encrypts the secrets Grafana stores (the Slack webhook). */
  readonly grafanaSecretKey: pulumi.Output<string>;
  /** The password Prometheus scrapes Grafana's /metrics with: to both pushes, on stdin. */
  readonly grafanaMetricsPassword: pulumi.Output<string>;
  /** The key Grafana signs its webhooks to the remediation agents with: to Grafana and every web host, on stdin. */
  readonly remediationHmacSecret: pulumi.Output<string>;
  readonly slackWebhookUrl?: pulumi.Output<string>;
  /** Where the local push trees are written (default: the project root). */
  readonly root?: string;
}

export interface Delivery {
  readonly pushes: Record<string, ConfigPush>;
  readonly verification: command.local.Command;
  /** What `npm run verify` needs to verify again (a stack output; tools/verifyStack.ts). */
  readonly verificationSpec: pulumi.Output<StackVerification>;
}

/** The verification without its marker, and the web hosts that log one: no secret in it. */
export interface StackVerification {
  readonly spec: Omit<VerificationSpec, "logMarker">;
  readonly markers: {
    readonly job: string;
    readonly hosts: readonly { name: string; address: string; user: string; hostKey?: string }[];
  };
}

/** Every target Prometheus must report up, from the scrape table and the address plan. */
export function expectedTargets(config: StackConfig, plan: AddressPlan): ExpectedTarget[] {
  const targets: ExpectedTarget[] = [
    { job: SELF_JOB, instance: physicalName(config, "prometheus"), role: "prometheus" },
  ];
  for (const job of SCRAPE_JOBS) {
    for (const host of plan.hosts.filter((h) => (job.roles as readonly Role[]).includes(h.role))) {
      targets.push({ job: job.job, instance: physicalName(config, host.name), role: host.role });
    }
  }
  return targets;
}

export function deliver(args: DeliveryArgs): Delivery {
  const { config, plan } = args;
  const parent = new pulumi.ComponentResource("titan:delivery:Pipeline", "delivery", {});
  const { grafanaUrl, prometheusUrl } = args;
  const ctx = args.lokiBucket.apply((lokiBucket): TemplateContext => ({ config, plan, lokiBucket }));
  // Only the Prometheus and Grafana files read the workspace's endpoints, so only their pushes wait
  // for it (and only with amp: a local stack's pushes keep exactly the inputs they had).
  const amp = args.amp;
  const ampCtx = amp
    ? pulumi.all([ctx, amp]).apply(([c, endpoints]): TemplateContext => ({ ...c, amp: endpoints }))
    : ctx;
  const slackConfigured = args.slackWebhookUrl !== undefined;
  const appRoot = path.join(projectRoot(), "app");
  const app = appFiles(appRoot).map((f) => ({ path: `app/${f}`, from: path.join(appRoot, f) }));

  const connectionTo = (host: Host) => ({
    // The Elastic IP: a stop and start outside Pulumi does not move it (infra/host.ts).
    host: host.publicIp,
    // Pinned: without hostKey pulumi-command accepts any host key (v1.2.1 provider/pkg/provider/
    // remote/connection.go SSHConfig: ssh.InsecureIgnoreHostKey); with it, ssh.FixedHostKey and
    // only that key's algorithm. The key comes from the instance's console via EC2's API.
    hostKey: host.hostKey,
    user: config.sshUser,
    privateKey: args.privateKey,
    // A fresh instance needs a minute or two before sshd answers; an unreachable one fails in minutes.
    dialErrorLimit: 30,
    perDialTimeout: 10,
  });

  const pushes: Record<string, ConfigPush> = {};
  for (const host of args.hosts) {
    const slot = host.slot;
    const connection = connectionTo(host);
    const isWeb = slot.role === "web";
    const isGrafana = slot.role === "grafana";
    const hostCtx = isGrafana || slot.role === "prometheus" ? ampCtx : ctx;
    // With amp the Prometheus host also runs the relay that signs its remote writes (ampRelayPush.ts).
    const withRelay = slot.role === "prometheus" && config.metricsStore === "amp";
    pushes[slot.name] = new ConfigPush(
      `${slot.name}-push`,
      {
        host,
        connection,
        sshUser: config.sshUser,
        root: args.root,
        // Only Grafana's files carry its URL (root_url): no other push may depend on the Grafana
        // host, or replacing it would re-run every host's push.
        files: isGrafana
          ? pulumi
              .all([hostCtx, grafanaUrl])
              .apply(([c, url]) =>
                renderHostFiles(c, slot, { slackWebhookConfigured: slackConfigured, grafanaRootUrl: url }),
              )
          : hostCtx.apply((c) => renderHostFiles(c, slot, { slackWebhookConfigured: slackConfigured })),
        actions: withRelay ? [...ACTIONS.prometheus, ...AMP_RELAY_PUSH.actions] : ACTIONS[slot.role],
        owned: isGrafana ? GRAFANA_PUSH.owned : undefined,
        extraFiles: isWeb ? app : undefined,
        dataMount: hasDataVolume(slot.role) ? DATA_MOUNTS[slot.role].mountPoint : undefined,
        extraLines: isWeb
          ? WEB_PUSH.extra()
          : isGrafana
            ? GRAFANA_PUSH.extra
            : withRelay
              ? [...PROMETHEUS_SECRET_LINES, ...AMP_RELAY_PUSH.extra]
              : slot.role === "prometheus"
                ? PROMETHEUS_SECRET_LINES
                : undefined,
        // Back on local the relay goes only once Prometheus runs without remote_write: removed
        // before, the reload that drops the queue waits its flush deadline (1m) on sends that
        // fail, the restart's stop outlasts Debian's TimeoutStopSec=20s, and with SendSIGKILL=no
        // systemd will not start the unit while that process remains (result 'resources'): the
        // push failed and the queued samples were dropped (journal of a fleet run).
        post: isGrafana
          ? GRAFANA_PUSH.post
          : slot.role === "loki"
            ? LOKI_POST_LINES
            : slot.role === "prometheus" && !withRelay
              ? ampRelayRemovalLines()
              : undefined,
        stdin: isGrafana
          ? grafanaStdin({
              adminPassword: args.grafanaAdminPassword,
              secretKey: args.grafanaSecretKey,
              slackWebhookUrl: args.slackWebhookUrl,
              metricsPassword: args.grafanaMetricsPassword,
              // No contact point signs with it while remediation is off.
              remediationHmacSecret: config.remediation === "off" ? undefined : args.remediationHmacSecret,
            })
          : slot.role === "prometheus"
            ? prometheusStdin(args.grafanaMetricsPassword)
            : isWeb
              ? remediationStdin(args.remediationHmacSecret)
              : undefined,
      },
      { parent },
    );
  }

  // No clock and no checkout path in any input: a second `up` with nothing changed must be a
  // no-op, and a preview from CI or another machine must match. The verification re-runs when
  // something it verifies changed: its spec, or any push (content, secrets, instance, volume).
  const webHosts = args.hosts.filter((h) => h.slot.role === "web");
  const baseSpec = pulumi
    .all([grafanaUrl, prometheusUrl])
    .apply(([grafana, prometheus]): Omit<VerificationSpec, "logMarker"> => ({
      prometheusUrl: prometheus,
      grafanaUrl: grafana,
      grafanaUser: config.grafanaAdminUser,
      environment: config.environment,
      targets: expectedTargets(config, plan),
      // Only with amp: a local stack's spec, and so the verification's digest, stays as it was, and
      // a no-op `up` after this change runs no marker and no verification again.
      ...(config.metricsStore === "amp" ? { metricsStore: { datasourceUid: DATASOURCE_UIDS.prometheus } } : {}),
      grafana: {
        datasourceUids: Object.values(DATASOURCE_UIDS),
        dashboardUids: Object.values(DASHBOARD_UIDS),
        ruleUids: alertDefinitions(config).map((d) => d.uid),
        contactPoint: slackConfigured ? SLACK_CONTACT_POINT.name : undefined,
      },
      timeoutMs: VERIFY_TIMEOUT_MS,
      intervalMs: 5000,
    }));
  const fingerprints = Object.keys(pushes)
    .sort()
    .map((name) => pushes[name].fingerprint);
  const verifyDigest = pulumi
    .all([baseSpec.apply((s) => JSON.stringify(s)), pulumi.all(fingerprints)])
    .apply(([specJson, pushed]) => digest(specJson, ...pushed));
  // Each web host logs a line with this marker and Loki must return it with its labels: a new
  // digest, a new marker, so the lines Loki returns are this verification's own.
  const marker = verifyDigest.apply(markerFor);

  const markers = webHosts.map(
    (host) =>
      new command.remote.Command(
        `${host.slot.name}-log-marker`,
        {
          connection: connectionTo(host),
          create: marker.apply((m) => markerLineCommand(m)),
          // Debian's sshd refuses PULUMI_COMMAND_STDOUT/STDERR (see configPush.ts).
          addPreviousOutputInEnv: false,
          triggers: [verifyDigest],
        },
        { parent, dependsOn: [pushes[host.slot.name].install], customTimeouts: COMMAND_TIMEOUTS.marker },
      ),
  );

  // Unchanged in state while the markers do not run again, so a no-op `up` stays one.
  const since = pulumi.all(markers.map((m) => m.stdout)).apply((outs) => markersWrittenAt(outs));
  const spec: pulumi.Output<VerificationSpec> = pulumi.all([baseSpec, marker, since]).apply(([base, m, at]) => ({
    ...base,
    logMarker: {
      marker: m,
      job: TITAN_JOB,
      hosts: webHosts.map((h) => physicalName(config, h.slot.name)),
      ...(at === undefined ? {} : { since: at }),
    },
  }));

  const verification = new command.local.Command(
    "verify-pipeline",
    {
      create: VERIFY_COMMAND,
      // No `dir`: pulumi-command runs a local command in its own working directory when none is
      // given (provider/pkg/provider/local/commandOutputs.go, `cmd.Dir, err = os.Getwd()`), and
      // the engine starts every provider in the project's directory (pulumi/pulumi
      // sdk/go/common/resource/plugin/plugin.go, `cmd.Dir = pwd`, from pkg/engine/project.go
      // getPwdMain). An absolute `dir` would put this checkout's path in state.
      environment: { VERIFY_SPEC: spec.apply((s) => JSON.stringify(s)) },
      stdin: pulumi.secret(args.grafanaAdminPassword),
      // The readable report goes to the log (stderr); the JSON report becomes a stack output.
      logging: "stderr",
      triggers: [verifyDigest],
    },
    {
      parent,
      dependsOn: [...Object.values(pushes).map((p) => p.install), ...markers],
      customTimeouts: COMMAND_TIMEOUTS.verify,
    },
  );
  // The same hosts, addresses and keys the marker commands connect with.
  const markerHosts = webHosts.map((host) => {
    const connection = connectionTo(host) as { host: pulumi.Input<string>; hostKey?: pulumi.Input<string> };
    return pulumi.all([connection.host, connection.hostKey]).apply(([address, hostKey]) => ({
      name: physicalName(config, host.slot.name),
      address,
      user: config.sshUser,
      ...(hostKey ? { hostKey } : {}),
    }));
  });
  const verificationSpec = pulumi
    .all([baseSpec, pulumi.all(markerHosts)])
    .apply(([base, hosts]): StackVerification => ({ spec: base, markers: { job: TITAN_JOB, hosts } }));
  return { pushes, verification, verificationSpec };
}
