/** Wires the components of the stack together and returns what index.ts exports. */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { addressPlan } from "../facts/addressing";
import { deliver, type StackVerification } from "./delivery/pipeline";
import type { StackConfig } from "../facts/config";
import { Host } from "./host";
import { AmpWorkspace } from "./amp";
import { grafanaStatements, HostInstanceProfile, lokiStatements, prometheusStatements } from "./iam";
import { LokiBucket } from "./lokiBucket";
import { Network } from "./network";
import { imageId, initialZone, instanceTypeOfferings, keepZone } from "./placement";
import { SecurityGroups } from "./securityGroups";
import { SshKey } from "./sshKey";
import type { AmpEndpoints } from "../facts/metricsStore";
import { hasDataVolume, SERVICES, type Role } from "../facts/topology";
import { renderUserData } from "../templates/host/userData";

export interface HostOutput {
  readonly role: Role;
  readonly publicIp: pulumi.Output<string>;
  readonly privateIp: pulumi.Output<string>;
  readonly ssh: pulumi.Output<string>;
  /** A known_hosts line for the host (its Elastic IP and the key read from its console). */
  readonly knownHosts: pulumi.Output<string>;
}

export interface StackOutputs {
  readonly grafanaUrl: pulumi.Output<string>;
  readonly prometheusUrl: pulumi.Output<string>;
  readonly appUrls: pulumi.Output<string[]>;
  readonly hosts: Record<string, HostOutput>;
  readonly lokiBucket: pulumi.Output<string>;
  readonly grafanaAdminUser: string;
  readonly grafanaAdminPassword: pulumi.Output<string>;
  /** Only with a generated key: where to write sshPrivateKey for the `ssh` commands. */
  readonly sshKeyFile?: pulumi.Output<string>;
  readonly sshPrivateKey?: pulumi.Output<string>;
  /** What the post-deploy verification checked, and how long each check took. */
  readonly verification: pulumi.Output<unknown>;
  /** What `npm run verify` checks again (tools/verifyStack.ts). */
  readonly verificationSpec: pulumi.Output<StackVerification>;
  /** Only with metricsStore=amp: the workspace Prometheus writes to and Grafana reads from. */
  readonly metricsWorkspace?: pulumi.Output<AmpEndpoints & { arn: string; alias: string }>;
}

