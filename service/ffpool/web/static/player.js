// A ladder's package (docs/web.md, "Ladders"): its master playlist in one <video>, played by
// the browser itself where it plays HLS, else by the vendored hls.js (loaded only then); its
// renditions read from the playlist; its files as links. A DASH manifest is a link only: the
// page carries no DASH player.

import { el, fileLine, formatBytes, safeUrl } from "./links.js";

export const MASTER = "master.m3u8";
export const MANIFEST = "manifest.mpd";
const HLS_TYPE = "application/vnd.apple.mpegurl";
const FETCH_MS = 10_000;

export function isPackage(outputs) {
  return outputs.some((o) => o.name === MASTER || o.name === MANIFEST);
}

// A playlist tag's attribute list (RFC 8216, 4.2): KEY=value or KEY="quoted, value".
export function tagAttributes(text) {
  const attrs = {};
  for (const m of String(text).matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) {
    attrs[m[1]] = m[2].replace(/^"|"$/g, "");
  }
  return attrs;
}

// The variant streams of a master playlist, lowest bandwidth first.
export function renditions(text) {
  const found = [];
  for (const line of String(text).split(/\r?\n/)) {
    if (!line.startsWith("#EXT-X-STREAM-INF:")) continue;
    const attrs = tagAttributes(line.slice(line.indexOf(":") + 1));
    const [width, height] = (attrs.RESOLUTION || "").split("x").map(Number);
    found.push({
      width: width || null,
      height: height || null,
      bandwidth: Number(attrs.BANDWIDTH) || null,
    });
  }
  return found.sort((a, b) => (a.bandwidth || 0) - (b.bandwidth || 0));
}

export function formatBitrate(bps) {
  if (!bps) return "unknown";
  if (bps >= 1_000_000) return `${(bps / 1_000_000).toFixed(1)} Mb/s`;
  return `${Math.round(bps / 1000)} kb/s`;
}

function renditionTable(rows) {
  const table = el("table", "renditions");
  table.append(el("caption", "", "Renditions"));
  const head = el("tr");
  for (const name of ["Resolution", "Bitrate"]) {
    const th = el("th", "", name);
    th.scope = "col";
    head.append(th);
  }
  const thead = el("thead");
  thead.append(head);
  const body = el("tbody");
  for (const r of rows) {
    const tr = el("tr");
    const size = r.width && r.height ? `${r.width}×${r.height}` : "audio only";
    tr.append(el("td", "", size), el("td", "", formatBitrate(r.bandwidth)));
    body.append(tr);
  }
  table.append(thead, body);
  return table;
}

// The renditions under the player, once the playlist is read; nothing if it cannot be.
async function showRenditions(url, box) {
  try {
    const resp = await fetch(url, { credentials: "omit", signal: AbortSignal.timeout(FETCH_MS) });
    if (!resp.ok) return;
    const rows = renditions(await resp.text());
    if (rows.length) box.replaceChildren(renditionTable(rows));
  } catch {
    // The table is a convenience: the player and the files still work without it.
  }
}

async function playWithHlsJs(video, url, say) {
  const { default: Hls } = await import("./hls.min.mjs");
  if (!Hls.isSupported()) {
    say("This browser can play neither HLS nor Media Source Extensions: download the files.");
    return;
  }
  video.dataset.player = "hls.js";
  // No worker: hls.js would start it from a blob: URL, which the page's CSP refuses (workers
  // fall back to script-src 'self'). fMP4 needs no transmuxing; TS is remuxed on this thread.
  // Segments load from the first "play", not for every package the list shows.
  const hls = new Hls({ enableWorker: false, autoStartLoad: false });
  hls.on(Hls.Events.ERROR, (_, data) => {
    if (!data.fatal) return;
    say(`Playback failed (${data.type}: ${data.details}).`);
    hls.destroy();
  });
  let parsed = false;
  let wanted = false;
  const start = () => {
    if (parsed && wanted) hls.startLoad();
  };
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    parsed = true;
    start();
  });
  video.addEventListener("play", () => {
    wanted = true;
    start();
  }, { once: true });
  hls.loadSource(url);
  hls.attachMedia(video);
}

// The browser's own HLS where it says it has one; if that then refuses the stream before
// showing anything, hls.js takes over once.
function play(video, url, say) {
  const fallback = () => playWithHlsJs(video, url, say)
    .catch((error) => say(`The player did not load: ${error.message}`));
  if (!video.canPlayType(HLS_TYPE)) return fallback();
  video.dataset.player = "native";
  video.addEventListener(
    "error",
    () => {
      if (video.readyState > 0) return say("Playback failed.");
      video.removeAttribute("src");
      video.load();
      fallback();
    },
    { once: true },
  );
  video.src = url;
}

function playerView(url, label) {
  const figure = el("figure", "player");
  const video = el("video");
  video.controls = true;
  video.preload = "metadata";
  video.setAttribute("aria-label", `Adaptive stream: ${label}`);
  const caption = el("figcaption", "hint",
    "HLS, adaptive: the player picks the rendition the connection allows.");
  const message = el("p", "player-message job-failure");
  message.hidden = true;
  const say = (text) => {
    message.textContent = text;
    message.hidden = false;
  };
  const table = el("div", "renditions-box");
  figure.append(video, caption, message, table);
  play(video, url, say);
  showRenditions(url, table);
  return figure;
}

// The whole package: the player (with an HLS master), the DASH manifest's link, and every
// file behind a disclosure (a package has one per segment).
export function packageView(outputs, label) {
  const box = el("div", "package");
  const master = outputs.find((o) => o.name === MASTER);
  const masterUrl = master ? safeUrl(master.url) : null;
  if (masterUrl) box.append(playerView(masterUrl, label));
  else if (master) box.append(fileLine(master));
  const manifest = outputs.find((o) => o.name === MANIFEST);
  if (manifest) {
    box.append(el("p", "hint", "DASH manifest (for a DASH player; this page plays HLS only):"),
      fileLine(manifest));
  }
  const files = el("details", "package-files");
  const total = outputs.reduce((sum, o) => sum + (Number(o.size) || 0), 0);
  files.append(el("summary", "", `Package files (${outputs.length}, ${formatBytes(total)})`),
    ...outputs.map(fileLine));
  box.append(files);
  return box;
}
