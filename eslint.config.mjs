// Lint rules: the recommended TypeScript set, type-aware, over every TypeScript file, and the
// layering of the program's folders (tests/layers.test.ts proves each rule still refuses).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

// Bottom first: a layer imports the layers before it and never one after it (docs/architecture.md: Code layout).
const LAYERS = ["facts", "templates", "infra", "tools"];
// Pure layers: no Pulumi, so they render and validate the same anywhere (tests, CI, fleet).
const PURE = ["facts", "templates"];

const layerRules = LAYERS.map((layer, i) => {
  const above = [...LAYERS.slice(i + 1), "policy", "tests", "bench"];
  const patterns = [
    {
      regex: `^(\\.\\./)+(${above.join("|")})(/|$)`,
      message: `${layer}/ must not import ${above.join(", ")}: the layers are ${LAYERS.join(" -> ")} (docs/architecture.md: Code layout).`,
    },
  ];
  if (PURE.includes(layer)) {
    patterns.push({
      group: ["@pulumi/*"],
      message: `${layer}/ stays free of Pulumi: reading the stack and declaring resources belong in infra/.`,
    });
  }
  return {
    files: [`${layer}/**/*.ts`],
    rules: { "@typescript-eslint/no-restricted-imports": ["error", { patterns }] },
  };
});

export default tseslint.config(
  { ignores: ["build/", "build-*/", "node_modules/", "app/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's describe/it return promises the runner itself tracks.
      "@typescript-eslint/no-floating-promises": [
        "error",
        { allowForKnownSafeCalls: [{ from: "package", package: "node:test", name: ["describe", "it", "test"] }] },
      ],
      "@typescript-eslint/explicit-module-boundary-types": "off",
    },
  },
  ...layerRules,
  {
    // The policy pack stands beside the program: it judges what infra/ declares, so it reads the
    // facts (ports, roles, tags, bounds) and never the code it judges.
    files: ["policy/**/*.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(\\.\\./)+(templates|infra|tools|tests|bench|index)(/|$)",
              message:
                "policy/ imports facts/ only: it judges what infra/ declares (docs/architecture.md: Code layout).",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["index.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            { regex: "^\\./(?!infra/)", message: "index.ts imports infra/ only: infra/stack.ts wires the rest." },
          ],
        },
      ],
    },
  },
  { files: ["**/*.mjs"], ...tseslint.configs.disableTypeChecked },
);
