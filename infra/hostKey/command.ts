/**
 * The local command that prints a host's key (cli.ts), written so it works from wherever the
 * provider runs it in the project and records no absolute path in the state: Node resolves
 * `--require ts-node/...` and `require.resolve` by walking up from the working directory to the
 * project's node_modules, and the project root is three levels above ts-node's package.json.
 * The program itself already runs under ts-node (Pulumi.yaml runtime options), so nothing extra
 * is installed for it. pulumi-command runs it as `/bin/sh -c <create>` with the provider's own
 * environment plus `environment` (v1.2.1 provider/pkg/provider/local/commandOutputs.go: cmd.Env =
 * os.Environ(), then each entry), so the AWS SDK finds the credentials `pulumi up` runs with.
 */
export const HOST_KEY_COMMAND =
  "node --require ts-node/register/transpile-only -e " +
  `"require(require('path').resolve(require.resolve('ts-node/package.json'), '../../../infra/hostKey/cli.ts'))"`;

/**
 * An in-place update (a changed command or environment on the same instance) reprints the key
 * the state already holds instead of asking the console again: cloud-init prints the keys once
 * per instance (cc_keys_to_console runs PER_INSTANCE) and GetConsoleOutput keeps only the last
 * 64 KB, so on a host that has run a while the block may be gone. pulumi-command v1.2.1 runs
 * `update` (else `create`) on an update, with the old stdout in PULUMI_COMMAND_STDOUT unless
 * addPreviousOutputInEnv is false (local/commandController.go Update, commandOutputs.go run).
 * With no stored key it asks the console, as `create` does.
 */
export const HOST_KEY_UPDATE_COMMAND = `if [ -n "\${PULUMI_COMMAND_STDOUT:-}" ]; then printf '%s\\n' "$PULUMI_COMMAND_STDOUT"; else ${HOST_KEY_COMMAND}; fi`;

/** The environment variable names cli.ts reads. */
export const HOST_KEY_ENV = { instanceId: "HOST_KEY_INSTANCE_ID", region: "AWS_REGION" } as const;

/** How long cli.ts waits for cloud-init to print the keys (its default HOST_KEY_TIMEOUT_SECONDS). */
export const HOST_KEY_TIMEOUT_MINUTES = 30;

/** The resource's customTimeouts: the fetch's own deadline plus the SDK's last call and node's start. */
export const HOST_KEY_TIMEOUTS = {
  create: `${HOST_KEY_TIMEOUT_MINUTES + 5}m`,
  update: `${HOST_KEY_TIMEOUT_MINUTES + 5}m`,
  delete: "5m",
} as const;
