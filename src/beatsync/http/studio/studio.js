// beatsync studio: a creator's client of the public API (the same routes, auth and signed links a
// platform's web app uses). Everything from the server or the creator is shown with textContent or
// SVG attributes, never parsed as HTML. The API key lives in this tab's sessionStorage only.
"use strict";

(function () {
  const API = "/api/v1/beat-sync";
  const KEY_ITEM = "beatsync.apiKey";
  const SVG = "http://www.w3.org/2000/svg";
  const CLIP_COLOURS = ["#1565c0", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#8d4a00", "#4e342e", "#ad1457"];
  const SECTION_COLOURS = ["#dbe7f7", "#fde2c4", "#d8f0d8", "#f3d6e8", "#e6e0f5", "#fff3b0", "#d6f2f2"];
  const FIELDS = ["audio_url", "video_urls", "preset", "sync_mode", "transition_style", "fit", "output_resolution",
                  "output_format", "preview_duration"];
  const URL_LABELS = {
    output_url: "Video", preview_url: "Preview video", thumbnail_url: "Thumbnail (JPEG)",
    edl_url: "Edit decision list (JSON)", beat_map_url: "Beat map (JSON)", otio_url: "OpenTimelineIO timeline",
  };

  const $ = (id) => document.getElementById(id);
  const state = { presets: [], doc: null, jobId: null, timer: null, lastStep: "", song: null, grid: null,
                  drawn: null, clipNames: [] };

  // -- the API ---------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || null;
      this.field = null;
    }
  }

  function apiKey() {
    try { return sessionStorage.getItem(KEY_ITEM) || ""; } catch (e) { return ""; }
  }

  function authHeaders(extra) {
    const h = Object.assign({}, extra || {});
    const key = apiKey();
    if (key) h.Authorization = "Bearer " + key;
    return h;
  }

  function parseAnswer(status, text) {
    let doc = null;
    try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
    if (status >= 200 && status < 300) return doc;
    const err = doc && doc.error ? doc.error : { code: "http_" + status, message: "the server answered HTTP " + status };
    throw new ApiError(status, String(err.code || "error"), String(err.message || ""), err.details);
  }

  async function api(method, path, body) {
    const init = { method: method, headers: authHeaders(body === undefined ? {} : { "Content-Type": "application/json" }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "network_error", "the server could not be reached");
    }
    return parseAnswer(resp.status, await resp.text());
  }

  function uploadFile(file, onProgress) {
    return new Promise(function (resolve, reject) {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", API + "/uploads");
      const key = apiKey();
      if (key) xhr.setRequestHeader("Authorization", "Bearer " + key);
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = function () {
        try { resolve(parseAnswer(xhr.status, xhr.responseText)); } catch (e) { reject(e); }
      };
      xhr.onerror = function () { reject(new ApiError(0, "network_error", "the upload of " + file.name + " was interrupted")); };
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  }

  // -- errors next to their fields -------------------------------------------------------------

  function fieldOf(err) {
    if (err.field) return err.field;
    const d = err.details || {};
    let path = typeof d.field === "string" ? d.field : "";
    if (!path && Array.isArray(d.errors) && d.errors.length && typeof d.errors[0].path === "string") path = d.errors[0].path;
    const parts = path.split(".");
    const name = parts[0] === "config" && parts.length > 1 ? parts[1] : parts[0];
    return FIELDS.indexOf(name) >= 0 ? name : null;
  }

  function showError(where, message, code) {
    const box = $("err-" + where) || $("err-form");
    box.textContent = "";
    box.append(document.createTextNode(message + " "));
    if (code) {
      const c = document.createElement("span");
      c.className = "code";
      c.textContent = "(" + code + ")";
      box.append(c);
    }
    const input = document.querySelector("[aria-describedby~='err-" + where + "']");
    if (input) input.setAttribute("aria-invalid", "true");
  }

  function showApiError(err, fallback) {
    const where = fieldOf(err) || fallback || "form";
    // details.field "video_urls.N": the clip N+1 the creator gave
    const d = err.details || {};
    const clip = typeof d.field === "string" ? /^video_urls\.(\d+)$/.exec(d.field) : null;
    if (clip && !err.prefix) {
      const name = state.clipNames[Number(clip[1])];
      err.prefix = "clip " + (Number(clip[1]) + 1) + (name ? " (" + name + ")" : "");
    }
    const prefix = err.prefix ? err.prefix + ": " : "";
    showError(where, prefix + err.message, err.code);
  }

  function clearErrors() {
    document.querySelectorAll(".error").forEach(function (e) { e.textContent = ""; });
    document.querySelectorAll("[aria-invalid]").forEach(function (e) { e.removeAttribute("aria-invalid"); });
  }

  // -- start-up: the choice lists from the API -------------------------------------------------

  function option(value, text, title) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    if (title) o.title = title;
    return o;
  }

  function fillSelect(id, values, describe) {
    const sel = $(id);
    sel.textContent = "";
    sel.append(option("", "preset's"));
    values.forEach(function (v) { sel.append(option(v, v, describe ? describe(v) : "")); });
  }

  function schemaOf(doc, name) {
    return (doc && doc.components && doc.components.schemas && doc.components.schemas[name]) || {};
  }

  function fillChoices(presets, transitions, doc) {
    state.presets = presets.presets || [];
    const preset = $("preset");
    preset.textContent = "";
    preset.append(option("", "none: the service's defaults"));
    state.presets.forEach(function (p) { preset.append(option(p.name, p.name)); });
    if (state.presets.length) preset.value = state.presets[0].name;
    const trans = transitions.transitions || [];
    fillSelect("transition_style", trans.map(function (t) { return t.name; }), function (name) {
      const t = trans.find(function (x) { return x.name === name; });
      return t ? t.description : "";
    });
    fillSelect("sync_mode", schemaOf(doc, "SyncMode").enum || []);
    const fit = schemaOf(doc, "Fit");
    fillSelect("fit", fit.enum || []);
    $("fit-about").textContent = fit.description || "";
    fillSelect("output_format", schemaOf(doc, "OutputFormat").enum || []);
    const res = ((schemaOf(doc, "EditConfig").properties || {}).output_resolution) || {};
    const list = $("resolutions");
    list.textContent = "";
    (res.examples || []).forEach(function (r) { list.append(option(r, r)); });
    if (res.pattern) $("output_resolution").pattern = res.pattern.replace(/^\^|\$$/g, "");
    const pd = ((schemaOf(doc, "CreateRequest").properties || {}).preview_duration) || {};
    const dur = $("preview_duration");
    if (pd.minimum !== undefined) dur.min = pd.minimum;
    if (pd.maximum !== undefined) dur.max = pd.maximum;
    if (pd.default !== undefined) dur.value = pd.default;
    describePreset();
  }

  function describePreset() {
    const p = state.presets.find(function (x) { return x.name === $("preset").value; });
    $("preset-about").textContent = p ? p.description : "Each choice left at \"preset's\" takes the service's default.";
    const cfg = p ? p.config : {};
    ["sync_mode", "transition_style", "fit", "output_format"].forEach(function (id) {
      const first = $(id).options[0];
      first.textContent = cfg[id] !== undefined ? "preset's (" + cfg[id] + ")" : "default";
    });
    $("output_resolution").placeholder = cfg.output_resolution ? "preset's (" + cfg.output_resolution + ")" : "default";
  }

  async function load() {
    $("load-status").textContent = "Loading the choices from the API…";
    try {
      const answers = await Promise.all([api("GET", API + "/presets"), api("GET", API + "/transitions"),
                                         api("GET", "/openapi.json")]);
      fillChoices(answers[0], answers[1], answers[2]);
      $("key-section").hidden = true;
      $("job-form").hidden = false;
      $("load-status").textContent = "";
    } catch (err) {
      if (err.status === 401 || err.status === 403) {
        askForKey(apiKey() ? err : null);
        $("load-status").textContent = "";
        return;
      }
      $("load-status").textContent = "The API answered: " + err.message + " (" + err.code + ")";
    }
  }

  function askForKey(err) {
    if (err) {
      try { sessionStorage.removeItem(KEY_ITEM); } catch (e) { /* nothing kept */ }
    }
    $("job-form").hidden = true;
    $("key-section").hidden = false;
    if (err) showError("key", err.message, err.code);
    $("api-key").focus();
  }

  function saveKey(ev) {
    ev.preventDefault();
    clearErrors();
    const key = $("api-key").value.trim();
    if (!key) {
      showError("key", "type the API key the operator gave you", "missing");
      return;
    }
    try {
      sessionStorage.setItem(KEY_ITEM, key);
    } catch (e) {
      showError("key", "this browser does not allow session storage", "storage_unavailable");
      return;
    }
    $("api-key").value = "";
    load();
  }

  // -- a job -----------------------------------------------------------------------------------

  function buildRequest(audioUrl, videoUrls) {
    const body = { audio_url: audioUrl, video_urls: videoUrls };
    if ($("preset").value) body.preset = $("preset").value;
    const config = {};
    ["sync_mode", "transition_style", "fit", "output_format"].forEach(function (id) {
      if ($(id).value) config[id] = $(id).value;
    });
    const res = $("output_resolution").value.trim().replace(/[×X]/g, "x");
    if (res) config.output_resolution = res;
    if (Object.keys(config).length) body.config = config;
    if ($("preview_only").checked) {
      body.preview_only = true;
      const d = $("preview_duration").value;
      if (d !== "") body.preview_duration = Number(d);
    }
    return body;
  }

  function setBusy(busy) {
    $("start").disabled = busy;
    $("start").textContent = busy ? "Working…" : "Start";
  }

  function logStep(text) {
    $("step").textContent = text;
    const li = document.createElement("li");
    li.textContent = text;
    $("steps").append(li);
    $("steps").scrollTop = $("steps").scrollHeight;
  }

  async function start(ev) {
    ev.preventDefault();
    clearErrors();
    if (state.timer) clearTimeout(state.timer);
    const songFile = $("song-file").files[0] || null;
    const songUrl = $("song-url").value.trim();
    const clipFiles = Array.from($("clip-files").files);
    const clipUrls = $("clip-urls").value.split(/\s+/).filter(Boolean);
    let missing = false;
    if (!songFile && !songUrl) {
      showError("audio_url", "choose a song file or give its URL", "missing");
      missing = true;
    } else if (songFile && songUrl) {
      showError("audio_url", "choose a song file or give a URL, not both", "ambiguous");
      missing = true;
    }
    if (!clipFiles.length && !clipUrls.length) {
      showError("video_urls", "choose clip files or give their URLs", "missing");
      missing = true;
    }
    if (missing) return;
    setBusy(true);
    $("progress-section").hidden = false;
    $("result-section").hidden = true;
    $("grid-section").hidden = true;
    $("steps").textContent = "";
    $("progress").value = 0;
    $("cancel").hidden = true;
    state.lastStep = "";
    state.song = songFile;
    state.drawn = null;
    state.clipNames = clipFiles.map(function (f) { return f.name; }).concat(clipUrls);
    $("progress-section").scrollIntoView({ block: "nearest" });
    try {
      let audioUrl = songUrl;
      const total = (songFile ? 1 : 0) + clipFiles.length;
      let done = 0;
      const up = async function (file, field, prefix) {
        logStep("uploading " + file.name);
        try {
          const answer = await uploadFile(file, function (f) { $("progress").value = 5 * (done + f) / total; });
          done += 1;
          return answer.upload_url;
        } catch (err) {
          err.field = field;
          err.prefix = prefix;
          throw err;
        }
      };
      if (songFile) audioUrl = await up(songFile, "audio_url", "");
      const videoUrls = [];
      for (let i = 0; i < clipFiles.length; i++) {
        videoUrls.push(await up(clipFiles[i], "video_urls", "clip " + (i + 1)));
      }
      clipUrls.forEach(function (u) { videoUrls.push(u); });
      const accepted = await api("POST", API + "/create", buildRequest(audioUrl, videoUrls));
      state.jobId = accepted.job_id;
      $("cancel").hidden = false;
      logStep("queued" + (accepted.queue_position ? ", " + accepted.queue_position + " ahead" : "") +
              ", about " + Math.round(accepted.estimated_duration) + " s");
      poll();
    } catch (err) {
      if (err.status === 401) askForKey(err);
      showApiError(err, "form");
      $("step").textContent = "Not started.";
      setBusy(false);
    }
  }

  async function poll() {
    let doc;
    try {
      doc = await api("GET", API + "/create/" + encodeURIComponent(state.jobId));
    } catch (err) {
      if (err.status === 0 || err.status === 429 || err.status === 503) {
        state.timer = setTimeout(poll, 2000);
        return;
      }
      showApiError(err, "job");
      setBusy(false);
      return;
    }
    $("progress").value = doc.progress || 0;
    const step = doc.current_step + (doc.step_detail && doc.step_detail !== doc.current_step ? " (" + doc.step_detail + ")" : "");
    const text = step + ": " + Math.round(doc.progress || 0) + "%";
    if (step !== state.lastStep) {
      state.lastStep = step;
      logStep(text);
    } else {
      $("step").textContent = text;
    }
    if (doc.status === "completed") {
      $("cancel").hidden = true;
      setBusy(false);
      finished(doc);
    } else if (doc.status === "failed" || doc.status === "cancelled") {
      $("cancel").hidden = true;
      setBusy(false);
      const e = doc.error || { code: doc.status, message: "the job was " + doc.status };
      const err = new ApiError(200, e.code, e.message, e.details);
      showApiError(err, "job");
      if (fieldOf(err)) showError("job", e.message, e.code);
    } else {
      state.timer = setTimeout(poll, 1000);
    }
  }

  async function cancel() {
    if (!state.jobId) return;
    try {
      await api("DELETE", API + "/create/" + encodeURIComponent(state.jobId));
    } catch (err) {
      showApiError(err, "job");
    }
  }

  // -- the result ------------------------------------------------------------------------------

  function safeUrl(url) {
    try {
      const u = new URL(url, location.href);
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  function links(doc) {
    const seen = new Set();
    const out = [];
    [doc, doc.result || {}].forEach(function (obj) {
      Object.keys(obj).forEach(function (k) {
        if (!/_url$/.test(k) || k === "status_url" || typeof obj[k] !== "string") return;
        const url = safeUrl(obj[k]);
        if (!url || seen.has(url)) return;
        seen.add(url);
        out.push({ key: k, url: url });
      });
    });
    return out;
  }

  function finished(doc) {
    state.doc = doc;
    const video = $("video");
    const src = safeUrl(doc.output_url || doc.preview_url || "");
    if (src) video.src = src;
    $("result-section").hidden = false;
    const parts = [];
    if (typeof doc.duration === "number") parts.push(doc.duration.toFixed(1) + " s");
    if (typeof doc.total_cuts === "number") parts.push(doc.total_cuts + " cuts");
    if (typeof doc.file_size === "number") parts.push((doc.file_size / 1e6).toFixed(1) + " MB");
    if (doc.expires_at) parts.push("links valid until " + new Date(doc.expires_at).toLocaleString());
    $("summary").textContent = parts.join(" · ");
    const warnings = $("warnings");
    warnings.textContent = "";
    (doc.warnings || []).forEach(function (w) {
      const li = document.createElement("li");
      li.textContent = (w.message || "") + " (" + (w.code || "warning") + ")";
      warnings.append(li);
    });
    const list = $("downloads");
    list.textContent = "";
    links(doc).forEach(function (l) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = l.url;
      a.setAttribute("download", "");
      a.textContent = URL_LABELS[l.key] || l.key.replace(/_url$/, "").replace(/_/g, " ");
      li.append(a);
      list.append(li);
    });
    drawGridFor(doc);
  }

  async function getJson(url) {
    const safe = safeUrl(url || "");
    if (!safe) return null;
    const resp = await fetch(safe);  // a signed link: its own credential
    if (!resp.ok) throw new ApiError(resp.status, "download_failed", "could not read " + url);
    return resp.json();
  }

  async function drawGridFor(doc) {
    const result = doc.result || {};
    try {
      let beatMap = doc.beat_map && Array.isArray(doc.beat_map.beats) ? doc.beat_map : null;
      if (!beatMap) beatMap = await getJson(result.beat_map_url);
      let edl = null;
      try {
        edl = await getJson(result.edl_url);
      } catch (e) {
        edl = null;  // the beats still draw; the shots need the EDL
      }
      if (!beatMap) return;
      const wave = await waveform(doc, edl, beatMap.duration);
      $("grid-section").hidden = false;  // first: the grid takes the width its box has
      state.drawn = { beatMap: beatMap, edl: edl, wave: wave };
      state.grid = drawGrid(beatMap, edl, wave);
    } catch (err) {
      $("grid-section").hidden = false;
      $("grid-about").textContent = "The beat grid could not be drawn: " + err.message;
    }
  }

  // the song's samples: the creator's own file, else the finished video's soundtrack (a signed link of
  // this origin, placed at the song window's start); null: the beat strengths stand in
  async function waveform(doc, edl, duration) {
    const Ctx = window.OfflineAudioContext || window.webkitOfflineAudioContext;
    if (!Ctx) return null;
    const decode = async function (buffer) {
      const ctx = new Ctx(1, 1, 22050);
      return ctx.decodeAudioData(buffer);
    };
    try {
      if (state.song) return { audio: await decode(await state.song.arrayBuffer()), offset: 0, from: "your song file" };
    } catch (e) { /* not decodable here: try the video */ }
    const src = safeUrl(doc.output_url || "");
    if (src && new URL(src).origin === location.origin && (doc.file_size || 0) < 64e6) {
      try {
        const resp = await fetch(src);
        if (resp.ok) {
          return { audio: await decode(await resp.arrayBuffer()), offset: edl ? edl.song.start : 0,
                   from: "the video's soundtrack" };
        }
      } catch (e) { /* fall through */ }
    }
    return null;
  }

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (parent) parent.append(node);
    return node;
  }

  function titled(node, text) {
    const t = document.createElementNS(SVG, "title");
    t.textContent = text;
    node.append(t);
    return node;
  }

  function drawGrid(beatMap, edl, wave) {
    const box = $("grid-scroll");
    box.textContent = "";
    const duration = Math.max(beatMap.duration || 0, edl ? edl.song.end : 0, 0.1);
    const width = Math.max(box.clientWidth - 2, Math.ceil(duration * 40));
    const x = function (t) { return (t / duration) * width; };
    const AXIS = 14, SEC_Y = 16, SEC_H = 20, WAVE_Y = 40, WAVE_H = 110, SHOT_Y = WAVE_Y + WAVE_H + 6, SHOT_H = 22;
    const height = SHOT_Y + SHOT_H + 4;
    const svg = el("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img",
                            "aria-labelledby": "grid-title grid-about" }, box);
    // the video's stretch of the song
    if (edl) el("rect", { class: "window", x: x(edl.song.start), y: 0, width: Math.max(1, x(edl.song.end) - x(edl.song.start)), height: height }, svg);
    // time axis
    const steps = [1, 2, 5, 10, 15, 30, 60, 120];
    const every = steps.find(function (s) { return x(s) >= 60; }) || 300;
    for (let t = 0; t <= duration; t += every) {
      const label = el("text", { class: "axis", x: x(t) + 2, y: 11 }, svg);
      label.textContent = Math.floor(t / 60) + ":" + String(Math.round(t % 60)).padStart(2, "0");
    }
    // sections
    const letters = {};
    (beatMap.sections || []).forEach(function (s) {
      if (!(s.label in letters)) letters[s.label] = Object.keys(letters).length;
      const r = el("rect", { class: "section", x: x(s.start_time), y: SEC_Y, width: Math.max(1, x(s.end_time) - x(s.start_time)),
                             height: SEC_H, fill: SECTION_COLOURS[letters[s.label] % SECTION_COLOURS.length] }, svg);
      titled(r, s.name + " " + s.label + ": " + s.start_time.toFixed(1) + "–" + s.end_time.toFixed(1) + " s, energy " + s.energy.toFixed(2));
      if (x(s.end_time) - x(s.start_time) > 50) {
        const t = el("text", { class: "section-label", x: x(s.start_time) + 4, y: SEC_Y + 14 }, svg);
        t.textContent = s.name + " " + s.label;
      }
    });
    // waveform (or the beat strengths)
    const mid = WAVE_Y + WAVE_H / 2;
    if (wave) {
      const data = wave.audio.getChannelData(0);
      const rate = wave.audio.sampleRate;
      const x0 = Math.max(0, Math.floor(x(wave.offset)));
      const x1 = Math.min(width, Math.ceil(x(wave.offset + data.length / rate)));
      let top = "", bottom = "";
      for (let px = x0; px < x1; px++) {
        const a = Math.max(0, Math.floor(((px / width) * duration - wave.offset) * rate));
        const b = Math.min(data.length, Math.floor((((px + 1) / width) * duration - wave.offset) * rate));
        let lo = 0, hi = 0;
        for (let i = a; i < b; i += Math.max(1, Math.floor((b - a) / 256))) {
          const v = data[i];
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        top += (top ? " L" : "M") + px + " " + (mid - hi * WAVE_H / 2).toFixed(1);
        bottom = " L" + px + " " + (mid - lo * WAVE_H / 2).toFixed(1) + bottom;
      }
      if (top) el("path", { class: "wave", d: top + bottom + " Z" }, svg);
      $("grid-about").textContent = "Waveform of " + wave.from + "; " + beatMap.total_beats + " beats at " +
        beatMap.tempo.toFixed(1) + " BPM (" + beatMap.time_signature + "), " +
        (edl ? edl.shots.length + " shots" : "the edit decision list could not be read");
    } else {
      const beats = beatMap.beats;
      beats.forEach(function (b, i) {
        const next = i + 1 < beats.length ? beats[i + 1].time : b.time + 0.5;
        const h = Math.max(2, b.strength * WAVE_H);
        el("rect", { class: "wave", x: x(b.time), y: mid - h / 2, width: Math.max(1, (x(next) - x(b.time)) * 0.6), height: h }, svg);
      });
      $("grid-about").textContent = "No audio to draw here: bars show each beat's strength; " + beatMap.total_beats +
        " beats at " + beatMap.tempo.toFixed(1) + " BPM";
    }
    // beats and downbeats
    beatMap.beats.forEach(function (b) {
      const down = !!b.is_downbeat;
      const line = el("line", { class: "beatmark " + (down ? "downbeat" : "beat"), x1: x(b.time), x2: x(b.time),
                                y1: down ? SEC_Y + SEC_H : WAVE_Y + 10, y2: down ? WAVE_Y + WAVE_H : WAVE_Y + WAVE_H - 10,
                                "data-time": b.time }, svg);
      titled(line, (down ? "downbeat" : "beat") + " " + (b.index + 1) + " at " + b.time.toFixed(2) + " s");
    });
    // shots (which clip each uses) and the cuts between them
    const legend = $("clip-legend");
    legend.textContent = "";
    if (edl) {
      const fps = edl.fps;
      edl.shots.forEach(function (s, i) {
        const t0 = edl.song.start + s.start_frame / fps;
        const t1 = edl.song.start + s.end_frame / fps;
        const colour = CLIP_COLOURS[s.clip % CLIP_COLOURS.length];
        const clip = { name: clipName(edl, s.clip) };
        const r = el("rect", { class: "shot", x: x(t0), y: SHOT_Y, width: Math.max(1, x(t1) - x(t0)), height: SHOT_H,
                               fill: colour, "data-clip": s.clip }, svg);
        titled(r, "shot " + (i + 1) + ": clip " + (s.clip + 1) + " (" + clip.name + ") from " + s.source_in.toFixed(2) + " s");
        if (x(t1) - x(t0) > 14) {
          const t = el("text", { class: "shot-label", x: x(t0) + 3, y: SHOT_Y + 15 }, svg);
          t.textContent = String(s.clip + 1);
        }
        if (i > 0 && !s.continues) {
          const cut = el("line", { class: "cut", x1: x(t0), x2: x(t0), y1: WAVE_Y, y2: SHOT_Y + SHOT_H, "data-time": t0 }, svg);
          titled(cut, "cut " + i + " at " + t0.toFixed(2) + " s (" + (s.transition ? s.transition.style : "cut") + ")");
        }
      });
      edl.clips.forEach(function (c) {
        const li = document.createElement("li");
        const key = document.createElement("span");
        key.className = "key";
        key.style.background = CLIP_COLOURS[c.index % CLIP_COLOURS.length];
        li.append(key, document.createTextNode((c.index + 1) + ": " + clipName(edl, c.index)));
        legend.append(li);
      });
    }
    const playhead = el("line", { class: "playhead", x1: 0, x2: 0, y1: 0, y2: height, visibility: "hidden" }, svg);
    return { x: x, playhead: playhead, start: edl ? edl.song.start : 0, duration: duration, width: width, svg: svg };
  }

  // the creator's own name for clip i (the file chosen or the URL given), else the EDL's
  function clipName(edl, i) {
    if (state.clipNames[i]) return state.clipNames[i];
    return edl.clips[i] ? edl.clips[i].name : "clip " + (i + 1);
  }

  function redraw() {
    if (!state.drawn || $("grid-section").hidden) return;
    const d = state.drawn;
    state.grid = drawGrid(d.beatMap, d.edl, d.wave);
    followVideo();
  }

  function followVideo() {
    const g = state.grid;
    if (!g) return;
    const px = g.x(g.start + $("video").currentTime);
    g.playhead.setAttribute("x1", px);
    g.playhead.setAttribute("x2", px);
    g.playhead.setAttribute("visibility", "visible");
  }

  function seekFromGrid(ev) {
    const g = state.grid;
    if (!g || !state.doc) return;
    const rect = g.svg.getBoundingClientRect();
    const t = ((ev.clientX - rect.left) / rect.width) * g.duration - g.start;
    const video = $("video");
    if (t >= 0 && isFinite(video.duration) && t <= video.duration) video.currentTime = t;
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("key-form").addEventListener("submit", saveKey);
    $("job-form").addEventListener("submit", start);
    $("preset").addEventListener("change", describePreset);
    $("cancel").addEventListener("click", cancel);
    $("video").addEventListener("timeupdate", followVideo);
    $("grid-scroll").addEventListener("click", seekFromGrid);
    let resizing = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizing);
      resizing = setTimeout(redraw, 150);
    });
    load();
  });
})();
