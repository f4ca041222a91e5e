// The page's wiring: sign-in, the connection, the job form, uploads and the jobs list.
import * as api from "./api.js";
import {
  OperationForm, inputKinds, inputSchema, problem, refusal, showProblem,
} from "./form.js";
import { JobList, formatBytes } from "./jobs.js";
import { uploadWithRow, wireDropZone } from "./uploads.js";

const $ = (id) => document.getElementById(id);
const RECONNECT_MS = [500, 1000, 2000, 5000];
const KIND_LABELS = { upload: "Upload a file", url: "From a URL", path: "A path on the server" };

const state = {
  config: null,
  schema: null,
  form: null,
  socket: null,
  retries: 0,
  requests: new Map(), // request_id → label of the job it submits
  nextRequest: 1,
  jobs: null,
  signedIn: false,
};

function announce(text) {
  $("status").textContent = text;
}

function showError(id, text) {
  $(id).textContent = text || "";
  $(id).hidden = !text;
}

function showConnection(text) {
  showError("connection", text);
}

async function showHealth() {
  try {
    const body = await api.health();
    const backend = body.stats ? body.stats.backend : "";
    $("health").textContent = `Service ${body.status}, backend ${backend}, version ${body.version}`;
    $("health").dataset.status = body.status;
  } catch {
    $("health").textContent = "Service unreachable";
    $("health").dataset.status = "unreachable";
  }
}

// ---- The connection --------------------------------------------------------------------

function send(message) {
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
    throw new Error("Not connected to the service; retrying…");
  }
  state.socket.send(JSON.stringify(message));
}

function onMessage(event) {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    return;
  }
  const label = state.requests.get(message.request_id);
  if (message.type === "accepted") {
    state.requests.delete(message.request_id);
    state.jobs.ensure(message.job_id, label);
  }
  if (state.jobs.handle(message)) return;
  if (message.type !== "error") return;
  state.requests.delete(message.request_id);
  if (message.code === "unauthorized") return signOut("Token refused");
  if (message.code === "unknown_job" && message.job_id) {
    state.jobs.forget(message.job_id);
    announce(`Job ${String(message.job_id).slice(0, 8)} is no longer known to the service`);
  } else {
    showError("form-error", refusal(message, label));
  }
}

async function connect() {
  let socket;
  try {
    socket = await api.openSocket(state.config);
  } catch (error) {
    if (error instanceof api.Unauthorized) return signOut("Token refused");
    return reconnectLater();
  }
  state.socket = socket;
  socket.addEventListener("open", () => {
    state.retries = 0;
    showConnection("");
    showError("page-error", "");
    // This tab's jobs (after a reload or a dropped connection): current state, then events.
    for (const id of state.jobs.ids()) send({ type: "subscribe", job_id: id });
  });
  socket.addEventListener("message", onMessage);
  socket.addEventListener("close", () => {
    if (state.socket === socket) reconnectLater();
  });
}

// Back-off between tries; each try fetches a fresh ticket (they are single-use), and the
// socket's "open" subscribes again to this tab's jobs.
function reconnectLater() {
  state.socket = null;
  if (!state.signedIn) return;
  const delay = RECONNECT_MS[Math.min(state.retries, RECONNECT_MS.length - 1)];
  state.retries += 1;
  // Submits sent on the lost socket will never be answered there.
  state.requests.clear();
  showConnection("Connection to the service lost. Reconnecting…");
  setTimeout(() => {
    if (state.signedIn && !state.socket) connect();
  }, delay);
}

// ---- Sign-in ---------------------------------------------------------------------------

async function start() {
  try {
    state.schema = await api.schema();
  } catch (error) {
    if (error instanceof api.Unauthorized) return signOut("Token refused");
    return showError("page-error", `The service did not answer: ${error.message}`);
  }
  state.signedIn = true;
  $("sign-in").hidden = true;
  $("workspace").hidden = false;
  $("sign-out").hidden = !state.config.auth_required;
  state.form = new OperationForm($("operation-fields"), state.schema);
  buildInputKinds();
  await connect();
}

// Forgets the token and this tab's jobs (their names say what the last person worked on).
function signOut(error) {
  state.signedIn = false;
  api.setToken(null);
  state.jobs.clear();
  showConnection("");
  showError("form-error", "");
  if (state.socket) {
    const socket = state.socket;
    state.socket = null;
    socket.close();
  }
  $("workspace").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  showError("sign-in-error", error || "");
  $("token").focus();
}

