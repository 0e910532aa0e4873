/**
 * Grafana Alloy on a web host: tails the Titan app's logfmt files and the systemd journal and
 * pushes both to Loki, with a fixed, low-cardinality label set (LOKI_LABELS) that the Grafana
 * dashboards are tested against. Also /etc/default/alloy, the Debian package's environment file,
 * so Alloy's own HTTP server (metrics, UI) listens where Prometheus can scrape it.
 *
 * Components and arguments checked against Alloy's reference for the pinned 1.x line:
 * local.file_match, loki.source.file, loki.source.journal, loki.relabel, loki.process
 * (stage.logfmt, stage.timestamp, stage.labels, stage.static_labels) and loki.write.
 */
import type { HostSlot } from "../../facts/addressing";
import { physicalName } from "../../facts/naming";
import { SERVICES } from "../../facts/topology";
import { addressOf, type RenderedFile, type TemplateContext } from "../types";
import { VERSIONS } from "../../facts/versions";
import { attr, block, comment, expr, renderAlloy, type AlloyStatement } from "./syntax";

export const ALLOY_CONFIG_PATH = "/etc/alloy/config.alloy";
export const ALLOY_DEFAULTS_PATH = "/etc/default/alloy";
/** The Debian package creates user and group `alloy` and makes /etc/alloy root:alloy 0770. */
export const ALLOY_FILE_OWNER = { owner: "root", group: "alloy", mode: 0o640 } as const;

/** Every Loki label this pipeline can set; the dashboards' LogQL selectors use only these. */
export const LOKI_LABELS = ["job", "host", "role", "environment", "filename", "level", "unit"] as const;
export type LokiLabel = (typeof LOKI_LABELS)[number];

export const TITAN_JOB = "titan";
export const JOURNAL_JOB = "systemd-journal";
/** Labels of each kind of stream: app log files and journal entries. */
export const TITAN_STREAM_LABELS = [
  "job",
  "host",
  "role",
  "environment",
  "filename",
  "level",
] as const satisfies readonly LokiLabel[];
export const JOURNAL_STREAM_LABELS = [
  "job",
  "host",
  "role",
  "environment",
  "unit",
] as const satisfies readonly LokiLabel[];

/**
 * How the app's log lines are read, as data: the Alloy stages below are generated from it, and
 * the end-to-end run checks real app lines with parseLogfmt/titanLabels and the same rules.
 */
export const TITAN_LOG_RULES = {
  pathGlob: "/var/log/titan/*.log",
  format: "logfmt",
  /** Field holding the event time: RFC 3339 UTC with milliseconds (app/titan/logfmt.py). */
  timestampField: "ts",
  timestampFormat: "RFC3339Nano",
  /** Fields promoted to labels. Only bounded ones: level is one of `levels`. */
  labelFields: ["level"],
  levels: ["info", "warning", "error"],
  /** What any other `level` value becomes, so the label stays bounded whatever a line says. */
  otherLevel: "other",
  /** High-cardinality fields that must stay in the line, never become labels. */
  lineOnlyFields: ["ts", "msg", "request_id", "duration", "path"],
} as const;

/**
 * Journal units whose names are minted anew for each login or run. Each kind collapses to one
 * `unit` value without a unit-type suffix (so it never reads as a real unit), and the label keeps
 * a bounded set of values however many configuration pushes log in over SSH. The regexes are
 * RE2, fully anchored by Alloy.
 * - login sessions: logind names the scope `session-<id>.scope`, the id being the audit session
 *   number or `c<N>` without audit (systemd src/login/logind-dbus.c);
 * - systemd-run: `run-u<N>`, `run-r<128-bit hex>` or `run-p<pid>-i<N>`, then `.<unit type>`
 *   (systemd src/run/run.c make_unit_name). A unit merely named `run-...` keeps its name.
 */
export const JOURNAL_UNIT_COLLAPSE = [
  { unit: "login-session", regex: String.raw`session-c?[0-9]+\.scope` },
  { unit: "systemd-run", regex: String.raw`run-(?:u[0-9]+|r[0-9a-f]+|p[0-9]+-i[0-9]+)\.[a-z]+` },
] as const;

/** The journal field (as loki.source.journal names it) that `unit` comes from. */
export const JOURNAL_UNIT_SOURCE = "__journal__systemd_unit";

/** How far back the journal is read when Alloy starts without a saved position. */
export const JOURNAL_MAX_AGE = "12h";

