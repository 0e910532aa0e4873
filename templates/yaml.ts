/** YAML as every renderer writes it: no anchors or aliases, no folded long lines. */
import YAML from "yaml";

export const toYaml = (value: unknown): string => YAML.stringify(value, { lineWidth: 0, aliasDuplicateObjects: false });
