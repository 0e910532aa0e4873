/**
 * How long each command resource may take (its `customTimeouts`), sized to what it does.
 *
 * The engine hands the timeout to the provider with each Create/Update/Delete (pulumi/pulumi
 * sdk/go/common/resource/plugin/provider_plugin.go, `Timeout: req.Timeout`); pulumi-command's
 * providers are built with pulumi-go-provider's infer, whose cancel middleware turns it into
 * the operation's context deadline (pulumi-go-provider v1.3.0 middleware/cancel/cancel.go,
 * `context.WithTimeout`; infer/provider.go wraps every provider with it). pulumi-command v1.2.1
 * then stops a local command at the deadline (provider/pkg/provider/local/commandOutputs.go,
 * `exec.CommandContext`) and stops dialling a host at it (remote/connection.go, dialWithRetry
 * returns ctx.Err()); a remote session already running is not cut (remote/commandOutputs.go
 * calls session.Run without the context), so each remote bound also leaves the session its time.
 */

export interface Timeouts {
  readonly create: string;
  readonly update: string;
  readonly delete: string;
}

const same = (t: string): Timeouts => ({ create: t, update: t, delete: t });

export const COMMAND_TIMEOUTS = {
  /**
   * Waiting for a new host: up to 30 dials of 10 s before sshd answers (pipeline.ts
   * connectionTo), then cloud-init's whole run, package installs included.
   */
  ready: same("25m"),
  /** Copying one host's tree (configuration and, on a web host, the app) over SFTP. */
  copy: same("10m"),
  /** Installing and restarting; Grafana's first start runs its migrations and provisioning. */
  install: same("15m"),
  /** One line appended to a log file. */
  marker: same("5m"),
  /** The verification polls for 5 minutes (VERIFY_TIMEOUT_MS), plus node's start. */
  verify: same("8m"),
} as const satisfies Record<string, Timeouts>;

/** The verification's own polling budget, inside COMMAND_TIMEOUTS.verify. */
export const VERIFY_TIMEOUT_MS = 5 * 60 * 1000;
