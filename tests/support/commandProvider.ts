/**
 * pulumi-command's input rules, as its Check() applies them before any preview or update, for
 * every resource type of the package the program uses. Read from pulumi/pulumi-command v1.2.1
 * (the version package-lock.json pins) and the pulumi-go-provider v1.3.0 it builds on; a
 * program that breaks one fails its snapshot with the engine's message, as `pulumi preview` would.
 *
 * - Every type: inputs are decoded into the provider's struct (pulumi-go-provider
 *   infer/resource.go DefaultCheck, infer/internal/ende/ende.go decode: unrecognized fields and
 *   missing required fields are failures; an unknown value decodes to the field's zero value).
 * - command:remote:CopyToRemote adds its own Check (provider/pkg/provider/remote/copyController.go):
 *   exactly one of asset or archive; an asset must be a path (FileAsset) or text (StringAsset);
 *   an archive must be a path (FileArchive). An unknown source decodes to neither, so a preview
 *   that cannot know the source fails with "either asset or archive must be set" (fixed after
 *   v1.2.1 by pulumi-command#1184, not in any release this project can pin).
 * - Fields, required or optional: remote/copy.go (CopyToRemoteInputs), common/inputs.go
 *   (ResourceInputs), remote/command.go (CommandInputs), remote/connection.go (Connection:
 *   `host` required; proxy is the same block without its own proxy), local/command.go and
 *   local/base.go (BaseInputs: nothing required).
 * Messages: pulumi/pulumi pkg/diag/errors.go (GetResourceInvalidError,
 * GetResourcePropertyInvalidValueError) as step_generator.go's issueCheckFailures prints them.
 */
import * as pulumi from "@pulumi/pulumi";

type Kind = "string" | "number" | "boolean" | "array" | "map" | "connection" | "proxy" | "source";

interface Field {
  readonly kind: Kind;
  readonly required?: boolean;
}

const RESOURCE_INPUTS: Record<string, Field> = {
  triggers: { kind: "array" },
  create: { kind: "string" },
  update: { kind: "string" },
  delete: { kind: "string" },
};

const CONNECTION_BASE: Record<string, Field> = {
  user: { kind: "string" },
  password: { kind: "string" },
  host: { kind: "string", required: true },
  port: { kind: "number" },
  privateKey: { kind: "string" },
  privateKeyPassword: { kind: "string" },
  agentSocketPath: { kind: "string" },
  dialErrorLimit: { kind: "number" },
  perDialTimeout: { kind: "number" },
  hostKey: { kind: "string" },
};

const BLOCKS: Record<"connection" | "proxy", Record<string, Field>> = {
  connection: { ...CONNECTION_BASE, proxy: { kind: "proxy" } },
  proxy: CONNECTION_BASE,
};

export const COMMAND_TYPES: Readonly<Record<string, Record<string, Field>>> = {
  "command:remote:Command": {
    ...RESOURCE_INPUTS,
    stdin: { kind: "string" },
    logging: { kind: "string" },
    connection: { kind: "connection", required: true },
    environment: { kind: "map" },
    addPreviousOutputInEnv: { kind: "boolean" },
  },
  "command:remote:CopyToRemote": {
    connection: { kind: "connection", required: true },
    triggers: { kind: "array" },
    source: { kind: "source", required: true },
    remotePath: { kind: "string", required: true },
  },
  "command:local:Command": {
    ...RESOURCE_INPUTS,
    stdin: { kind: "string" },
    logging: { kind: "string" },
    interpreter: { kind: "array" },
    dir: { kind: "string" },
    environment: { kind: "map" },
    assetPaths: { kind: "array" },
    archivePaths: { kind: "array" },
    addPreviousOutputInEnv: { kind: "boolean" },
  },
};

interface Failure {
  readonly property?: string;
  readonly value?: unknown;
  readonly reason: string;
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
/** The mocks hand secrets over still wrapped: the provider sees the value inside. */
const unwrap = (v: unknown): unknown =>
  typeof v === "object" && v !== null && SECRET_SIG in v ? (v as unknown as { value: unknown }).value : v;

const kindOf = (v: unknown): string =>
  Array.isArray(v) ? "array" : v === null ? "null" : typeof v === "object" ? "map" : typeof v;

function checkFields(fields: Record<string, Field>, values: Record<string, unknown>, prefix: string): Failure[] {
  const failures: Failure[] = [];
  for (const key of Object.keys(values)) {
    if (!(key in fields)) failures.push({ property: prefix + key, reason: `unrecognized field '${key}'` });
  }
  for (const [key, field] of Object.entries(fields)) {
    const raw = unwrap(values[key]);
    const property = prefix + key;
    if (raw === undefined) {
      if (field.required) failures.push({ property, reason: `Missing required field '${key}'` });
      continue;
    }
    if (pulumi.isUnknown(raw)) continue; // decoded as the zero value: no failure from decoding
    switch (field.kind) {
      case "connection":
      case "proxy":
        if (kindOf(raw) !== "map") failures.push({ property, value: raw, reason: `expected an object` });
        else failures.push(...checkFields(BLOCKS[field.kind], raw as Record<string, unknown>, `${property}.`));
        break;
      case "source":
        break;
      case "map":
        if (kindOf(raw) !== "map") failures.push({ property, value: raw, reason: "expected a map of strings" });
        break;
      default:
        if (kindOf(raw) !== field.kind) failures.push({ property, value: raw, reason: `expected a ${field.kind}` });
    }
  }
  return failures;
}

/** copyController.go Check (v1.2.1), after the struct is decoded. */
function checkSource(source: unknown): Failure[] {
  const value = unwrap(source);
  const isAsset = value instanceof pulumi.asset.Asset;
  const isArchive = value instanceof pulumi.asset.Archive;
  if (!isAsset && !isArchive) return [{ property: "asset", reason: "either asset or archive must be set" }];
  if (isAsset && !(value instanceof pulumi.asset.FileAsset) && !(value instanceof pulumi.asset.StringAsset)) {
    return [{ property: "asset", reason: "asset must be a path-based file asset or a text asset" }];
  }
  if (isArchive && !(value instanceof pulumi.asset.FileArchive)) {
    return [{ property: "archive", reason: "archive must be a path to a file or directory" }];
  }
  return [];
}

/** The failures pulumi-command's Check would report for these inputs; none for other types. */
export function commandCheckFailures(type: string, inputs: Record<string, unknown>): Failure[] {
  const fields = COMMAND_TYPES[type];
  if (!fields) {
    if (type.startsWith("command:"))
      throw new Error(`mock: no input rules for ${type}: add them from pulumi-command's source`);
    return [];
  }
  const failures = checkFields(fields, inputs, "");
  if (type === "command:remote:CopyToRemote") failures.push(...checkSource(inputs.source));
  return failures;
}

/** Throws as the engine reports a failed Check; called from the mocks' newResource. */
export function checkCommandResource(type: string, name: string, inputs: Record<string, unknown>): void {
  const failures = commandCheckFailures(type, inputs);
  if (failures.length === 0) return;
  throw new Error(
    failures
      .map((f) =>
        f.property === undefined
          ? `${type} resource '${name}' has a problem: ${f.reason}`
          : `${type} resource '${name}'s property '${f.property}' value ${JSON.stringify(f.value ?? null)} has a problem: ${f.reason}`,
      )
      .join("\n"),
  );
}