/**
 * The LogQL stream selector of the lines whose `level` label is set but not one of `levels`.
 * grafana/alloy internal/component/loki/process/stages/match.go: stage.match runs its nested
 * stages on an entry only when every matcher of the selector matches its labels (processLogQL),
 * and the matchers are LogQL's, so regexes are fully anchored RE2.
 */
export function unknownLevelSelector(): string {
  const { levels } = TITAN_LOG_RULES;
  for (const l of levels) if (!/^[a-z]+$/.test(l)) throw new Error(`level ${JSON.stringify(l)}: expected a-z only`);
  return `{level=~".+", level!~"${levels.join("|")}"}`;
}

/** The `level` label a line's level field becomes (what the stages above do). */
export function levelLabel(value: string): string {
  return (TITAN_LOG_RULES.levels as readonly string[]).includes(value) ? value : TITAN_LOG_RULES.otherLevel;
}

export const lokiPushUrl = (ctx: TemplateContext): string =>
  `http://${addressOf(ctx.plan, "loki")}:${SERVICES.loki.port}/loki/api/v1/push`;

/** The static labels of every stream from this host. `host` equals Prometheus' `instance`. */
export function hostLabels(ctx: TemplateContext, host: HostSlot): Record<"host" | "role" | "environment", string> {
  return { host: physicalName(ctx.config, host.name), role: host.role, environment: ctx.config.environment };
}

export function alloyPipeline(ctx: TemplateContext, host: HostSlot): AlloyStatement[] {
  if (host.role !== "web") throw new Error(`Alloy runs on web hosts only, not on ${host.name} (${host.role})`);
  const labels = hostLabels(ctx, host);
  const rules = TITAN_LOG_RULES;
  return [
    comment(
      `Grafana Alloy ${VERSIONS.alloy.version} on ${labels.host}. Rendered by templates/alloy/config.ts; do not edit on the host.`,
    ),
    comment("Titan app log files: logfmt lines, `level` becomes a label, everything else stays in the line."),
    block("local.file_match", "titan", [
      attr("path_targets", [{ __path__: rules.pathGlob }]),
      attr("sync_period", "10s"),
    ]),
    block("loki.source.file", "titan", [
      comment("Sets the `filename` label to the file's path."),
      attr("targets", expr("local.file_match.titan.targets")),
      attr("forward_to", [expr("loki.process.titan.receiver")]),
    ]),
    block("loki.process", "titan", [
      attr("forward_to", [expr("loki.write.loki.receiver")]),
      block("stage.logfmt", undefined, [
        attr("mapping", Object.fromEntries([rules.timestampField, ...rules.labelFields].map((f) => [f, ""]))),
      ]),
      block("stage.timestamp", undefined, [
        attr("source", rules.timestampField),
        attr("format", rules.timestampFormat),
      ]),
      block("stage.labels", undefined, [attr("values", Object.fromEntries(rules.labelFields.map((f) => [f, ""])))]),
      comment(
        `A level the app does not write (a typo, debug, WARN) becomes "${rules.otherLevel}": the label stays bounded.`,
      ),
      block("stage.match", undefined, [
        attr("selector", unknownLevelSelector()),
        block("stage.static_labels", undefined, [attr("values", { level: rules.otherLevel })]),
      ]),
      block("stage.static_labels", undefined, [attr("values", { job: TITAN_JOB, ...labels })]),
    ]),
    comment("The systemd journal (the alloy user is in group systemd-journal); `unit` from the entry's unit."),
    block("loki.relabel", "journal", [
      attr("forward_to", []),
      block("rule", undefined, [attr("source_labels", [JOURNAL_UNIT_SOURCE]), attr("target_label", "unit")]),
      comment("Per-login and per-run unit names collapse to one value each: the label stays bounded."),
      ...JOURNAL_UNIT_COLLAPSE.map(({ unit, regex }) =>
        block("rule", undefined, [
          attr("source_labels", [JOURNAL_UNIT_SOURCE]),
          attr("regex", regex),
          attr("target_label", "unit"),
          attr("replacement", unit),
        ]),
      ),
    ]),
    block("loki.source.journal", "system", [
      attr("max_age", JOURNAL_MAX_AGE),
      attr("relabel_rules", expr("loki.relabel.journal.rules")),
      attr("forward_to", [expr("loki.process.journal.receiver")]),
    ]),
    block("loki.process", "journal", [
      attr("forward_to", [expr("loki.write.loki.receiver")]),
      comment("Overrides the component-named job label the journal source sets."),
      block("stage.static_labels", undefined, [attr("values", { job: JOURNAL_JOB, ...labels })]),
    ]),
    comment("Push to Loki on its fixed private address; retry with backoff while Loki restarts."),
    block("loki.write", "loki", [
      block("endpoint", undefined, [
        attr("url", lokiPushUrl(ctx)),
        attr("batch_wait", "1s"),
        attr("batch_size", "1MiB"),
        attr("remote_timeout", "10s"),
        attr("min_backoff_period", "500ms"),
        attr("max_backoff_period", "1m"),
        attr("max_backoff_retries", 20),
        attr("retry_on_http_429", true),
      ]),
    ]),
  ];
}

