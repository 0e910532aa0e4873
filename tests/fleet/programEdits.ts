/**
 * Edits a developer makes to the program between two `pulumi up`s, which no stack setting can
 * express: an alert rule taken out of the table (and its uid retired, as templates/alerts.ts
 * RETIRED_ALERTS asks), or a package pin raised to the next patch release in facts/versions.ts.
 * The fleet's matrix applies them to the modules of the process that renders the program, and to
 * every child that plans the stack after it (stackPlanCli.ts reads them from the environment), so
 * an edit stays made for every later `up` of the run, as an edit to the checkout would.
 *
 * They change exported bindings in place: the program reads `alertDefinitions`, RETIRED_ALERTS
 * and VERSIONS through their modules' exports at call time (CommonJS), so the program renders as
 * the edited source would. Nothing here is part of the program.
 */
import * as alerts from "../../templates/alerts";
import * as versions from "../../facts/versions";
import { testConfig } from "../support/render";
import { nextPatchVersion } from "./standins/packages";

export const PROGRAM_EDITS_ENV = "TITAN_FLEET_PROGRAM_EDITS";

export interface ProgramEdits {
  /** Alert uids removed from the table and added to RETIRED_ALERTS. */
  readonly retireAlerts?: readonly string[];
  /** Components whose pin (version and apt pin) is raised to the next patch release. */
  readonly raisePins?: readonly versions.Component[];
}

const current = (): ProgramEdits => {
  const raw = process.env[PROGRAM_EDITS_ENV];
  return raw ? (JSON.parse(raw) as ProgramEdits) : {};
};

/** The edits made so far in this process (and so in every child it starts). */
export const programEdits = (): ProgramEdits => current();

const applied = { retired: new Set<string>(), raised: new Set<string>() };
const originalDefinitions = alerts.alertDefinitions;
/** The module's exports object itself (TypeScript's CommonJS output: plain, writable properties). */
const writable = alerts as unknown as {
  alertDefinitions: typeof alerts.alertDefinitions;
  RETIRED_ALERTS: typeof alerts.RETIRED_ALERTS;
};

/** Makes `edits` in this process's modules (each once: raising a pin twice is one raise). */
export function applyProgramEdits(edits: ProgramEdits): void {
  for (const uid of edits.retireAlerts ?? []) {
    if (applied.retired.has(uid)) continue;
    const live = originalDefinitions(testConfig());
    const rule = live.find((a) => a.uid === uid);
    if (!rule) throw new Error(`retireAlerts: ${JSON.stringify(uid)} is not a uid of the alert table`);
    applied.retired.add(uid);
    const retired = [...applied.retired];
    writable.alertDefinitions = (config) => originalDefinitions(config).filter((a) => !retired.includes(a.uid));
    writable.RETIRED_ALERTS = [
      ...alerts.RETIRED_ALERTS.filter((r) => r.uid !== uid),
      { uid, name: rule.name, retired: "2026-12-06", why: "removed (the fleet's lifecycle matrix)" },
    ];
  }
  for (const component of edits.raisePins ?? []) {
    if (applied.raised.has(component)) continue;
    const pin = versions.VERSIONS[component];
    if (!pin) throw new Error(`raisePins: ${JSON.stringify(component)} is not a component of facts/versions.ts`);
    applied.raised.add(component);
    const raised = { ...pin, version: nextPatchVersion(pin.version), aptPin: nextPatchVersion(pin.aptPin) };
    (versions.VERSIONS as Record<string, versions.PinnedPackage>)[component] = raised;
  }
}

/** Makes `edits` here and records them for every stack plan started from now on. */
export function editProgram(edits: ProgramEdits): void {
  const before = current();
  const merged: ProgramEdits = {
    retireAlerts: [...new Set([...(before.retireAlerts ?? []), ...(edits.retireAlerts ?? [])])],
    raisePins: [...new Set([...(before.raisePins ?? []), ...(edits.raisePins ?? [])])],
  };
  applyProgramEdits(merged);
  process.env[PROGRAM_EDITS_ENV] = JSON.stringify(merged);
}
