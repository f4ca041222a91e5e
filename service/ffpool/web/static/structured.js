// Options that are lists or objects in the protocol's schema (a ladder's formats, bitrates,
// renditions; chunking): one text field each, since the form has one control per option.
// A list of plain values is typed comma-separated ("hls, dash"); a list of objects or an
// object is typed as JSON, its keys named in the field's hint.

const scalar = (schema) =>
  Boolean(schema) && (schema.enum !== undefined ||
    ["integer", "number", "string"].includes(schema.type));

// "list" (comma-separated), "json", or null (a plain value: the form's own handling).
export function structure(schema) {
  if (schema.type === "array") return scalar(schema.items) ? "list" : "json";
  if (schema.type === "object") return "json";
  return null;
}

function keys(schema) {
  const props = Object.keys(schema.properties || {});
  const required = new Set(schema.required || []);
  return props.map((k) => (required.has(k) ? `${k} (required)` : k)).join(", ");
}

export function structureHint(schema) {
  const kind = structure(schema);
  if (kind === "list") {
    const items = schema.items.enum ? `: ${schema.items.enum.join(", ")}` : "";
    return `Comma-separated${items}`;
  }
  if (kind !== "json") return "";
  if (schema.type === "object") return `JSON: an object with ${keys(schema)}`;
  return `JSON: a list of objects with ${keys(schema.items || {})}`;
}

function splitList(raw) {
  return raw.split(",").map((part) => part.trim()).filter((part) => part !== "");
}

function countProblem(schema, n) {
  if (schema.minItems !== undefined && n < schema.minItems) {
    return `At least ${schema.minItems} item(s).`;
  }
  if (schema.maxItems !== undefined && n > schema.maxItems) {
    return `At most ${schema.maxItems} item(s).`;
  }
  return "";
}

// The message for a non-empty value, or "" when it is fine; `check(schema, raw)` checks one
// plain value (the form's own `problem`). Keys and values inside JSON are the server's to
// check: its refusal says which one is wrong.
export function structureProblem(schema, raw, check) {
  if (structure(schema) === "list") {
    const parts = splitList(raw);
    for (const part of parts) {
      const message = check(schema.items, part);
      if (message) return `${part}: ${message}`;
    }
    if (new Set(parts).size !== parts.length) return "Each value once.";
    return countProblem(schema, parts.length);
  }
  let value;
  try {
    value = JSON.parse(raw);
  } catch {
    return "Not valid JSON.";
  }
  if (schema.type === "object") {
    const isObject = value !== null && typeof value === "object" && !Array.isArray(value);
    return isObject ? "" : "Enter a JSON object: {…}.";
  }
  if (!Array.isArray(value)) return "Enter a JSON list: […].";
  return countProblem(schema, value.length);
}

export function structureValue(schema, raw) {
  if (structure(schema) !== "list") return JSON.parse(raw);
  const numeric = ["integer", "number"].includes(schema.items.type);
  return splitList(raw).map((part) => (numeric ? Number(part) : part));
}
