/**
 * What a Grafana booted with the rendered files must show through its API once provisioning is
 * done, read back from those very files (not from the tables that rendered them): every data
 * source, dashboard, alert rule and contact point they declare, the alert rules and contact
 * points they delete, and the receivers of the notification policy tree they replace.
 */
import YAML from "yaml";
import { DASHBOARDS_DIR, GRAFANA_PATHS } from "../../templates/grafana/constants";

/** A file as rendered or as read back from a staged tree: its host path and content. */
export interface ProvisionedFile {
  readonly path: string;
  readonly content: string;
}

export interface ContactPointIntegration {
  readonly name: string;
  readonly uid: string;
  readonly type: string;
}

export interface ExpectedProvisioning {
  readonly datasourceUids: readonly string[];
  readonly dashboardUids: readonly string[];
  readonly ruleUids: readonly string[];
  /** Rules the files delete (`deleteRules`): they must not exist. */
  readonly deletedRuleUids: readonly string[];
  readonly contactPoints: readonly ContactPointIntegration[];
  /** Contact points the files delete: they must not exist. */
  readonly deletedContactPointUids: readonly string[];
  /** The policy tree's receivers: the root's first, then each child route's, in order. */
  readonly policyReceivers: readonly string[];
}

function fileAt(files: readonly ProvisionedFile[], path: string): ProvisionedFile {
  const file = files.find((f) => f.path === path);
  if (!file)
    throw new Error(`expected ${path} among the rendered Grafana files; got ${files.map((f) => f.path).join(", ")}`);
  return file;
}

type Doc = Record<string, unknown>;

function parseYaml(file: ProvisionedFile): Doc {
  const doc: unknown = YAML.parse(file.content);
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw new Error(`${file.path}: expected a YAML mapping`);
  return doc as Doc;
}

/** `doc[key]` as a list of mappings; absent is empty. */
function list(file: ProvisionedFile, doc: Doc, key: string): Doc[] {
  const value = doc[key];
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "object" && v !== null))
    throw new Error(`${file.path}: expected ${key} to be a list of mappings, got ${JSON.stringify(value)}`);
  return value as Doc[];
}

function text(file: ProvisionedFile, doc: Doc, key: string): string {
  const value = doc[key];
  if (typeof value !== "string" || value === "")
    throw new Error(`${file.path}: expected ${key} to be a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

export function expectedProvisioning(files: readonly ProvisionedFile[]): ExpectedProvisioning {
  const datasources = fileAt(files, GRAFANA_PATHS.datasources);
  const rules = fileAt(files, GRAFANA_PATHS.alertRules);
  const contacts = fileAt(files, GRAFANA_PATHS.contactPoints);
  const policies = fileAt(files, GRAFANA_PATHS.notificationPolicies);

  const dashboards = files
    .filter((f) => f.path.startsWith(`${DASHBOARDS_DIR}/`) && f.path.endsWith(".json"))
    .sort((a, b) => a.path.localeCompare(b.path));
  if (dashboards.length === 0) throw new Error(`expected dashboard JSON files under ${DASHBOARDS_DIR}; got none`);

  const contactsDoc = parseYaml(contacts);
  const rulesDoc = parseYaml(rules);
  const policyTrees = list(policies, parseYaml(policies), "policies");
  if (policyTrees.length !== 1)
    throw new Error(`${policies.path}: expected exactly one policy tree, got ${policyTrees.length}`);
  const root = policyTrees[0];

  return {
    datasourceUids: list(datasources, parseYaml(datasources), "datasources").map((d) => text(datasources, d, "uid")),
    dashboardUids: dashboards.map((f) => {
      const doc = JSON.parse(f.content) as Doc;
      return text(f, doc, "uid");
    }),
    ruleUids: list(rules, rulesDoc, "groups").flatMap((g) => list(rules, g, "rules").map((r) => text(rules, r, "uid"))),
    deletedRuleUids: list(rules, rulesDoc, "deleteRules").map((d) => text(rules, d, "uid")),
    contactPoints: list(contacts, contactsDoc, "contactPoints").flatMap((cp) =>
      list(contacts, cp, "receivers").map((r) => ({
        name: text(contacts, cp, "name"),
        uid: text(contacts, r, "uid"),
        type: text(contacts, r, "type"),
      })),
    ),
    deletedContactPointUids: list(contacts, contactsDoc, "deleteContactPoints").map((d) => text(contacts, d, "uid")),
    policyReceivers: [
      text(policies, root, "receiver"),
      ...list(policies, root, "routes").map((r) => text(policies, r, "receiver")),
    ],
  };
}
