/**
 * Pushes a host's rendered configuration over SSH once the host is ready, and applies it in
 * place: wait for cloud-init and the bootstrap, copy the files to a staging directory
 * (CopyToRemote writes as the SSH user), then install them with their owner and mode and
 * restart or reload only what changed. Triggered by the content, so an edited rule or
 * dashboard reaches its host on the next `pulumi up` without replacing anything.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import type { RenderedFile } from "../../templates/types";
import type { Host } from "../host";
import { installScript, stagingDir, stagingRoot, waitReadyScript, type InstallPlan } from "./scripts";

export interface ConfigPushArgs {
  readonly host: Host;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sshUser: string;
  readonly files: pulumi.Input<RenderedFile[]>;
  readonly actions: InstallPlan["actions"];
  readonly owned?: readonly string[];
  /** More entries for the staged archive (the app's code), keyed by their staged path. */
  readonly extraAssets?: Record<string, pulumi.asset.Asset | pulumi.asset.Archive>;
  /** Digest of what extraAssets contain, so a code change triggers the push too. */
  readonly extraDigest?: string;
  readonly extraLines?: readonly string[];
  /** Lines run once the services have restarted. */
  readonly post?: readonly string[];
  /** Secrets for extraLines, on standard input: never on a command line, in a file we render or in the logs. */
  readonly stdin?: pulumi.Output<string>;
}

export const digest = (...parts: string[]): string => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part).update("\0");
  return hash.digest("hex");
};

export const filesDigest = (files: readonly RenderedFile[]): string =>
  digest(...files.flatMap((f) => [f.path, f.content, f.owner, f.group, f.mode.toString(8)]));

export class ConfigPush extends pulumi.ComponentResource {
  readonly ready: command.remote.Command;
  readonly copy: command.remote.CopyToRemote;
  readonly install: command.remote.Command;

  constructor(name: string, args: ConfigPushArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titan:delivery:ConfigPush", name, {}, opts);
    const { host } = args;
    const files = pulumi.output(args.files);
    const contentDigest = files.apply((f) => digest(filesDigest(f), args.extraDigest ?? ""));
    const staging = contentDigest.apply((d) => stagingDir(args.sshUser, d));

    this.ready = new command.remote.Command(
      `${name}-ready`,
      {
        connection: args.connection,
        create: waitReadyScript(stagingRoot(args.sshUser)),
        // A replaced host must be waited for again.
        triggers: [host.instance.id],
      },
      { parent: this, dependsOn: host.dataAttachment ? [host.instance, host.dataAttachment] : [host.instance] },
    );

    const source = files.apply(
      (list) =>
        new pulumi.asset.AssetArchive({
          ...Object.fromEntries(list.map((f) => [f.path.replace(/^\//, ""), new pulumi.asset.StringAsset(f.content)])),
          ...(args.extraAssets ?? {}),
        }),
    );
    this.copy = new command.remote.CopyToRemote(
      `${name}-files`,
      { connection: args.connection, source, remotePath: staging, triggers: [contentDigest, host.instance.id] },
      { parent: this, dependsOn: [this.ready] },
    );

    this.install = new command.remote.Command(
      `${name}-install`,
      {
        connection: args.connection,
        create: pulumi.all([files, staging]).apply(([list, stagingPath]) =>
          installScript({
            staging: stagingPath,
            files: list,
            actions: args.actions,
            owned: args.owned,
            extra: args.extraLines,
            post: args.post,
          }),
        ),
        stdin: args.stdin,
        // Only stderr reaches the logs; nothing here prints a secret, and stdout stays out of them too.
        logging: "stderr",
        triggers: [contentDigest, host.instance.id, ...(args.stdin ? [args.stdin.apply((s) => digest(s))] : [])],
      },
      { parent: this, dependsOn: [this.copy], additionalSecretOutputs: ["stdin"] },
    );

    this.registerOutputs({});
  }
}