/** Alloy's `run` flags: listen where Prometheus can scrape (default is 127.0.0.1), no usage reports. */
export function alloyArgs(): string[] {
  return [`--server.http.listen-addr=0.0.0.0:${SERVICES.alloy.port}`, "--disable-reporting"];
}

/**
 * The package's environment file: its unit runs `alloy run $CUSTOM_ARGS ... $CONFIG_FILE` with
 * it as EnvironmentFile, and its postinst sources it as shell, so values stay plain and quoted.
 */
export function renderAlloyDefaults(): string {
  return [
    "# Grafana Alloy service settings. Rendered by templates/alloy/config.ts; do not edit on the host.",
    `CONFIG_FILE="${ALLOY_CONFIG_PATH}"`,
    `CUSTOM_ARGS="${alloyArgs().join(" ")}"`,
    "RESTART_ON_UPGRADE=true",
    "",
  ].join("\n");
}

export function renderAlloyFiles(ctx: TemplateContext, host: HostSlot): RenderedFile[] {
  return [
    { path: ALLOY_CONFIG_PATH, content: renderAlloy(alloyPipeline(ctx, host)), ...ALLOY_FILE_OWNER },
    { path: ALLOY_DEFAULTS_PATH, content: renderAlloyDefaults(), owner: "root", group: "root", mode: 0o644 },
  ];
}

/** One logfmt line, strictly (the app's format): key=value pairs, bare or JSON-quoted values. */
export function parseLogfmt(line: string): Record<string, string> {
  const text = line.endsWith("\n") ? line.slice(0, -1) : line;
  const fields: Record<string, string> = {};
  const key = /[A-Za-z_][A-Za-z0-9_.-]*/y;
  // Bare values: no whitespace, quote, '=', backslash or control character (as the app writes them).
  // eslint-disable-next-line no-control-regex
  const bare = /[^\s"=\\\x00-\x1f\x7f]+/y;
  let i = 0;
  if (text.length === 0) throw new Error("empty line");
  while (i < text.length) {
    key.lastIndex = i;
    const k = key.exec(text);
    if (!k) throw new Error(`bad key at ${i}: ${JSON.stringify(text)}`);
    i = key.lastIndex;
    if (text[i] !== "=") throw new Error(`missing '=' after ${k[0]}: ${JSON.stringify(text)}`);
    i += 1;
    let value: string;
    if (text[i] === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (j >= text.length) throw new Error(`unterminated quote: ${JSON.stringify(text)}`);
      value = JSON.parse(text.slice(i, j + 1)) as string;
      i = j + 1;
    } else {
      bare.lastIndex = i;
      const v = bare.exec(text);
      if (!v) throw new Error(`empty or invalid value for ${k[0]}: ${JSON.stringify(text)}`);
      value = v[0];
      i = bare.lastIndex;
    }
    if (k[0] in fields) throw new Error(`duplicate key ${k[0]}: ${JSON.stringify(text)}`);
    fields[k[0]] = value;
    if (i < text.length) {
      if (text[i] !== " ") throw new Error(`expected one space at ${i}: ${JSON.stringify(text)}`);
      i += 1;
    }
  }
  return fields;
}

/** The labels an app log line gets from the file pipeline, given its file and host labels. */
export function titanLabels(
  line: string,
  filename: string,
  host: Record<"host" | "role" | "environment", string>,
): Record<string, string> {
  const fields = parseLogfmt(line);
  const labels: Record<string, string> = { job: TITAN_JOB, ...host, filename };
  for (const f of TITAN_LOG_RULES.labelFields) if (fields[f] !== undefined && fields[f] !== "") labels[f] = fields[f];
  if (labels.level !== undefined) labels.level = levelLabel(labels.level);
  return labels;
}