async function onSignIn(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) return showError("sign-in-error", "Enter your API token.");
  api.setToken(value);
  $("token").value = "";
  showError("sign-in-error", "");
  await start(); // its first request (the schema) tells a refused token
  // Signed in: on to the form's first control, not left on a button that is now hidden.
  if (state.signedIn) document.querySelector('input[name="input-kind"]:checked')?.focus();
}

// ---- The job form ----------------------------------------------------------------------

function buildInputKinds() {
  const choices = $("input-kind-choices");
  choices.replaceChildren();
  // Uploads first (the common case), then the schema's other kinds in its order.
  const kinds = inputKinds(state.schema).sort((a, b) => (b === "upload") - (a === "upload"));
  for (const kind of kinds) {
    const label = document.createElement("label");
    const radio = document.createElement("input");
    Object.assign(radio, { type: "radio", name: "input-kind", value: kind });
    radio.checked = kind === "upload";
    radio.addEventListener("change", showInputPanel);
    label.append(radio, " ", KIND_LABELS[kind] || kind);
    choices.append(label);
  }
  showInputPanel();
}

function inputKind() {
  const checked = document.querySelector('input[name="input-kind"]:checked');
  return checked ? checked.value : "upload";
}

function showInputPanel() {
  for (const panel of document.querySelectorAll(".input-panel")) {
    panel.hidden = panel.dataset.kind !== inputKind();
  }
}

// The chosen input's check; returns the inputs to submit (files are uploaded first).
function checkInput() {
  const kind = inputKind();
  if (kind === "upload") {
    const files = [...$("file").files];
    const limit = state.config.max_upload_bytes;
    const big = files.find((f) => f.size > limit);
    let message = files.length ? "" : "Choose at least one file.";
    if (big) message = `${big.name} is larger than the ${formatBytes(limit)} upload limit.`;
    showProblem($("file"), $("file-error"), message);
    return message ? null : files.map((file) => ({ kind, file }));
  }
  const input = $(kind === "url" ? "input-url" : "input-path");
  const raw = input.value.trim();
  const message = problem(inputSchema(state.schema, kind), raw, true);
  showProblem(input, $(`${input.id}-error`), message);
  return message ? null : [{ kind, [kind]: raw }];
}

function submitJob(input, label) {
  const { operation, priority } = state.form.value();
  const requestId = String(state.nextRequest++);
  state.requests.set(requestId, label);
  send({ type: "submit", request_id: requestId, priority, job: { input, operation } });
}

async function onSubmit(event) {
  event.preventDefault();
  showError("form-error", "");
  const inputs = checkInput();
  const valid = state.form.validate() && inputs !== null;
  if (!valid) {
    if (inputs === null) document.querySelector('[aria-invalid="true"]')?.focus();
    return;
  }
  const op = state.form.select.value;
  try {
    for (const input of inputs) {
      if (input.kind === "upload") {
        uploadThenSubmit(input.file, `${op} ${input.file.name}`);
      } else {
        submitJob(input, `${op} ${input.url || input.path}`);
      }
    }
  } catch (error) {
    showError("form-error", error.message);
  }
}

function uploadThenSubmit(file, label) {
  announce(`Uploading ${file.name}`);
  uploadWithRow($("uploads"), file, $("file"))
    .then((uploadId) => submitJob({ kind: "upload", upload_id: uploadId }, label))
    .catch((error) => {
      if (error.name === "AbortError") return announce(`Upload of ${file.name} cancelled`);
      if (error instanceof api.Unauthorized) return signOut("Token refused");
      showError("form-error", `${file.name}: ${error.message}`);
    });
}

async function main() {
  state.jobs = new JobList($("jobs"), $("jobs-empty"), {
    announce,
    cancel: (jobId) => {
      try {
        send({ type: "cancel", job_id: jobId });
      } catch (error) {
        showError("form-error", error.message);
      }
    },
  });
  $("sign-in-form").addEventListener("submit", onSignIn);
  $("sign-out").addEventListener("click", () => signOut(""));
  $("job-form").addEventListener("submit", onSubmit);
  wireDropZone($("drop-zone"), $("file"), (files) => {
    showProblem($("file"), $("file-error"), "");
    announce(`${files.length} file(s) chosen`);
  });
  showHealth();
  try {
    state.config = await api.uiConfig();
  } catch (error) {
    return showError("page-error", `The service did not answer: ${error.message}`);
  }
  if (state.config.auth_required && !api.token()) return signOut("");
  await start();
}

main();
