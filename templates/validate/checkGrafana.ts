/**
 * CI's Grafana boot check (.github/workflows/validate-configs.yml): against a Grafana started
 * with the rendered provisioning, the same probes the post-deploy verification runs, except
 * data source health (the sample stack's Prometheus and Loki do not exist in CI; the data
 * sources must exist all the same). The probes log in as the sample's (non-default) admin with
 * the password CI wrote; Grafana's default admin/admin must be refused.
 *
 *   node build/templates/validate/checkGrafana.js http://127.0.0.1:3000 <admin password>
 */
import { basicAuth, grafanaProbes, type Fetch, type VerificationSpec } from "../../infra/verify/checks";
import { alertDefinitions, DASHBOARD_UIDS } from "../alerts";
import { DATASOURCE_UIDS, SLACK_CONTACT_POINT } from "../grafana";
import { sampleContext } from "./renderForValidation";

export async function checkGrafana(grafanaUrl: string, password: string, fetcher: Fetch = fetch): Promise<string[]> {
  const ctx = sampleContext();
  const spec: VerificationSpec = {
    prometheusUrl: "",
    grafanaUrl,
    grafanaUser: ctx.config.grafanaAdminUser,
    environment: ctx.config.environment,
    targets: [],
    grafana: {
      datasourceUids: Object.values(DATASOURCE_UIDS),
      dashboardUids: Object.values(DASHBOARD_UIDS),
      ruleUids: alertDefinitions(ctx.config).map((d) => d.uid),
      contactPoint: SLACK_CONTACT_POINT.name,
    },
    timeoutMs: 0,
    intervalMs: 0,
  };
  const auth = basicAuth(spec.grafanaUser, password);
  const failures: string[] = [];
  for (const [name, probe] of grafanaProbes(fetcher, spec, password)) {
    if (name === "grafana data sources healthy") continue;
    const problem = await probe().catch((err: Error) => err.message);
    if (problem !== undefined) failures.push(`${name}: ${problem}`);
  }
  // Grafana's own default login must not exist: the first start used the configured admin.
  const fallback = await fetcher(`${grafanaUrl}/api/user`, { headers: basicAuth("admin", "admin") });
  if (fallback.ok) failures.push(`admin/admin: logged in (${fallback.status}); expected 401`);
  for (const uid of spec.grafana.datasourceUids) {
    const response = await fetcher(`${grafanaUrl}/api/datasources/uid/${uid}`, { headers: auth });
    if (!response.ok) failures.push(`data source ${uid}: ${response.status}`);
  }
  return failures;
}

if (require.main === module) {
  const [url, password] = process.argv.slice(2);
  if (!url || !password) {
    console.error("usage: node build/templates/validate/checkGrafana.js <grafana-url> <admin-password>");
    process.exit(2);
  }
  checkGrafana(url, password).then(
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
