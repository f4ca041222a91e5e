// The service's APIs as the page uses them: HTTP with the token, uploads, tickets, WebSocket.
// The token lives in sessionStorage (this tab only) and travels only in the Authorization
// header: never in a URL, where logs and the Referer header would keep it.

const TOKEN_KEY = "ffpool.token";
const SUBPROTOCOL = "ffpool.v1";
const TICKET_PREFIX = "ffpool.ticket.";

export class Unauthorized extends Error {}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function authHeaders() {
  const value = token();
  return value ? { Authorization: "Bearer " + value } : {};
}

async function request(method, path, { auth = true } = {}) {
  const response = await fetch(path, {
    method,
    headers: auth ? authHeaders() : {},
    cache: "no-store",
    credentials: "omit",
  });
  if (response.status === 401) throw new Unauthorized("Token refused");
  return response;
}

async function json(method, path, options) {
  const response = await request(method, path, options);
  if (!response.ok && response.status !== 503) {
    throw new Error(`${method} ${path} answered ${response.status}`);
  }
  return response.json();
}

export const uiConfig = () => json("GET", "/ui/config.json", { auth: false });
// 503 still has a body: the service is up but its backend is not healthy.
export const health = () => json("GET", "/health", { auth: false });
export const schema = () => json("GET", "/schema/protocol.json");
export const ticket = async () => (await json("POST", "/auth/ticket")).ticket;

// Direct access (the page on the HTTP port): the WebSocket is on its own port of the same
// host. Any other port (80/443 through an Ingress, a proxy): the same origin's path.
export function socketUrl(config, where = window.location) {
  const scheme = where.protocol === "https:" ? "wss:" : "ws:";
  const port = where.port || (where.protocol === "https:" ? "443" : "80");
  if (port === String(config.http_port)) {
    return `${scheme}//${where.hostname}:${config.ws_port}${config.ws_path}`;
  }
  return `${scheme}//${where.host}${config.ws_path}`;
}

// Browsers cannot set headers on a WebSocket: a signed-in page fetches a single-use ticket
// and offers it as a second subprotocol (the server selects only "ffpool.v1").
export async function openSocket(config) {
  const protocols = [SUBPROTOCOL];
  if (config.auth_required) protocols.push(TICKET_PREFIX + (await ticket()));
  return new WebSocket(socketUrl(config), protocols);
}

// XMLHttpRequest rather than fetch: it reports upload progress, and abort() cancels.
// Returns { promise, abort }; the promise resolves to the upload's id.
export function upload(file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", "/uploads");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // A proxy's HTML error page: the status says enough.
      }
      if (xhr.status === 201) resolve(body.upload_id);
      else if (xhr.status === 401) reject(new Unauthorized("Token refused"));
      else reject(new Error(body.message || `upload answered ${xhr.status}`));
    });
    xhr.addEventListener("error", () => reject(new Error("the upload could not be sent")));
    xhr.addEventListener("abort", () => reject(new DOMException("cancelled", "AbortError")));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}
