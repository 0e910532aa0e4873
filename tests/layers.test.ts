/**
 * The layering (docs/architecture.md: Code layout) is enforced by eslint.config.mjs, not by
 * this test: this test
 * lints throwaway sources placed in each layer through the project's own configuration and
 * checks that an upward import is refused and a downward one is not, so the rule cannot stop
 * applying silently (a renamed folder, a moved config block, a regex that no longer matches).
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ESLint } from "eslint";
import tseslint from "typescript-eslint";
import { ROOT } from "./support/files";

const RULE = "@typescript-eslint/no-restricted-imports";

/**
 * The project's configuration, minus type information: the probes are not files on disk, so
 * the type-aware rules could not run on them; the import rule needs no types.
 */
const eslint = new ESLint({ cwd: ROOT, overrideConfig: tseslint.configs.disableTypeChecked });

/** Messages of the import rule for `source` linted as if it were the file `file`. */
async function refusals(file: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${source}\nexport {};\n`, { filePath: path.join(ROOT, file) });
  assert.ok(result, `no lint result for ${file}`);
  const fatal = result.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], `${file} did not parse`);
  return result.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
}

interface Probe {
  readonly file: string;
  readonly imports: string;
}

/** Upward imports (and Pulumi in the pure layers): each must be refused. */
const UPWARD: readonly Probe[] = [
  { file: "facts/layerProbe.ts", imports: 'import "../templates/types";' },
  { file: "facts/layerProbe.ts", imports: 'import type { StackConfig } from "../infra/config";' },
  { file: "facts/layerProbe.ts", imports: 'export { main } from "../tools/validate/checkGrafana";' },
  { file: "facts/layerProbe.ts", imports: 'import * as pulumi from "@pulumi/pulumi";' },
  { file: "templates/layerProbe.ts", imports: 'import { defineStack } from "../infra/stack";' },
  { file: "templates/grafana/layerProbe.ts", imports: 'import type { Tags } from "../../infra/delivery/pipeline";' },
  { file: "templates/host/layerProbe.ts", imports: 'import "../../tools/validate/grafanaApt";' },
  { file: "templates/layerProbe.ts", imports: 'import "@pulumi/pulumi/runtime/config";' },
  { file: "templates/layerProbe.ts", imports: 'import "../tests/support/files";' },
  { file: "infra/layerProbe.ts", imports: 'import "../tools/validate/renderForValidation";' },
  { file: "infra/delivery/layerProbe.ts", imports: 'import "../../tests/support/render";' },
  { file: "tools/validate/layerProbe.ts", imports: 'import "../../tests/support/render";' },
  { file: "infra/layerProbe.ts", imports: 'import { POLICIES } from "../policy/policies";' },
  { file: "policy/layerProbe.ts", imports: 'import { hostTags } from "../infra/host";' },
  { file: "policy/layerProbe.ts", imports: 'import "../templates/types";' },
  { file: "policy/layerProbe.ts", imports: 'import "../tests/support/files";' },
  { file: "index.ts", imports: 'import { renderLokiConfig } from "./templates/loki/config";' },
  { file: "index.ts", imports: 'import "./facts/topology";' },
];

/** Downward and sideways imports: none may be refused, or the rule refuses everything. */
const ALLOWED: readonly Probe[] = [
  { file: "facts/layerProbe.ts", imports: 'import { ROLES } from "./topology";\nimport YAML from "yaml";' },
  { file: "templates/grafana/layerProbe.ts", imports: 'import { ROLES } from "../../facts/topology";' },
  { file: "templates/layerProbe.ts", imports: 'import "./host/userData";\nimport "../facts/versions";' },
  { file: "infra/layerProbe.ts", imports: 'import "../templates/types";\nimport "../facts/config";' },
  { file: "infra/layerProbe.ts", imports: 'import * as aws from "@pulumi/aws";' },
  { file: "tools/validate/layerProbe.ts", imports: 'import "../../infra/delivery/pipeline";' },
  { file: "index.ts", imports: 'import "./infra/stack";\nimport * as pulumi from "@pulumi/pulumi";' },
  {
    file: "policy/layerProbe.ts",
    imports: 'import "../facts/topology";\nimport "@pulumi/aws/ec2/instance";\nimport "./subject";',
  },
];

describe("layers (eslint.config.mjs)", () => {
  for (const probe of UPWARD) {
    it(`refuses in ${probe.file}: ${probe.imports}`, async () => {
      const messages = await refusals(probe.file, probe.imports);
      assert.equal(messages.length, 1, `expected ${RULE} to refuse it, got ${JSON.stringify(messages)}`);
      assert.match(messages[0], /docs\/architecture\.md: Code layout|free of Pulumi|imports infra\/ only/);
    });
  }

  for (const probe of ALLOWED) {
    it(`allows in ${probe.file}: ${probe.imports.replace(/\n/g, " ")}`, async () => {
      assert.deepEqual(await refusals(probe.file, probe.imports), []);
    });
  }
});
