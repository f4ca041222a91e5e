// The operation form, generated from the protocol's JSON Schema (GET /schema/protocol.json):
// one <select> of operations, then one field per option of the chosen operation. A new
// operation or option in the schema appears here with no change to the page.

import { structure, structureHint, structureProblem, structureValue } from "./structured.js";

const ref = (root, node) =>
  node && node.$ref ? root.$defs[node.$ref.split("/").pop()] : node;

// A pydantic optional field is anyOf [the type, null]: the type, allowed empty.
function resolve(root, node) {
  const options = node.anyOf || node.oneOf;
  if (options) {
    const real = options.filter((o) => o.type !== "null");
    if (real.length === 1) return { ...node, ...ref(root, real[0]), nullable: true };
  }
  // A property's own default and description win over its referenced definition's.
  return node.$ref ? { ...ref(root, node), ...node } : node;
}

// An option with a list's items resolved too (a ladder's formats are a list of an enum).
function resolveOption(root, node) {
  const schema = resolve(root, node);
  return schema.type === "array" && schema.items
    ? { ...schema, items: resolve(root, schema.items) }
    : schema;
}

function describe(schema) {
  const parts = [];
  if (schema.description) parts.push(schema.description);
  if (structure(schema)) parts.push(structureHint(schema));
  const lo = schema.minimum ?? schema.exclusiveMinimum;
  if (lo !== undefined || schema.maximum !== undefined) {
    parts.push(`${lo ?? "…"}–${schema.maximum ?? "…"}`);
  }
  if (schema.default !== undefined && schema.default !== null) {
    const value = Array.isArray(schema.default) ? schema.default.join(", ") : schema.default;
    parts.push(`default ${value}`);
  }
  return parts.join("; ");
}

const humanize = (name) => name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

// The message for a value against its schema, or "" when it is fine.
export function problem(schema, raw, required) {
  if (raw === "") return required ? "Required." : "";
  if (structure(schema)) return structureProblem(schema, raw, (s, v) => problem(s, v, true));
  if (schema.enum) return schema.enum.includes(raw) ? "" : "Choose one of the listed values.";
  if (schema.type === "integer" || schema.type === "number") {
    const value = Number(raw);
    if (!Number.isFinite(value)) return "Enter a number.";
    if (schema.type === "integer" && !Number.isInteger(value)) return "Enter a whole number.";
    if (schema.minimum !== undefined && value < schema.minimum) {
      return `Must be at least ${schema.minimum}.`;
    }
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) {
      return `Must be more than ${schema.exclusiveMinimum}.`;
    }
    if (schema.maximum !== undefined && value > schema.maximum) {
      return `Must be at most ${schema.maximum}.`;
    }
    return "";
  }
  if (schema.minLength !== undefined && raw.length < schema.minLength) return "Too short.";
  if (schema.maxLength !== undefined && raw.length > schema.maxLength) {
    return `At most ${schema.maxLength} characters.`;
  }
  if (schema.pattern && !new RegExp(schema.pattern).test(raw)) return "Not in the expected form.";
  return "";
}

// A refused submit in words; the protocol's code and message follow in brackets.
const ERROR_WORDS = {
  queue_full: "The service's queue is full: try again in a while.",
  too_many_jobs: "You have as many jobs queued or running as you may: wait for one to end.",
  quota_exceeded: "Your storage quota is used up: let older outputs expire first.",
  rate_limited: "Too many submits at once: try again in a moment.",
  busy: "The service is busy: try again in a moment.",
  backend_unavailable: "The service cannot take jobs right now: try again shortly.",
  invalid_job: "The service refused this job.",
};

// The form's line for an `error` answering a submit (label: the job it was for, if known).
export function refusal(message, label) {
  const words = ERROR_WORDS[message.code];
  const detail = `${message.code}: ${message.message}`;
  return `${label ? label + ": " : ""}${words ? `${words} (${detail})` : detail}`;
}

