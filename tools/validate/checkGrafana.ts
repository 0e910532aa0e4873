/**
 * CI's Grafana boot check (.github/workflows/validate-configs.yml). First waits, with a deadline,
 * until the Grafana shows everything the rendered provisioning declares (provisioningWait.ts:
 * since Grafana 12 a healthy /api/health comes before provisioning is done); then runs the probes
 * the post-deploy verification runs, except data source health (the sample stack's Prometheus
 * and Loki do not exist in CI), logging in as the sample's non-default admin. Grafana's default
 * admin/admin must be refused.
 *
 *   node build/tools/validate/checkGrafana.js <password-file> <staged-root> [grafana-url]
 *
 * <staged-root> is the tree renderForValidation staged for the push (host paths under it); the
 * URL defaults to Grafana's port on this machine.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { SERVICES } from "../../facts/topology";
import { GRAFANA_FIRST_START } from "../../infra/delivery/grafanaSecrets";
import { basicAuth, grafanaProbes, type Fetch, type VerificationSpec } from "../../infra/verify/checks";
import { PROVISIONING_DIR, DASHBOARDS_DIR } from "../../templates/grafana/constants";
import { expectedProvisioning, type ProvisionedFile } from "./expectedProvisioning";
import { waitForProvisioning, type WaitOptions } from "./provisioningWait";
import { sampleContext } from "./renderForValidation";

export interface CheckGrafanaOptions {
  /** The rendered Grafana files: what must be provisioned. */
  readonly files: readonly ProvisionedFile[];
  readonly fetcher?: Fetch;
  readonly wait?: WaitOptions;
}

/** The push's own deadline for Grafana's first start (database migrations come first). */
export const DEFAULT_WAIT: WaitOptions = {
  timeoutMs: GRAFANA_FIRST_START.timeoutSeconds * 1000,
  intervalMs: GRAFANA_FIRST_START.intervalSeconds * 1000,
};

export async function checkGrafana(
  grafanaUrl: string,
  password: string,
  options: CheckGrafanaOptions,
): Promise<string[]> {
  const fetcher = options.fetcher ?? fetch;
  const user = sampleContext().config.grafanaAdminUser;
  const auth = basicAuth(user, password);
  const expected = expectedProvisioning(options.files);
  try {
    const waited = await waitForProvisioning(fetcher, grafanaUrl, auth, expected, options.wait ?? DEFAULT_WAIT);
    console.log(`provisioning visible after ${waited.seconds.toFixed(1)}s (${waited.polls} polls)`);
  } catch (err) {
    return [(err as Error).message];
  }
  const spec: VerificationSpec = {
    prometheusUrl: "",
    grafanaUrl,
    grafanaUser: user,
    environment: sampleContext().config.environment,
    targets: [],
    grafana: {
      datasourceUids: expected.datasourceUids,
      dashboardUids: expected.dashboardUids,
      ruleUids: expected.ruleUids,
      contactPoint: expected.contactPoints.find((cp) => cp.type === "slack")?.name,
    },
    timeoutMs: 0,
    intervalMs: 0,
  };
  const failures: string[] = [];
  for (const [name, probe] of grafanaProbes(fetcher, spec, password)) {
    if (name === "grafana data sources healthy") continue;
    const problem = await probe().catch((err: Error) => err.message);
    if (problem !== undefined) failures.push(`${name}: ${problem}`);
  }
  // Grafana's own default login must not exist: the first start used the configured admin.
  const fallback = await fetcher(`${grafanaUrl}/api/user`, { headers: basicAuth("admin", "admin") });
  if (fallback.ok) failures.push(`admin/admin: logged in (${fallback.status}); expected 401`);
  return failures;
}

/** The Grafana files of a staged tree (host paths under `root`), as the push would install them. */
export function readStagedGrafanaFiles(root: string): ProvisionedFile[] {
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const full = path.join(dir, e.name);
      return e.isDirectory() ? walk(full) : [full];
    });
  return [PROVISIONING_DIR, DASHBOARDS_DIR].flatMap((hostDir) => {
    const local = path.join(root, hostDir);
    if (!fs.existsSync(local)) throw new Error(`staged root ${root}: expected ${hostDir} under it`);
    return walk(local).map((file) => ({
      path: `/${path.relative(root, file).split(path.sep).join("/")}`,
      content: fs.readFileSync(file, "utf8"),
    }));
  });
}

/** fetch with a per-request limit, so one hung request cannot outlive the deadline. */
const boundedFetch: Fetch = (url, init) => fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });

if (require.main === module) {
  const [passwordFile, root, url = `http://127.0.0.1:${SERVICES.grafana.port}`] = process.argv.slice(2);
  if (!passwordFile || !root) {
    console.error("usage: node build/tools/validate/checkGrafana.js <password-file> <staged-root> [grafana-url]");
    process.exit(2);
  }
  const password = fs.readFileSync(passwordFile, "utf8").trim();
  checkGrafana(url, password, { files: readStagedGrafanaFiles(root), fetcher: boundedFetch }).then(
    (failures) => {
      for (const f of failures) console.error(`FAIL ${f}`);
      console.log(
        failures.length ? "Grafana did not load the provisioning" : "Grafana loaded every provisioned resource",
      );
      process.exit(failures.length ? 1 : 0);
    },
    (err: Error) => {
      console.error(err.message);
      process.exit(2);
    },
  );
}
