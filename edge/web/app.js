// The dashboard: records arrive as server-sent events (id = the frame's sequence number); each one prompts a fetch of
// the newest picture, and its text is always the record of the picture shown (X-Frame-Seq says which one came back;
// the server keeps the frames it served, so that record and its snapshot can still be asked for by number).
"use strict";
const $ = (id) => document.getElementById(id);
const records = new Map(); // seq -> record, the last 64
let wanted = 0;
let shown = 0;
let loading = false;
let objectUrl = null;
let source = null;
let lastEvents = "";

function setStatus(live, text) {
  const s = $("status");
  s.dataset.state = live ? "live" : "down";
  s.textContent = text;
}

function connect() {
  source = new EventSource("events");
  source.addEventListener("open", () => {
    records.clear(); // a restarted service numbers its frames from 1 again
    shown = 0;
    setStatus(true, "live");
    refreshState();
  });
  source.addEventListener("frame", (e) => {
    const record = JSON.parse(e.data);
    records.set(record.seq, record);
    if (records.size > 64) records.delete(records.keys().next().value);
    wanted = record.seq;
    pump();
  });
  source.addEventListener("error", () => {
    setStatus(false, "disconnected: reconnecting…");
    if (source.readyState === EventSource.CLOSED) { // refused (503, 401): EventSource gives up, we do not
      source.close();
      fetch("api/state").then((r) => {
        if (r.status === 401) setStatus(false, "token required: open this page as /?token=… once");
      }).catch(() => {});
      setTimeout(connect, 2000);
    }
  });
}

async function pump() {
  if (loading || wanted === shown) return;
  loading = true;
  const seq = wanted;
  try {
    const answer = await fetch("frame.jpg"); // the newest: at an unpaced rate frame `seq` is gone by now
    if (answer.ok) {
      const got = Number(answer.headers.get("X-Frame-Seq"));
      let record = records.get(got);
      if (!record) {
        const r = await fetch(`prediction.json?seq=${got}`);
        if (r.ok) record = await r.json();
      }
      const url = URL.createObjectURL(await answer.blob());
      const img = $("view");
      await new Promise((done) => { img.onload = done; img.onerror = done; img.src = url; });
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = url;
      if (record) showRecord(record, got);
    }
  } catch (e) {
    // disconnected: the event stream says so and reconnects
  } finally {
    shown = seq;
    loading = false;
    if (wanted !== shown) setTimeout(pump, 0);
  }
}

function showRecord(r, seq) {
  $("view").dataset.seq = String(seq);
  $("label").textContent = r.label;
  $("confidence").textContent = `${(100 * r.confidence).toFixed(1)}%`;
  $("method-shown").textContent = r.method;
  $("frame").textContent = String(r.frame);
  $("time").textContent = r.time ? new Date(r.time).toLocaleTimeString() : "";
  $("time").dateTime = r.time || "";
  $("snapshot").href = `snapshot.zip?seq=${seq}`;
  showDrift(r.drift);
  const scored = r.faithfulness_latest; // [faithfulness]: the newest scores in (of an earlier frame)
  if (scored) {
    $("faithfulness").textContent = `heatmap faithfulness (frame ${scored.frame}): ${scoreText(scored)}`;
    $("faithfulness").hidden = false;
  }
  const entries = Object.entries(r.probabilities || {}).sort((a, b) => b[1] - a[1]).slice(0, 10);
  const bars = $("bars");
  bars.replaceChildren(...entries.map(([name, p]) => {
    const li = document.createElement("li");
    li.dataset.class = name;
    li.dataset.p = String(p);
    const label = document.createElement("span");
    label.textContent = name;
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = p;
    bar.setAttribute("aria-label", name);
    const value = document.createElement("span");
    value.textContent = `${(100 * p).toFixed(1)}%`;
    li.append(label, bar, value);
    if (name === r.label) li.classList.add("top");
    return li;
  }));
}

function option(value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  return o;
}

