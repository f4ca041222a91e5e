// Small helpers the jobs list and the player share: elements, sizes, and the only links the
// page will follow or offer (docs/web.md, "Security").

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function formatBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

// Only the server's own links, over http(s) (absolute or relative): never `javascript:`,
// `data:` or the like, whatever an event carries.
export function safeUrl(raw) {
  if (typeof raw !== "string" || raw === "") return null;
  try {
    const url = new URL(raw, window.location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

// A name for the `download` attribute: the last path part, without control characters (the
// browser sanitizes it too; this keeps a hostile name from even looking like a path).
export function downloadName(raw) {
  const name = String(raw || "").split(/[\\/]/).pop().replace(/[\u0000-\u001f\u007f]/g, "");
  return name.replace(/^\.+/, "") || "download";
}

// An output's line: its name, size and "Download" link (or why there is none).
export function fileLine(output) {
  const url = safeUrl(output.url);
  const line = el("p", "output-line");
  line.append(el("span", "output-name", output.name), ` (${formatBytes(output.size)}) `);
  if (url) {
    const link = el("a", "download", "Download");
    link.href = url;
    link.download = downloadName(output.name);
    line.append(link);
  } else {
    line.append(el("span", "output-refused", "(no safe download link)"));
  }
  return line;
}
