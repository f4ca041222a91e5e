// The jobs list: one <li data-job-id> per job, updated from the protocol's events. The state
// is always a word (class job-state), so colour is never the only signal.

import { downloadName, el, fileLine, formatBytes, safeUrl } from "./links.js";
import { isPackage, packageView } from "./player.js";

export { downloadName, formatBytes, safeUrl };

const JOBS_KEY = "ffpool.jobs";
const FINAL = new Set(["completed", "failed", "cancelled"]);
const MILESTONES = [25, 50, 75];

// The jobs of this tab, kept so a reload can subscribe to them again.
export function savedJobs() {
  try {
    return JSON.parse(sessionStorage.getItem(JOBS_KEY) || "[]");
  } catch {
    return [];
  }
}

function saveJobs(jobs) {
  sessionStorage.setItem(JOBS_KEY, JSON.stringify(jobs));
}

function outputView(output) {
  const item = el("div", "output");
  const type = String(output.content_type || "");
  const url = safeUrl(output.url);
  let media = null;
  if (type.startsWith("video/")) media = el("video");
  else if (type.startsWith("audio/")) media = el("audio");
  else if (type.startsWith("image/")) {
    media = el("img");
    media.alt = output.name;
  }
  if (media && url) {
    if (media.tagName !== "IMG") {
      media.controls = true;
      media.preload = "metadata";
    }
    media.src = url;
    item.append(media);
  }
  item.append(fileLine(output));
  return item;
}

export class JobList {
  // announce(text): the status region; cancel(jobId): sends the protocol's cancel.
  constructor(list, empty, { announce, cancel }) {
    this.list = list;
    this.empty = empty;
    this.announce = announce;
    this.cancel = cancel;
    this.items = new Map();
    this.jobs = savedJobs();
  }

  ids() {
    return this.jobs.map((job) => job.id);
  }

  unfinished() {
    return [...this.items.values()].filter((v) => !FINAL.has(v.state)).map((v) => v.id);
  }

  // A job's row, made on first sight (a new job, or one of this tab's after a reload).
  ensure(id, label) {
    if (this.items.has(id)) return this.items.get(id);
    const saved = this.jobs.find((job) => job.id === id);
    if (saved) label = label || saved.label;
    else {
      this.jobs.push({ id, label });
      saveJobs(this.jobs);
    }
    const li = el("li", "job");
    li.dataset.jobId = id;
    const head = el("p", "job-head");
    const title = el("span", "job-title", label || `Job ${String(id).slice(0, 8)}`);
    title.tabIndex = -1; // focusable by script only, for when its Cancel button goes
    const state = el("span", "job-state", "queued");
    head.append(title, " ", state);
    const progress = el("progress");
    progress.max = 100;
    progress.value = 0; // without a value a <progress> is "indeterminate" and animates
    progress.setAttribute("aria-label", "Progress");
    progress.id = `progress-${id}`;
    const percent = el("span", "job-percent", "0%");
    const detail = el("span", "job-detail");
    const meter = el("p", "job-progress");
    meter.append(progress, " ", percent, " ", detail);
    const cancel = el("button", "job-cancel", "Cancel");
    cancel.type = "button";
    cancel.addEventListener("click", () => this.cancel(id));
    const result = el("div", "job-result");
    li.append(head, meter, cancel, result);
    this.list.prepend(li);
    this.empty.hidden = true;
    const view = { id, label: title.textContent, li, title, state: "", progress, percent,
      detail, cancel, result, milestone: 0 };
    this.items.set(id, view);
    return view;
  }

  setState(id, state) {
    const view = this.ensure(id);
    if (view.state === state) return;
    view.state = state;
    view.li.querySelector(".job-state").textContent = state;
    view.li.dataset.state = state;
    // A Cancel button that had focus goes away: focus the job's title, not the page's top.
    if (FINAL.has(state) && document.activeElement === view.cancel) view.title.focus();
    view.cancel.hidden = FINAL.has(state);
    if (FINAL.has(state)) view.detail.textContent = "";
    this.announce(`${view.label}: ${state}`);
  }

  progress(event) {
    const view = this.ensure(event.job_id);
    if (view.state !== "running") this.setState(event.job_id, "running");
    if (typeof event.percent === "number") {
      const pct = Math.floor(event.percent);
      view.progress.value = event.percent;
      view.percent.textContent = `${pct}%`;
      const reached = MILESTONES.filter((m) => pct >= m && m > view.milestone).pop();
      if (reached) {
        view.milestone = reached;
        this.announce(`${view.label}: ${reached}%`);
      }
    }
    const parts = [];
    if (typeof event.speed === "number") parts.push(`${event.speed.toFixed(1)}×`);
    if (typeof event.eta_s === "number") parts.push(`ETA ${Math.ceil(event.eta_s)} s`);
    view.detail.textContent = parts.join(", ");
  }

  completed(event) {
    const view = this.ensure(event.job_id);
    view.progress.value = 100;
    view.percent.textContent = "100%";
    // Not a nested list: a job is the only <li> in the jobs list.
    const outputs = el("div", "outputs");
    outputs.setAttribute("role", "group");
    outputs.setAttribute("aria-label", "Outputs");
    const files = event.outputs || [];
    // A ladder's package is one player and a list of files, not a player per segment.
    if (isPackage(files)) outputs.append(packageView(files, view.label));
    else outputs.append(...files.map(outputView));
    const parts = [outputs];
    if (event.metadata) {
      const details = el("details", "metadata");
      details.append(el("summary", "", "Media information"),
        el("pre", "", JSON.stringify(event.metadata, null, 2)));
      parts.push(details);
    }
    view.result.replaceChildren(...parts);
    this.setState(event.job_id, "completed");
  }

  failed(event) {
    const view = this.ensure(event.job_id);
    const message = el("p", "job-failure", `${event.code}: ${event.message}`);
    const parts = [message];
    if (event.stderr_tail) {
      const details = el("details", "stderr");
      details.append(el("summary", "", "FFmpeg's last lines"), el("pre", "", event.stderr_tail));
      parts.push(details);
    }
    view.result.replaceChildren(...parts);
    this.setState(event.job_id, "failed");
  }

  cancelled(event) {
    const view = this.ensure(event.job_id);
    view.result.replaceChildren(el("p", "job-failure", event.reason || "cancelled"));
    this.setState(event.job_id, "cancelled");
  }

  // The server no longer knows the job (forgotten, or another tenant's): drop it.
  forget(id) {
    const view = this.items.get(id);
    if (view) {
      view.li.remove();
      this.items.delete(id);
    }
    this.jobs = this.jobs.filter((job) => job.id !== id);
    saveJobs(this.jobs);
    this.empty.hidden = this.items.size > 0;
  }

  // Every job of this tab gone, saved ones too (on sign-out).
  clear() {
    this.list.replaceChildren();
    this.items.clear();
    this.jobs = [];
    saveJobs(this.jobs);
    this.empty.hidden = false;
  }

  // One server → client message; returns whether it was about a job.
  handle(message) {
    switch (message.type) {
      case "accepted":
      case "state":
        this.setState(message.job_id, message.state);
        return true;
      case "progress":
        this.progress(message);
        return true;
      case "completed":
        this.completed(message);
        return true;
      case "failed":
        this.failed(message);
        return true;
      case "cancelled":
        this.cancelled(message);
        return true;
      default:
        return false;
    }
  }
}