export function defineStack(config: StackConfig): StackOutputs {
  const plan = addressPlan(config.vpcCidr, config.webCount);
  const ami = imageId(config);
  const offerings = instanceTypeOfferings(config);

  const network = new Network("network", {
    config,
    subnetCidr: plan.subnetCidr,
    availabilityZone: initialZone(config, offerings),
  });
  // The subnet's own zone, not today's pick: hosts and volumes follow wherever the stack started.
  const zone = pulumi
    .all([network.subnet.availabilityZone, offerings])
    .apply(([subnetZone, offered]) => keepZone(subnetZone, offered, config));
  const groups = new SecurityGroups("security", { config, vpcId: network.vpc.id });
  const bucket = new LokiBucket("loki-chunks", { config });
  // Only with amp: a local stack declares no workspace and no statement or profile for one.
  const amp = config.metricsStore === "amp" ? new AmpWorkspace("metrics", { config }) : undefined;
  const profiles: Partial<Record<Role, HostInstanceProfile>> = {
    prometheus: new HostInstanceProfile("prometheus", {
      config,
      role: "prometheus",
      statements: amp ? amp.workspace.arn.apply((arn) => prometheusStatements(arn)) : prometheusStatements(),
    }),
    loki: new HostInstanceProfile("loki", {
      config,
      role: "loki",
      statements: bucket.bucket.arn.apply(lokiStatements),
    }),
    ...(amp
      ? {
          grafana: new HostInstanceProfile("grafana", {
            config,
            role: "grafana",
            statements: amp.workspace.arn.apply(grafanaStatements),
          }),
        }
      : {}),
  };
  // What tells this deployment from another of the same project and stack name in the account:
  // the bucket's random suffix, in every stack's state since its first up (so no stack deployed
  // before it gets a new one).
  const sshKey = new SshKey("deploy-key", { config, deploymentId: bucket.suffix });

  const hosts = plan.hosts.map(
    (slot) =>
      new Host(slot.name, {
        config,
        slot,
        ami,
        subnetId: network.subnet.id,
        availabilityZone: zone,
        securityGroupId: groups.byRole[slot.role].id,
        keyName: sshKey.keyPair.keyName,
        instanceProfile: profiles[slot.role]?.profile.name,
        dataVolumeSizeGb: hasDataVolume(slot.role) ? config.dataVolumeSizeGb[slot.role] : undefined,
        userData: (dataVolumeId) =>
          renderUserData({ role: slot.role, dataVolumeId, vendorRepository: config.vendorAptRepository }),
        bootDependsOn: [...groups.rulesOf[slot.role], ...network.internetRoute],
      }),
  );

  const urlOf = (role: Role, port: number) => {
    const host = hosts.find((h) => h.slot.role === role) as Host;
    return pulumi.interpolate`http://${host.publicIp}:${port}`;
  };
  const grafanaUrl = urlOf("grafana", SERVICES.grafana.port);
  const prometheusUrl = urlOf("prometheus", SERVICES.prometheus.port);

  // A changed keeper replaces the password (terraform-provider-random internal/provider/
  // resource_password.go: keepers RequiresReplaceIfValuesNotNull); no keeper until the operator
  // sets grafanaAdminPasswordRotation, so existing stacks keep theirs.
  const rotation = config.grafanaAdminPasswordRotation;
  const grafanaPassword = new random.RandomPassword("grafana-admin-password", {
    length: 32,
    special: false,
    ...(rotation === undefined ? {} : { keepers: { rotation: String(rotation) } }),
  });
  const grafanaAdminPassword = pulumi.secret(grafanaPassword.result);
  // Prometheus' credentials for Grafana's /metrics (port 3000 is open to the operators).
  const grafanaMetricsPassword = new random.RandomPassword("grafana-metrics-password", { length: 32, special: false });
  // Grafana signs its webhooks to the remediation agents with it (HMAC-SHA256); the agents check it.
  // Rotated like the admin password: a keeper only once remediationSecretRotation is set.
  const hmacRotation = config.remediationSecretRotation;
  const remediationHmacSecret = new random.RandomPassword("remediation-hmac-secret", {
    length: 48,
    special: false,
    ...(hmacRotation === undefined ? {} : { keepers: { rotation: String(hmacRotation) } }),
  });
  // Never changes once created: a new key would leave what Grafana already encrypted unreadable.
  const grafanaSecretKey = new random.RandomBytes("grafana-secret-key", { length: 32 });
  const delivery = deliver({
    config,
    plan,
    hosts,
    privateKey: sshKey.privateKey,
    lokiBucket: bucket.bucket.bucket,
    amp: amp?.endpoints,
    grafanaUrl,
    prometheusUrl,
    grafanaAdminPassword,
    grafanaSecretKey: pulumi.secret(grafanaSecretKey.hex),
    grafanaMetricsPassword: pulumi.secret(grafanaMetricsPassword.result),
    remediationHmacSecret: pulumi.secret(remediationHmacSecret.result),
    slackWebhookUrl: config.slackWebhookUrl === undefined ? undefined : pulumi.secret(config.slackWebhookUrl),
  });

  // An operator's own key is wherever they keep it: ssh finds it (agent, ~/.ssh/config), no -i.
  const sshKeyFile = sshKey.keyFile;
  const identity = sshKeyFile ? sshKeyFile.apply((file) => `-i ${file} `) : "";
  const hostOutputs: Record<string, HostOutput> = {};
  for (const host of hosts) {
    hostOutputs[host.slot.name] = {
      role: host.slot.role,
      publicIp: host.publicIp,
      privateIp: host.instance.privateIp,
      ssh: pulumi.interpolate`ssh ${identity}${config.sshUser}@${host.publicIp}`,
      knownHosts: pulumi.interpolate`${host.publicIp} ${host.hostKey}`,
    };
  }
  return {
    grafanaUrl,
    prometheusUrl,
    appUrls: pulumi.all(
      hosts
        .filter((h) => h.slot.role === "web")
        .map((h) => pulumi.interpolate`http://${h.publicIp}:${SERVICES.titan.port}`),
    ),
    hosts: hostOutputs,
    lokiBucket: bucket.bucket.bucket,
    grafanaAdminUser: config.grafanaAdminUser,
    grafanaAdminPassword,
    sshKeyFile,
    sshPrivateKey: sshKey.generated ? sshKey.privateKey : undefined,
    verification: delivery.verification.stdout.apply(parseReport),
    verificationSpec: delivery.verificationSpec,
    metricsWorkspace: amp
      ? pulumi
          .all([amp.endpoints, amp.workspace.arn, amp.workspace.alias])
          .apply(([endpoints, arn, alias]) => ({ ...endpoints, arn, alias: alias ?? "" }))
      : undefined,
  };
}

/** The verification's JSON report (absent in a preview, where nothing ran). */
function parseReport(stdout: string | undefined): unknown {
  if (!stdout) return undefined;
  try {
    return JSON.parse(stdout) as unknown;
  } catch {
    return { raw: stdout };
  }
}