function applyState(state) {
  $("model").textContent = state.model || "";
  $("readonly").hidden = state.controls;
  $("control-form").hidden = !state.controls;
  if (!state.controls || !state.settings) return;
  const s = state.settings;
  const method = $("method");
  if (method.options.length !== state.methods.length) method.replaceChildren(...state.methods.map((m) => option(m, m)));
  method.value = s.method;
  const target = $("target");
  if (target.options.length !== state.classes.length + 1) {
    target.replaceChildren(option("", "auto (top-1)"), ...state.classes.map((c) => option(c, c)));
  }
  target.value = s.target || "";
  $("alpha").value = s.alpha;
  $("threshold").value = s.threshold;
  $("overlay").checked = s.overlay;
  $("pause").setAttribute("aria-pressed", String(s.paused));
  $("pause").textContent = s.paused ? "Resume" : "Pause";
}

async function refreshState() {
  try {
    const r = await fetch("api/state");
    if (r.ok) applyState(await r.json());
  } catch (e) { /* reconnecting */ }
}

async function change(settings) {
  const msg = $("control-msg");
  try {
    const r = await fetch("api/controls", {method: "POST", headers: {"Content-Type": "application/json"},
                                           body: JSON.stringify(settings)});
    if (r.ok) {
      applyState(await r.json());
      msg.textContent = "";
    } else {
      msg.textContent = `refused: ${(await r.text()).trim()}`;
    }
  } catch (e) {
    msg.textContent = "not applied: disconnected";
  }
}

function wireControls() {
  $("control-form").addEventListener("submit", (e) => e.preventDefault());
  $("method").addEventListener("change", (e) => change({method: e.target.value}));
  $("target").addEventListener("change", (e) => change({target: e.target.value || null}));
  $("alpha").addEventListener("change", (e) => change({alpha: Number(e.target.value)}));
  $("threshold").addEventListener("change", (e) => change({threshold: Number(e.target.value)}));
  $("overlay").addEventListener("change", (e) => change({overlay: e.target.checked}));
  $("pause").addEventListener("click", () => change({paused: $("pause").getAttribute("aria-pressed") !== "true"}));
}

async function refreshHealth() {
  try {
    const r = await fetch("api/health");
    if (!r.ok) return;
    const h = await r.json();
    const latency = Object.entries(h.latency_ms || {}).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ");
    const rows = [["fps", h.fps], ["dropped frames", h.dropped], ["latency (ms)", latency],
                  ["CPU temperature", h.cpu_temp_c === null ? "not reported" : `${h.cpu_temp_c} °C`],
                  ["throttling", h.throttled === undefined || h.throttled === null ? "not reported"
                    : (h.throttled_now.length ? h.throttled_now.join(", ") : "none")],
                  ["explaining", h.trigger === undefined ? undefined
                    : `${h.trigger}${h.explain_min_gap_s ? `, hot: one frame every ${h.explain_min_gap_s} s` : ""}`],
                  ["last explanation", h.last_explanation_age_s == null ? undefined : `${h.last_explanation_age_s} s ago`],
                  ["frames not explained", h.frames_skipped],
                  ["uptime", `${Math.floor(h.uptime_s / 3600)} h ${Math.floor(h.uptime_s / 60) % 60} min`],
                  ["model", h.model], ["bundle sha256", h.sha256], ["runtime", h.runtime],
                  ["TFLite threads", h.threads], ["CAM smoothing", h.cam_smoothing], ["viewers", h.viewers]];
    $("health").replaceChildren(...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v === undefined || v === null ? "–" : String(v);
      dd.dataset.key = k;
      return [dt, dd];
    }));
  } catch (e) { /* reconnecting */ }
}

function enlarge(event) {
  $("enlarge-title").textContent = `${event.label} ${(100 * event.confidence).toFixed(1)}% · frame ${event.frame}`;
  $("enlarge-frame").src = `event.jpg?id=${event.id}&kind=frame`;
  $("enlarge-overlay").src = `event.jpg?id=${event.id}&kind=overlay`;
  $("enlarge").showModal();
}

