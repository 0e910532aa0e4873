/**
 * Every query of every dashboard panel, and the variable selections a user makes, turned into
 * the exact query text Grafana sends (macros and variables expanded).
 */
import type { Dashboard, Panel, Target, Variable } from "../../templates/grafana/model";
import {
  formatVariable,
  grafanaInterval,
  interpolate,
  macroValues,
  parseLabelValues,
  type Dialect,
  type Selection,
  type VariableSpec,
} from "./promql";

export interface PanelQuery {
  readonly dashboardUid: string;
  readonly panelId: number;
  readonly panelTitle: string;
  readonly refId: string;
  readonly dialect: Dialect;
  readonly expr: string;
  /** maxDataPoints as Grafana sets it: the panel's width in pixels. */
  readonly widthPx: number;
}

/** A 1920-pixel-wide browser: the 24 grid columns share it. */
const SCREEN_PX = 1920;
const GRID_COLUMNS = 24;

function dialectOf(target: Target): Dialect {
  if (target.datasource.type === "prometheus" || target.datasource.type === "loki") return target.datasource.type;
  throw new Error(`unexpected data source type ${target.datasource.type}`);
}

function walk(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => (p.type === "row" ? [p, ...walk(p.panels)] : [p]));
}

/** Every panel of a dashboard, those inside rows included. */
export const allPanels = (dashboard: Dashboard): Panel[] => walk(dashboard.panels);

export function panelQueries(dashboard: Dashboard): PanelQuery[] {
  return walk(dashboard.panels).flatMap((panel) =>
    panel.type === "row"
      ? []
      : panel.targets.map((t) => ({
          dashboardUid: dashboard.uid,
          panelId: panel.id,
          panelTitle: panel.title,
          refId: t.refId,
          dialect: dialectOf(t),
          expr: t.expr,
          widthPx: Math.round((panel.gridPos.w / GRID_COLUMNS) * SCREEN_PX),
        })),
  );
}

export interface ResolvedVariable {
  readonly spec: VariableSpec;
  /** The values the variable offers (query variables: what the live data source returned). */
  readonly options: readonly string[];
  /** The value before the user touches it (single-valued variables, textboxes). */
  readonly initial?: string;
}

export type LabelValuesFn = (label: string, match?: string) => Promise<string[]>;

/**
 * Resolves the variables in dashboard order, as Grafana does on load: a query variable's query
 * may use the variables before it, which take their default (first option, or All).
 */
export async function resolveVariables(
  variables: readonly Variable[],
  labelValues: LabelValuesFn,
): Promise<Map<string, ResolvedVariable>> {
  const resolved = new Map<string, ResolvedVariable>();
  for (const v of variables) {
    if (v.type === "query") {
      const defaults = expansionValues(resolved, defaultSelection(resolved), "prometheus");
      const { match, label } = parseLabelValues(interpolate(v.query, defaults));
      const options = [...new Set(await labelValues(label, match))].sort();
      if (options.length === 0) throw new Error(`variable $${v.name}: ${v.query} returns no values`);
      resolved.set(v.name, { spec: v, options, ...(v.multi || v.includeAll ? {} : { initial: options[0] }) });
    } else if (v.type === "custom") {
      const options = v.query.split(",").map((s) => s.trim());
      resolved.set(v.name, { spec: v, options });
    } else {
      resolved.set(v.name, { spec: { name: v.name }, options: [], initial: v.current.value });
    }
  }
  return resolved;
}

export type Selections = ReadonlyMap<string, Selection>;

/** All on every multi-value variable, the first value on single-value ones. */
export function defaultSelection(resolved: ReadonlyMap<string, ResolvedVariable>): Selections {
  const out = new Map<string, Selection>();
  for (const [name, r] of resolved) {
    if (r.spec.includeAll) out.set(name, { all: true });
    else out.set(name, { values: [r.initial ?? r.options[0]] });
  }
  return out;
}

/** The variable values in a query of the given data source, for one selection. */
export function expansionValues(
  resolved: ReadonlyMap<string, ResolvedVariable>,
  selection: Selections,
  dialect: Dialect,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, r] of resolved) {
    const sel = selection.get(name);
    if (!sel) throw new Error(`no selection for $${name}`);
    // Textboxes are inserted as typed (the only text box feeds Loki panels): grafana/grafana
    // public/app/plugins/datasource/loki/datasource.ts interpolateQueryExpr escapes a value only
    // for a multi-value or All variable.
    out[name] =
      r.spec.multi === undefined && r.spec.includeAll === undefined && "values" in sel
        ? (sel.values[0] ?? "")
        : formatVariable(r.spec, sel, r.options, dialect);
  }
  return out;
}

export interface Scenario {
  readonly name: string;
  readonly selection: Selections;
}

/** All, then each single value of `variable` (e.g. one host at a time) with the rest on All. */
export function scenarios(resolved: ReadonlyMap<string, ResolvedVariable>, variable: string): Scenario[] {
  const base = defaultSelection(resolved);
  const list: Scenario[] = [{ name: "All", selection: base }];
  const v = resolved.get(variable);
  for (const value of v?.options ?? []) {
    list.push({ name: `${variable}=${value}`, selection: new Map([...base, [variable, { values: [value] }]]) });
  }
  return list;
}

export interface TimeWindow {
  readonly fromMs: number;
  readonly toMs: number;
}

export interface ExpandedQuery {
  readonly expr: string;
  readonly intervalMs: number;
}

/** The query text Grafana sends for this panel target, time range and selection. */
export function expandQuery(
  q: PanelQuery,
  resolved: ReadonlyMap<string, ResolvedVariable>,
  selection: Selections,
  window: TimeWindow,
  scrapeIntervalMs: number,
): ExpandedQuery {
  const rangeMs = window.toMs - window.fromMs;
  // The Prometheus data source's timeInterval (the scrape interval) is the lowest step; Loki's has none.
  const minInterval = q.dialect === "prometheus" ? scrapeIntervalMs : 1;
  const intervalMs = grafanaInterval(rangeMs, q.widthPx, minInterval);
  const values = {
    ...macroValues({ intervalMs, rangeMs, scrapeIntervalMs }),
    ...expansionValues(resolved, selection, q.dialect),
  };
  return { expr: interpolate(q.expr, values), intervalMs };
}
