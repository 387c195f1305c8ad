// The layout's parameters as the server declares them (GET layout/schema, from
// tensorboard_al_plugin/tsne/params.py): the form's defaults, each field's
// bounds, label and help, and which settings a running t-SNE takes live.
import type { LayoutForm } from "./state";

export interface ParamSpec {
  name: string;
  kind: "int" | "float" | "auto_or_float" | "choice";
  default: unknown;
  /** Bounds (null: none); "n_samples" is the number of points. */
  min: number | null;
  min_inclusive: boolean;
  max: number | "n_samples" | null;
  max_inclusive: boolean;
  choices: unknown[];
  /** null is a value (an empty seed: random). */
  nullable: boolean;
  /** A running t-SNE takes it without restarting. */
  live: boolean;
  scope: "estimator" | "session";
  methods: string[];
  label: string;
  help: string;
}

export interface LayoutSchema {
  params: ParamSpec[];
}

/**
 * Form fields whose default is the tab's own: the seed is 0 (a layout can be
 * repeated) where the engine's default is random, and the form's "method" is
 * the layout's (t-SNE or PCA), not the schema's t-SNE repulsion method.
 */
const TAB_CHOICES: ReadonlySet<string> = new Set(["random_state", "method"]);

export function specOf(schema: LayoutSchema | null, name: string): ParamSpec | undefined {
  return schema?.params.find((p) => p.name === name);
}

/** The form fields a running t-SNE takes without restarting (none until the schema is known). */
export function liveParams(schema: LayoutSchema | null, form: LayoutForm): (keyof LayoutForm)[] {
  if (!schema) return [];
  return schema.params.filter((p) => p.live && p.name in form).map((p) => p.name as keyof LayoutForm);
}

/**
 * The form with the schema's defaults in every field still at the tab's
 * built-in default `builtIn` (a field the person or a running session set keeps
 * its value). Defaults of a kind the field cannot hold are ignored.
 */
export function formWithDefaults(form: LayoutForm, builtIn: LayoutForm, schema: LayoutSchema): LayoutForm {
  const out: Record<string, unknown> = { ...form };
  for (const p of schema.params) {
    const k = p.name as keyof LayoutForm;
    if (!(k in form) || TAB_CHOICES.has(p.name) || form[k] !== builtIn[k]) continue;
    const ok = typeof p.default === typeof builtIn[k] || (p.kind === "auto_or_float" && (p.default === "auto" || typeof p.default === "number"));
    if (ok) out[k] = p.default;
  }
  return out as unknown as LayoutForm;
}

/** A typed field value as the form holds it, or why it is refused (in the words of the spec). */
export function parseField(spec: ParamSpec | undefined, raw: string, rows = 0): { value: number | "auto" | null } | { error: string } {
  const text = raw.trim();
  if (spec?.kind === "auto_or_float" && (text === "" || text === "auto")) return { value: "auto" };
  if (spec?.nullable && text === "") return { value: null };
  const v = Number(text);
  if (text === "" || !Number.isFinite(v)) return { error: spec?.kind === "auto_or_float" ? "auto or a number" : "Not a valid number" };
  if (!spec) return { value: v };
  if (spec.kind === "int" && !Number.isInteger(v)) return { error: "A whole number" };
  if (spec.min !== null && (v < spec.min || (v === spec.min && !spec.min_inclusive))) return { error: `A number ${spec.min_inclusive ? ">=" : ">"} ${spec.min}` };
  const max = spec.max === "n_samples" ? (rows > 0 ? rows : null) : spec.max;
  if (max !== null && (v > max || (v === max && !spec.max_inclusive))) return { error: `A number ${spec.max_inclusive ? "<=" : "<"} ${max}` };
  return { value: v };
}