export function showProblem(input, errorEl, message) {
  errorEl.textContent = message;
  errorEl.hidden = !message;
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

// A field: label, control, hint and error, wired by ids for assistive technology.
function field(name, schema, required, prefix) {
  const id = `${prefix}-${name}`;
  const wrap = document.createElement("div");
  wrap.className = "field";
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = (schema.title && !schema.enum ? schema.title : humanize(name)) +
    (required ? " (required)" : "");
  let control;
  if (schema.enum) {
    control = document.createElement("select");
    if (schema.nullable || (!required && schema.default === undefined)) control.add(new Option("", ""));
    for (const value of schema.enum) control.add(new Option(value, value));
    if (schema.default !== undefined && schema.default !== null) control.value = schema.default;
  } else {
    control = document.createElement("input");
    const numeric = schema.type === "integer" || schema.type === "number";
    control.type = numeric ? "number" : "text";
    if (numeric) {
      control.step = schema.type === "integer" ? "1" : "any";
      control.inputMode = schema.type === "integer" ? "numeric" : "decimal";
      if (schema.minimum !== undefined) control.min = schema.minimum;
      if (schema.maximum !== undefined) control.max = schema.maximum;
    }
    if (schema.default !== undefined && schema.default !== null) {
      control.placeholder = [].concat(schema.default).join(", ");
    }
  }
  control.id = id;
  control.name = name;
  const hint = document.createElement("p");
  hint.id = `${id}-hint`;
  hint.className = "hint";
  hint.textContent = describe(schema);
  const error = document.createElement("p");
  error.id = `${id}-error`;
  error.className = "field-error";
  error.hidden = true;
  control.setAttribute("aria-describedby", `${hint.id} ${error.id}`);
  wrap.append(label, control, hint, error);
  return { name, schema, required, control, error, wrap };
}

// Operations by name (as the protocol spells them) → their fields' schemas.
export function operations(root) {
  const union = root.$defs.JobSpec.properties.operation;
  const result = new Map();
  for (const option of union.oneOf) {
    const def = ref(root, option);
    const name = def.properties.op.const;
    const fields = Object.entries(def.properties)
      .filter(([key]) => key !== "op")
      .map(([key, node]) => [key, resolveOption(root, node), (def.required || []).includes(key)]);
    result.set(name, fields);
  }
  return result;
}

export function inputKinds(root) {
  return Object.keys(root.$defs.JobSpec.properties.input.discriminator.mapping);
}

export function inputSchema(root, kind) {
  const def = root.$defs[root.$defs.JobSpec.properties.input.discriminator.mapping[kind]
    .split("/").pop()];
  return def.properties[kind === "url" ? "url" : "path"];
}

export class OperationForm {
  constructor(container, root) {
    this.container = container;
    this.operations = operations(root);
    this.priority = resolve(root, root.$defs.Submit.properties.priority);
    this.fields = [];
    container.replaceChildren();
    const picker = field("operation", { enum: [...this.operations.keys()] }, true, "job");
    picker.control.id = "operation";
    picker.wrap.querySelector("label").htmlFor = "operation";
    picker.wrap.querySelector("label").textContent = "Operation";
    picker.control.setAttribute("aria-describedby", picker.error.id);
    picker.wrap.querySelector(".hint").remove();
    this.select = picker.control;
    this.options = document.createElement("div");
    this.options.className = "options";
    const priority = field("priority", this.priority, false, "job");
    this.priorityField = priority;
    container.append(picker.wrap, this.options, priority.wrap);
    this.select.addEventListener("change", () => this.render());
    this.render();
  }

  render() {
    const spec = this.operations.get(this.select.value) || [];
    this.fields = spec.map(([name, schema, required]) => field(name, schema, required, "op"));
    this.options.replaceChildren(...this.fields.map((f) => f.wrap));
    for (const f of [...this.fields, this.priorityField]) {
      f.control.addEventListener("change", () => this.check(f));
      // A shown error goes as soon as the value is right, not on blur: hiding it on blur
      // would move the Submit button under a pointer that is pressing it.
      f.control.addEventListener("input", () => {
        if (f.control.getAttribute("aria-invalid")) this.check(f);
      });
    }
  }

  check(f) {
    const message = problem(f.schema, f.control.value.trim(), f.required);
    showProblem(f.control, f.error, message);
    return message === "";
  }

  // Every field checked; the first wrong one focused. Returns whether all are fine.
  validate() {
    const bad = [...this.fields, this.priorityField].filter((f) => !this.check(f));
    if (bad.length) bad[0].control.focus();
    return bad.length === 0;
  }

  // { operation, priority } as the protocol wants them; empty fields are left to defaults.
  value() {
    const operation = { op: this.select.value };
    for (const f of this.fields) {
      const raw = f.control.value.trim();
      if (raw === "") continue;
      const numeric = f.schema.type === "integer" || f.schema.type === "number";
      if (structure(f.schema)) operation[f.name] = structureValue(f.schema, raw);
      else operation[f.name] = numeric ? Number(raw) : raw;
    }
    const priority = this.priorityField.control.value.trim();
    return { operation, priority: priority === "" ? 0 : Number(priority) };
  }
}
