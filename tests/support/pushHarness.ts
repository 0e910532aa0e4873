/**
 * Child-process entry point: runs the delivery (infra/delivery/pipeline.ts) for real hosts
 * under Pulumi's mocks, as `pulumi up` (PUSH_HARNESS_MODE=up) or as a first preview in which
 * the bucket's name and the Grafana URL are still unknown (=preview), and prints every
 * command resource's inputs as JSON, with a path-based source's path (the mocks rebuild an
 * archive with its path in a promise). Every registration passes the provider's Check first
 * (commandProvider.ts). PUSH_HARNESS_ROOT is the directory the push trees are written under.
 * One run per process: Pulumi's runtime state is global.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { deliver } from "../../infra/delivery/pipeline";
import { Host } from "../../infra/host";
import { hasDataVolume } from "../../facts/topology";
import { checkCommandResource } from "./commandProvider";
import { testContext } from "./render";

export interface HarnessResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  /** The source's kind (its class) and, for a path-based one, its path. */
  readonly source?: { readonly kind: string; readonly path?: string };
}

export interface HarnessResult {
  readonly resources: HarnessResource[];
  readonly error?: string;
}

export const HARNESS_STACK = "harness";
export const HARNESS_PASSWORD = "harness-password";

async function main(): Promise<void> {
  const preview = process.env.PUSH_HARNESS_MODE === "preview";
  const root = process.env.PUSH_HARNESS_ROOT ?? "";
  if (!root) throw new Error("PUSH_HARNESS_ROOT must name a directory");
  const resources: HarnessResource[] = [];
  const sources: Promise<void>[] = [];

  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const inputs = args.inputs as Record<string, unknown>;
        checkCommandResource(args.type, args.name, inputs);
        if (args.type.startsWith("command:")) {
          const record: { -readonly [K in keyof HarnessResource]: HarnessResource[K] } = {
            type: args.type,
            name: args.name,
            inputs,
          };
          const source = inputs.source as { constructor: { name: string }; path?: Promise<string> } | undefined;
          if (source !== undefined && !pulumi.isUnknown(source)) {
            sources.push(
              Promise.resolve(source.path).then((p) => {
                record.source = { kind: source.constructor.name, path: p };
              }),
            );
          }
          resources.push(record);
        }
        // A bucket whose name the provider has not yet chosen: unknown during a preview.
        const state = args.type === "aws:s3/bucket:Bucket" && preview ? {} : { ...inputs, bucket: "harness-bucket" };
        return {
          id: `${args.name}-id`,
          // Pushes dial the host's Elastic IP (infra/host.ts).
          state: args.type === "aws:ec2/eip:Eip" ? { ...state, publicIp: "198.51.100.9" } : state,
        };
      },
      call: () => ({}),
    },
    "titan-observability",
    HARNESS_STACK,
    preview,
  );

  // A refused input fails the registration, which surfaces as an unhandled rejection.
  let failure: string | undefined;
  const failed = new Promise<void>((resolve) => {
    process.on("unhandledRejection", (err: unknown) => {
      failure ??= err instanceof Error ? err.message : String(err);
      resolve();
    });
  });

  const ctx = testContext();
  const bucket = new aws.s3.Bucket("loki", {});
  const hosts = ctx.plan.hosts.map(
    (slot) =>
      new Host(slot.name, {
        config: ctx.config,
        slot,
        ami: "ami-0123456789abcdef0",
        subnetId: "subnet-1",
        availabilityZone: "us-east-1b",
        securityGroupId: "sg-1",
        keyName: "key",
        dataVolumeSizeGb: hasDataVolume(slot.role) ? ctx.config.dataVolumeSizeGb[slot.role] : undefined,
        userData: () => "#!/bin/sh\n",
      }),
  );
  const grafana = hosts.find((h) => h.slot.role === "grafana") as Host;
  // Not the stack's own code path, but the same ConfigPush under every option the stack uses.
  // Grafana's generated secret key, spread so this compiles before and after DeliveryArgs asks for it.
  const grafanaSecrets = {
    grafanaSecretKey: pulumi.secret("harness-secret-key"),
    grafanaMetricsPassword: pulumi.secret("harness-metrics-password"),
    remediationHmacSecret: pulumi.secret("harness-remediation-hmac-secret"),
  };
  const delivery = deliver({
    ...grafanaSecrets,
    config: ctx.config,
    plan: ctx.plan,
    hosts,
    privateKey: pulumi.secret("key"),
    lokiBucket: bucket.bucket,
    grafanaUrl: pulumi.interpolate`http://${grafana.publicIp}:3000`,
    prometheusUrl: pulumi.output("http://198.51.100.9:9090"),
    grafanaAdminPassword: pulumi.secret(HARNESS_PASSWORD),
    root,
  });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { waitForRPCs } = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs: () => Promise<void> };
  const done = async () => {
    await new Promise((resolve) => delivery.verification.urn.apply(resolve));
    await waitForRPCs();
    await Promise.all(sources);
  };
  await Promise.race([done(), failed]);
  const result: HarnessResult = { resources, error: failure };
  await new Promise<void>((resolve) => process.stdout.write(JSON.stringify(result), () => resolve()));
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
