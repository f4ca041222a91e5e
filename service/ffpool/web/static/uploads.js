// Files in: the drop zone, and one row per upload while it is sent (progress and cancel).
import * as api from "./api.js";
import { formatBytes } from "./jobs.js";

// Dropped files become the file input's files, as if chosen in its dialog.
export function wireDropZone(zone, input, onFiles) {
  const over = (on) => (event) => {
    event.preventDefault();
    zone.classList.toggle("dragging", on);
  };
  zone.addEventListener("dragenter", over(true));
  zone.addEventListener("dragover", over(true));
  zone.addEventListener("dragleave", over(false));
  zone.addEventListener("drop", (event) => {
    over(false)(event);
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      onFiles(input.files);
    }
  });
}

// Sends one file, showing a row in `list` until it is stored (or cancelled, or refused).
// Resolves to the upload's id; rejects with api.Unauthorized, an AbortError or an Error.
// Focus on the row when it goes (its Cancel pressed) moves to `refocus`, not the page's top.
export function uploadWithRow(list, file, refocus) {
  const li = document.createElement("li");
  li.className = "upload";
  const name = document.createElement("span");
  name.textContent = `${file.name} (${formatBytes(file.size)})`;
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = 0;
  bar.setAttribute("aria-label", "Upload progress");
  const cancel = document.createElement("button");
  Object.assign(cancel, { type: "button", textContent: "Cancel upload" });
  li.append(name, " ", bar, " ", cancel);
  list.append(li);
  const { promise, abort } = api.upload(file, (part) => (bar.value = Math.round(part * 100)));
  cancel.addEventListener("click", abort);
  return promise.finally(() => {
    const hadFocus = li.contains(document.activeElement);
    li.remove();
    if (hadFocus && refocus) refocus.focus();
  });
}
