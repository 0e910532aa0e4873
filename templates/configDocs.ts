/** The README's configuration reference, rendered from CONFIG_KEYS (tests keep the README in step). */
import { CONFIG_KEYS, type KeySpec } from "../facts/config";

function defaultOf(spec: KeySpec): string {
  if (spec.required) return "**required**";
  if (spec.default !== undefined) return `\`${String(spec.default)}\``;
  if (spec.key === "environment") return "stack name";
  if (spec.key === "vendorAptRepository") return "Grafana's";
  return "unset";
}

export function configTable(): string {
  const rows = (CONFIG_KEYS as readonly KeySpec[]).map(
    (s) => `| \`${s.key}\` | ${s.type}${s.secret ? " (secret)" : ""} | ${defaultOf(s)} | ${s.description} |`,
  );
  return ["| key | type | default | description |", "|---|---|---|---|", ...rows].join("\n");
}

if (require.main === module) console.log(configTable());
