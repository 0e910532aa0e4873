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
import * as fs from "node:fs";
import { projectRoot } from "../../templates/projectFiles";
import type { RenderedFile } from "../../templates/types";
import type { Host } from "../host";
import { pushArchiveDir, writePushTree, type PushEntry } from "./pushTree";
import { COMMAND_TIMEOUTS } from "./timeouts";
import {
  installScript,
  stagingDir,
  stagingName,
  stagingParent,
  stagingRoot,
  waitReadyScript,
  type InstallPlan,
} from "./scripts";

/** A local file staged with the rendered ones (the app's code), at `path` inside the staging directory. */
export interface ExtraFile {
  readonly path: string;
  readonly from: string;
}

export interface ConfigPushArgs {
  readonly host: Host;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sshUser: string;
  readonly files: pulumi.Input<RenderedFile[]>;
  readonly actions: InstallPlan["actions"];
  readonly owned?: readonly string[];
  /** More files for the staging directory, copied from the checkout. */
  readonly extraFiles?: readonly ExtraFile[];
  readonly extraLines?: readonly string[];
  /** Lines run once the services have restarted. */
  readonly post?: readonly string[];
  /** Secrets for extraLines, on standard input: never on a command line, in a file we render or in the logs. */
  readonly stdin?: pulumi.Output<string>;
  /** Where the host's data volume is mounted: its filesystem follows the volume's size. */
  readonly dataMount?: string;
  /** The stack, which keeps its local push trees apart from other stacks' (default: the running stack). */
  readonly stack?: string;
  /** Where the local push trees live (default: the project root). */
  readonly root?: string;
}

export const digest = (...parts: string[]): string => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part).update("\0");
  return hash.digest("hex");
};

export const filesDigest = (files: readonly RenderedFile[]): string =>
  digest(...files.flatMap((f) => [f.path, f.content, f.owner, f.group, f.mode.toString(8)]));

/** The staged tree: every rendered file at its absolute path, the extra files at theirs. */
export const stagedEntries = (files: readonly RenderedFile[], extra: readonly ExtraFile[] = []): PushEntry[] => [
  ...files.map((f) => ({ path: f.path, content: f.content })),
  ...extra.map((e) => ({ path: e.path, from: e.from })),
];

export class ConfigPush extends pulumi.ComponentResource {
  readonly ready: command.remote.Command;
  readonly copy: command.remote.CopyToRemote;
  readonly install: command.remote.Command;
  /**
   * Changes exactly when the install runs again (its triggers, and its content): what the
   * verification re-runs for. Hashes of hashes only, so it can be shown in plain text.
   */
  readonly fingerprint: pulumi.Output<string>;

  constructor(name: string, args: ConfigPushArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titan:delivery:ConfigPush", name, {}, opts);
    const { host } = args;
    const root = args.root ?? projectRoot();
    const stack = args.stack ?? pulumi.getStack();
    const extra = args.extraFiles ?? [];
    if (host.dataVolume && !args.dataMount) {
      throw new Error(`push ${name}: host ${host.slot.name} has a data volume, so dataMount must name its mount point`);
    }
    const extraDigest = digest(...extra.flatMap((e) => [e.path, fs.readFileSync(e.from).toString("base64")]));
    const files = pulumi.output(args.files);

    // The archive's path is known before the content is: pulumi-command v1.2.1's
    // CopyToRemote.Check refuses an unknown source ("either asset or archive must be set"),
    // so a preview that cannot render the files yet (the bucket's name, say) must still see a
    // path. The directory must exist then too: the engine hashes the archive it names.
    const archive = pushArchiveDir(root, stack, host.slot.name);
    fs.mkdirSync(archive.absolute, { recursive: true });

    // Written when the files are known, and only then; the digest that names the staging
    // directory is returned from the write, so nothing reads the tree before it exists.
    const contentDigest = files.apply((list) => {
      const d = digest(filesDigest(list), extraDigest);
      writePushTree({ root, stack, host: host.slot.name, name: stagingName(d), entries: stagedEntries(list, extra) });
      return d;
    });
    const staging = contentDigest.apply((d) => stagingDir(args.sshUser, d));
    // Debian's sshd accepts no PULUMI_COMMAND_STDOUT/STDERR (AcceptEnv LANG LC_*): every
    // in-place update would warn, and nothing here reads an earlier run's output.
    const addPreviousOutputInEnv = false;

    this.ready = new command.remote.Command(
      `${name}-ready`,
      {
        connection: args.connection,
        create: waitReadyScript(stagingRoot(args.sshUser)),
        addPreviousOutputInEnv,
        // A replaced host must be waited for again.
        triggers: [host.instance.id],
      },
      {
        parent: this,
        dependsOn: host.dataAttachment ? [host.instance, host.dataAttachment] : [host.instance],
        customTimeouts: COMMAND_TIMEOUTS.ready,
      },
    );

    // No trailing slash: the provider copies the directory into remotePath/<basename>, that
    // is ~/titan-staging/<name>/ (see pushTree.ts).
    this.copy = new command.remote.CopyToRemote(
      `${name}-files`,
      {
        connection: args.connection,
        source: new pulumi.asset.FileArchive(archive.relative),
        remotePath: stagingParent(args.sshUser),
        triggers: [contentDigest, host.instance.id],
      },
      { parent: this, dependsOn: [this.ready], customTimeouts: COMMAND_TIMEOUTS.copy },
    );

    // A resized data volume re-runs the install, which grows the filesystem.
    const volumeSize = host.dataVolume && args.dataMount ? [host.dataVolume.size] : [];
    const installTriggers: pulumi.Output<unknown>[] = [
      contentDigest,
      host.instance.id,
      ...volumeSize,
      ...(args.stdin ? [args.stdin.apply((s) => digest(s))] : []),
    ];
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
            growMount: args.dataMount,
          }),
        ),
        stdin: args.stdin,
        addPreviousOutputInEnv,
        // Only stderr reaches the logs; nothing here prints a secret, and stdout stays out of them too.
        logging: "stderr",
        triggers: installTriggers,
      },
      {
        parent: this,
        dependsOn: [this.copy],
        additionalSecretOutputs: ["stdin"],
        customTimeouts: COMMAND_TIMEOUTS.install,
      },
    );
    // The secrets' digest is itself secret; hashed once more it reveals nothing of generated
    // passwords, keys or a webhook token, and the verification's marker need not be hidden.
    this.fingerprint = pulumi.unsecret(
      pulumi.all(installTriggers).apply((parts) => digest(...parts.map((part) => String(part)))),
    );

    this.registerOutputs({});
  }
}
