/**
 * The matrix's program edits (programEdits.ts), planned without containers: a raised pin
 * replaces exactly the roles whose user data installs the package (docs/operations.md's "What
 * replaces a host" row), an image change replaces every host, and a retired alert rule reaches the Grafana
 * push as a `deleteRules` entry, in the child process that plans the stack as in this one.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import YAML from "yaml";
import { VERSIONS } from "../../facts/versions";
import { GRAFANA_PATHS } from "../../templates/grafana/constants";
import { bootstrapPlan } from "../../templates/host/bootstrap";
import { projectRoot } from "../../templates/projectFiles";
import { key } from "../support/snapshots";
import { editProgram, programEdits } from "./programEdits";
import { COPY_TO_REMOTE, fleetConfig, INSTANCE, planStack, type StackPlan } from "./stackPlan";
import { nextPatchVersion } from "./standins/packages";

const STACK = "fleet-edits-test";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-edits-test-"));
execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "edits-test", "-f", path.join(tmp, "id")]);
const config = fleetConfig({
  publicKey: fs.readFileSync(path.join(tmp, "id.pub"), "utf8"),
  privateKey: fs.readFileSync(path.join(tmp, "id"), "utf8"),
});

let base: StackPlan;
before(async () => {
  base = await planStack(config, { stack: STACK });
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(path.join(projectRoot(), ".titan-push", STACK), { recursive: true, force: true });
});

const replacedInstances = (plan: StackPlan) =>
  plan.resources
    .filter((r) => r.type === INSTANCE && r.action === "replace")
    .map((r) => plan.hosts.find((h) => h.privateIp === r.inputs.privateIp)?.name)
    .sort();

/** The rules file as the Grafana push carries it (the staged tree the copy sends). */
function pushedRules(plan: StackPlan): { deleteRules?: { uid: string }[]; groups: { rules: { uid: string }[] }[] } {
  const grafana = plan.hosts.find((h) => h.role === "grafana");
  const copy = grafana?.pushes.find((p) => p.type === COPY_TO_REMOTE);
  if (copy?.type !== COPY_TO_REMOTE) throw new Error("the Grafana host has no copy in its push");
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith(path.basename(GRAFANA_PATHS.alertRules))) found.push(p);
    }
  };
  walk(copy.source.absolute);
  assert.equal(found.length, 1, `one rules file in the Grafana push, found ${found.join(", ")}`);
  return YAML.parse(fs.readFileSync(found[0], "utf8")) as ReturnType<typeof pushedRules>;
}

describe("program edits the lifecycle matrix makes", () => {
  test("an alert rule retired: the Grafana push deletes its uid and no longer provisions it", async () => {
    const uid = "titan-app-error-log-lines";
    assert.ok(
      pushedRules(base).groups[0].rules.some((r) => r.uid === uid),
      "the rule is in the table first",
    );
    editProgram({ retireAlerts: [uid] });
    const next = await planStack(config, { stack: STACK, prior: base.resources });
    const rules = pushedRules(next);
    assert.deepEqual(
      rules.deleteRules?.map((r) => r.uid),
      [uid],
    );
    assert.ok(!rules.groups[0].rules.some((r) => r.uid === uid), "the retired rule is still provisioned");
    assert.deepEqual(replacedInstances(next), [], "retiring a rule replaces no host");
    base = next;
  });

  test("a pin raised: exactly the roles whose user data installs the package are replaced", async () => {
    const pinned = VERSIONS.grafana.aptPin;
    const installs = base.hosts
      .filter((h) => bootstrapPlan(h.role, h.dataVolume?.volumeId).pinned.some((p) => p.package === "grafana"))
      .map((h) => h.name)
      .sort();
    assert.deepEqual(installs, ["grafana"]);
    editProgram({ raisePins: ["grafana"] });
    assert.equal(VERSIONS.grafana.aptPin, nextPatchVersion(pinned));
    assert.deepEqual(programEdits().raisePins, ["grafana"]);
    const next = await planStack(config, { stack: STACK, prior: base.resources });
    assert.deepEqual(replacedInstances(next), installs);
    const grafana = next.hosts.find((h) => h.role === "grafana");
    assert.match(grafana?.userData ?? "", new RegExp(nextPatchVersion(pinned).replace(/\./g, "\\.")));
    // Raising it again in the same run is the same edit: no second raise.
    editProgram({ raisePins: ["grafana"] });
    assert.equal(VERSIONS.grafana.aptPin, nextPatchVersion(pinned));
    base = next;
  });

  test("the image changed: every host is replaced", async () => {
    const next = await planStack(
      { ...config, [key("amiId")]: "ami-0f1ee7000000000b2" },
      { stack: STACK, prior: base.resources },
    );
    assert.deepEqual(replacedInstances(next), base.hosts.map((h) => h.name).sort());
  });

  test("an edit naming nothing the program has is refused, naming it", () => {
    assert.throws(() => editProgram({ retireAlerts: ["titan-no-such-rule"] }), /retireAlerts: "titan-no-such-rule"/);
  });
});