async function refreshEvents() {
  try {
    const r = await fetch("api/events");
    if (!r.ok) return;
    const events = await r.json();
    const key = events.map((e) => e.id).join(",");
    if (key === lastEvents) return;
    lastEvents = key;
    $("events").replaceChildren(...events.map((event) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      const img = document.createElement("img");
      img.src = `event.jpg?id=${event.id}&kind=overlay`;
      img.alt = `${event.label}, frame ${event.frame}`;
      img.loading = "lazy";
      const caption = document.createElement("span");
      caption.textContent = `${event.label} ${(100 * event.confidence).toFixed(0)}% · ` +
        (event.time ? new Date(event.time).toLocaleTimeString() : "");
      button.append(img, caption);
      button.addEventListener("click", () => enlarge(event));
      li.append(button);
      return li;
    }));
  } catch (e) { /* reconnecting */ }
}

function showDrift(d) { // [drift]: a banner while the monitor is in alert
  const banner = $("drift-banner");
  banner.hidden = !(d && d.state === "alert");
  if (banner.hidden) return;
  const what = d.kind === "input" ? "Input drift" : d.kind === "labels" ? "Label mix drift" : "Explanation drift";
  banner.textContent = `${what}${d.class ? ` (${d.class})` : ""}: ${d.cause || "cause unknown"}, ` +
    `distance ${Number(d.distance).toFixed(2)} of its threshold`;
}

async function refreshDrift() { // [drift]: per class the baseline's mean map beside the running one
  try {
    const r = await fetch("api/drift");
    $("drift-panel").hidden = !r.ok;
    if (!r.ok) return;
    const classes = (await r.json()).filter((c) => c.baseline_frames > 0 || c.frames > 0);
    $("drift-maps").replaceChildren(...classes.map((c) => {
      const pair = document.createElement("div");
      pair.className = "pair";
      for (const [map, when, frames] of [["baseline", "baseline", c.baseline_frames], ["current", "now", c.frames]]) {
        const slot = document.createElement("div");
        const label = document.createElement("span");
        label.textContent = `${when} (${frames} frames)`;
        if (map === "current" && c.frames === 0) {
          label.textContent = "not seen yet";
          label.className = "unseen";
          slot.append(label);
        } else {
          const img = document.createElement("img");
          img.src = `drift.png?class=${c.class}&map=${map}&n=${frames}`;
          img.alt = `mean heatmap of ${c.name}, ${when}`;
          img.dataset.map = map;
          slot.append(img, label);
        }
        pair.append(slot);
      }
      const caption = document.createElement("figcaption");
      caption.textContent = c.name + (c.frames > 0 ? `: distance ${c.distance.toFixed(2)} of its threshold` : "");
      const figure = document.createElement("figure");
      figure.append(caption, pair);
      const li = document.createElement("li");
      li.dataset.class = c.name;
      li.append(figure);
      return li;
    }));
  } catch (e) { /* reconnecting */ }
}

function scoreText(s) {
  const names = [["deletion_auc", "deletion"], ["insertion_auc", "insertion"], ["drop_in_confidence", "drop"]];
  return names.filter(([k]) => typeof s[k] === "number").map(([k, n]) => `${n} ${s[k].toFixed(3)}`).join(", ");
}

async function refreshHeatmaps() {
  try {
    const r = await fetch("api/heatmaps");
    if (!r.ok) return;
    const maps = (await r.json()).filter((m) => m.frames > 0);
    $("heatmaps").replaceChildren(...maps.map((m) => {
      const li = document.createElement("li");
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.src = `heatmap.png?class=${m.class}&n=${m.frames}`;
      img.alt = `mean heatmap of ${m.name}`;
      const caption = document.createElement("figcaption");
      caption.textContent = `${m.name} (${m.frames} frames)`;
      if (m.faithfulness) caption.textContent += ` · mean ${scoreText(m.faithfulness)} (${m.faithfulness.n} scored)`;
      figure.append(img, caption);
      li.append(figure);
      return li;
    }));
  } catch (e) { /* reconnecting */ }
}

wireControls();
connect();
refreshHealth();
refreshEvents();
refreshHeatmaps();
refreshDrift();
setInterval(refreshHealth, 2000);
setInterval(refreshEvents, 3000);
setInterval(refreshHeatmaps, 5000);
setInterval(refreshDrift, 5000);
setInterval(refreshState, 5000);
