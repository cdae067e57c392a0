// scar serve's dashboard: renders /api/events snapshots; no framework, no build step.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const state = { snapshot: null, source: null, bucket: null, prefix: "", buckets: [], pendingInvocations: false };

function el(tag, attrs, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function ms(v) { return v === undefined || v === null ? "" : (v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(1) + " ms"); }
function time(at) { return new Date(at).toLocaleTimeString(); }
function q(params) { return new URLSearchParams(params).toString(); }
const OUTCOME_LABEL = { succeeded: "succeeded", failed: "failed", timed_out: "timed out", loop_stopped: "loop-stopped", running: "running", queued: "queued" };

function connect() {
  if (state.source) state.source.close();
  const params = { function: document.getElementById("filter-function").value, outcome: document.getElementById("filter-outcome").value };
  // New filters: the next list is shown even if a link in the old one has the focus.
  state.filtersChanged = true;
  const source = new EventSource("/api/events?" + q(params));
  state.source = source;
  source.addEventListener("snapshot", (e) => {
    state.snapshot = JSON.parse(e.data);
    render(state.snapshot);
    document.getElementById("status").textContent = "Live · updated " + new Date().toLocaleTimeString();
  });
  source.onerror = () => { document.getElementById("status").textContent = "Disconnected: retrying…"; };
}

function render(s) {
  renderFunctions(s.functions);
  renderFilterOptions(s.functions);
  renderChain(s.chain);
  // A live update does not pull the row that has the keyboard's focus away from under it.
  if (!state.filtersChanged && document.getElementById("invocations-body").contains(document.activeElement)) state.pendingInvocations = true;
  else renderInvocations(s.invocations);
  state.filtersChanged = false;
  renderCharts(s.stats);
  if (state.bucket) browse(state.bucket, state.prefix, true);
  else loadBuckets();
}

function replaceRows(id, rows) {
  const body = document.getElementById(id);
  // Each cell names its column, for narrow windows where rows become blocks.
  const names = Array.from(body.closest("table").querySelectorAll("thead th")).map((th) => th.textContent);
  for (const row of rows) Array.from(row.children).forEach((cell, i) => cell.setAttribute("data-label", names[i] || ""));
  body.replaceChildren(...rows);
}

function renderFunctions(functions) {
  replaceRows("functions-body", functions.map((f) => el("tr", { "data-function": f.name },
    el("th", { scope: "row", text: f.name }),
    el("td", {}, el("code", { text: f.image })),
    el("td", { class: "num", text: f.memory_mb + " MB" }),
    el("td", { class: "num", text: f.timeout_s + " s" }),
    el("td", {}, f.inputs.map((i) => el("div", {}, el("code", { text: i })))),
    el("td", {}, f.outputs.map((o) => el("div", {}, el("code", { text: o.path + (o.suffix.length ? " (" + o.suffix.join(", ") + ")" : "") })))),
    el("td", {}, f.endpoint ? el("code", { text: f.endpoint }) : el("span", { text: "none" })),
  )));
}

function renderFilterOptions(functions) {
  const select = document.getElementById("filter-function");
  const names = functions.map((f) => f.name);
  const have = Array.from(select.options).slice(1).map((o) => o.value);
  if (names.join("\n") === have.join("\n")) return;
  const current = select.value;
  select.replaceChildren(el("option", { value: "", text: "all" }), ...names.map((n) => el("option", { value: n, text: n, selected: n === current })));
}

const COUNT_NAMES = [["waiting", "waiting"], ["running", "running"], ["done", "done"], ["failed", "failed"], ["timed_out", "timed out"], ["loop_stopped", "loop-stopped"]];

function renderChain(chain) {
  const box = document.getElementById("chain-picture");
  // A live update redraws the picture: the box that has the keyboard's focus keeps it.
  const focused = box.contains(document.activeElement) ? document.activeElement.dataset.function : null;
  const names = chain.nodes.map((n) => n.name);
  // Columns by longest path from a function nothing feeds (cycles cut at n steps).
  const depth = Object.fromEntries(names.map((n) => [n, 0]));
  for (let i = 0; i < names.length; i++) {
    for (const e of chain.edges) depth[e.to] = Math.max(depth[e.to], Math.min(depth[e.from] + 1, names.length - 1));
  }
  const W = 230, H = 128, GX = 90, GY = 30;
  const columns = Math.max(0, ...Object.values(depth)) + 1;
  // Left to right when it fits, else top to bottom (narrow windows).
  const vertical = box.clientWidth > 0 && box.clientWidth < 20 + columns * (W + GX);
  const rows = {};
  const pos = {};
  for (const n of names) {
    const d = depth[n];
    rows[d] = (rows[d] || 0) + 1;
    const r = rows[d] - 1;
    pos[n] = vertical ? { x: 10 + r * (W + GY), y: 10 + d * (H + GX) } : { x: 10 + d * (W + GX), y: 10 + r * (H + GY) };
  }
  const across = Math.max(1, ...Object.values(rows));
  const backwards = chain.edges.some((e) => depth[e.to] <= depth[e.from]);
  const width = (vertical ? 20 + across * (W + GY) : 20 + columns * (W + GX)) + (backwards && vertical ? 70 : 0);
  const height = (vertical ? 20 + columns * (H + GX) : 20 + across * (H + GY)) + (backwards && !vertical ? 70 : 0);
  const svg = el("svg:svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-labelledby": "chain-title", class: "chain" });
  const summary = chain.nodes.map((n) => `${n.name}: ` + COUNT_NAMES.map(([k, label]) => `${n.counts[k]} ${label}`).join(", ")).join("; ");
  svg.append(el("svg:title", { id: "chain-title", text: "Chain of functions. " + summary }));
  svg.append(el("svg:defs", {}, el("svg:marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" }, el("svg:path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#57606a" }))));
  for (const e of chain.edges) {
    const a = pos[e.from], b = pos[e.to];
    const forward = depth[e.to] > depth[e.from];
    let d, lx, ly;
    if (!vertical && forward) {
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
      d = `M ${x1} ${y1} C ${x1 + 40} ${y1} ${x2 - 40} ${y2} ${x2} ${y2}`;
      lx = (x1 + x2) / 2; ly = Math.min(y1, y2) - 8;
    } else if (!vertical) {
      d = `M ${a.x + W / 2} ${a.y + H} C ${a.x + W / 2} ${a.y + H + 60} ${b.x + W / 2} ${b.y + H + 60} ${b.x + W / 2} ${b.y + H}`;
      lx = (a.x + b.x) / 2 + W / 2; ly = Math.max(a.y, b.y) + H + 55;
    } else if (forward) {
      const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y;
      d = `M ${x1} ${y1} C ${x1} ${y1 + 30} ${x2} ${y2 - 30} ${x2} ${y2}`;
      lx = (x1 + x2) / 2 + 8; ly = (y1 + y2) / 2;
    } else {
      d = `M ${a.x + W} ${a.y + H / 2} C ${a.x + W + 60} ${a.y + H / 2} ${b.x + W + 60} ${b.y + H / 2} ${b.x + W} ${b.y + H / 2}`;
      lx = Math.max(a.x, b.x) + W + 8; ly = (a.y + b.y) / 2 + H / 2;
    }
    svg.append(el("svg:g", { class: "edge-group", "data-from": e.from, "data-to": e.to },
      el("svg:path", { class: "edge", d }),
      el("svg:text", { x: lx, y: ly, "text-anchor": vertical ? "start" : "middle", text: e.folders.join(", ") })));
  }
  for (const n of chain.nodes) {
    const p = pos[n.name];
    const label = `${n.name}: ` + COUNT_NAMES.map(([k, l]) => `${n.counts[k]} ${l}`).join(", ") + ". Show its invocations.";
    // A node is a button: Enter, Space or a click lists that function's invocations.
    const attrs = { class: "node", "data-function": n.name, transform: `translate(${p.x},${p.y})`, tabindex: 0, role: "button", "aria-label": label };
    for (const [k] of COUNT_NAMES) attrs["data-" + k.replace("_", "-")] = n.counts[k];
    const g = el("svg:g", attrs,
      el("svg:rect", { width: W, height: H, rx: 6 }),
      el("svg:text", { class: "title", x: 10, y: 20, text: n.name }),
      el("svg:text", { x: 10, y: 36, text: n.inputs.join(", ") }));
    COUNT_NAMES.forEach(([k, label], i) => {
      const failed = (k === "failed" || k === "timed_out") && n.counts[k] > 0;
      g.append(el("svg:text", { class: "count count-" + k + (failed ? " failed-count" : ""), "data-count": k, x: 10 + (i % 2) * 110, y: 60 + Math.floor(i / 2) * 22, text: `${label} ${n.counts[k]}` }));
    });
    const pick = () => {
      document.getElementById("filter-function").value = n.name;
      connect();
      document.getElementById("invocations").scrollIntoView();
    };
    g.addEventListener("click", pick);
    g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); } });
    svg.append(g);
  }
  box.replaceChildren(svg);
  if (focused) {
    const again = Array.from(svg.querySelectorAll("g.node")).find((g) => g.dataset.function === focused);
    if (again) again.focus();
  }
}

function renderInvocations(invocations) {
  state.pendingInvocations = false;
  replaceRows("invocations-body", invocations.map((i) => {
    const outputs = (i.uploaded || []).map((u) => {
      const slash = u.indexOf("/");
      const bucket = u.slice(0, slash), key = u.slice(slash + 1);
      return el("div", {}, el("a", { href: "/api/object?" + q({ bucket, key }), download: key.split("/").pop(), text: key }));
    });
    const log = i.stream ? el("a", { class: "log-link", href: "/api/logs?" + q({ function: i.function, request_id: i.request_id }), target: "_blank", rel: "noopener", text: "log lines", "aria-label": `log lines of ${i.request_id}` }) : "";
    return el("tr", { "data-request-id": i.request_id, "data-outcome": i.outcome, "data-function": i.function, "data-key": i.key || "" },
      el("td", { class: "num", text: time(i.at_ms) }),
      el("td", { text: i.function }),
      el("td", {}, el("code", { text: i.request_id || "(not run)" })),
      el("td", {}, el("code", { text: i.key || "" })),
      el("td", { class: "num", text: ms(i.duration_ms) }),
      el("td", { class: "num", text: i.billed_ms === undefined ? "" : i.billed_ms + " ms" }),
      el("td", { class: "num", text: i.max_memory_mb === undefined ? "" : i.max_memory_mb + " MB" }),
      el("td", { class: "outcome outcome-" + i.outcome, text: OUTCOME_LABEL[i.outcome] || i.outcome }),
      el("td", {}, log),
      el("td", {}, outputs));
  }));
}

function chart(title, cls, width, height, draw) {
  const svg = el("svg:svg", { class: cls, width: "100%", viewBox: `0 0 ${width} ${height}`, role: "img" });
  svg.append(el("svg:title", { text: title }));
  draw(svg);
  return svg;
}

function renderCharts(stats) {
  const W = 360, H = 110, L = 34, B = 16;
  const figures = stats.map((s) => {
    const minutes = s.per_minute;
    const bw = (W - L) / minutes.length;
    const top = Math.max(1, ...minutes.map((m) => m.invocations));
    const errors = minutes.reduce((a, m) => a + m.errors, 0);
    const perMinute = chart(`${s.function}: invocations per minute over the last hour, ${errors} errors`, "per-minute", W, H, (svg) => {
      svg.append(el("svg:line", { class: "axis", x1: L, y1: H - B, x2: W, y2: H - B }));
      svg.append(el("svg:text", { x: 0, y: 12, text: String(top) }));
      svg.append(el("svg:text", { x: 0, y: H - B, text: "0" }));
      svg.append(el("svg:text", { x: L, y: H - 2, text: "-60 min" }));
      svg.append(el("svg:text", { x: W - 30, y: H - 2, text: "now" }));
      minutes.forEach((m, i) => {
        if (!m.invocations) return;
        const h = (m.invocations / top) * (H - B - 10);
        const eh = (m.errors / top) * (H - B - 10);
        svg.append(el("svg:rect", { class: "bar", x: L + i * bw, y: H - B - h, width: Math.max(1, bw - 1), height: h }, el("svg:title", { text: `${time(m.at_ms)}: ${m.invocations} invocations, ${m.errors} errors` })));
        if (m.errors) svg.append(el("svg:rect", { class: "bar error", x: L + i * bw, y: H - B - eh, width: Math.max(1, bw - 1), height: eh }));
      });
    });
    const maxMs = Math.max(1, ...minutes.map((m) => m.max_ms || 0));
    const durations = chart(`${s.function}: duration p50, p95 and max per minute over the last hour`, "duration", W, H, (svg) => {
      svg.append(el("svg:line", { class: "axis", x1: L, y1: H - B, x2: W, y2: H - B }));
      svg.append(el("svg:text", { x: 0, y: 12, text: ms(maxMs) }));
      svg.append(el("svg:text", { x: L, y: H - 2, text: "-60 min" }));
      svg.append(el("svg:text", { x: W - 30, y: H - 2, text: "now" }));
      for (const [key, cls] of [["p50_ms", "p50"], ["p95_ms", "p95"], ["max_ms", "max"]]) {
        const pts = minutes.map((m, i) => [m, i]).filter(([m]) => m[key] !== undefined && m[key] !== null)
          .map(([m, i]) => [L + i * bw + bw / 2, H - B - (m[key] / maxMs) * (H - B - 10), m]);
        if (pts.length > 1) svg.append(el("svg:polyline", { class: cls, points: pts.map(([x, y]) => `${x},${y}`).join(" ") }));
        for (const [x, y, m] of pts) svg.append(el("svg:circle", { class: "point " + cls, cx: x, cy: y, r: 2.5 }, el("svg:title", { text: `${time(m.at_ms)} ${cls}: ${ms(m[key])}` })));
      }
      minutes.forEach((m, i) => { if (m.errors) svg.append(el("svg:text", { class: "failed-count error-mark", x: L + i * bw, y: H - B - 2, text: "×" }, el("svg:title", { text: `${m.errors} errors` }))); });
    });
    return el("figure", { "data-function": s.function },
      el("figcaption", { text: `${s.function}: ${s.invocations} invocations, p50 ${ms(s.p50_ms)}, p95 ${ms(s.p95_ms)}, max ${ms(s.max_ms)}` }),
      perMinute, durations,
      el("div", { class: "legend" }, el("span", { class: "l50", text: "p50" }), el("span", { class: "l95", text: "p95" }), el("span", { class: "lmax", text: "max" })));
  });
  document.getElementById("charts-body").replaceChildren(...figures);
}

async function loadBuckets() {
  const r = await fetch("/api/buckets");
  if (!r.ok) return;
  state.buckets = await r.json();
  const select = document.getElementById("bucket-select");
  select.replaceChildren(...state.buckets.map((b) => el("option", { value: b.name, text: b.name })));
  const folders = document.getElementById("upload-folder");
  const options = state.buckets.flatMap((b) => b.input_folders.map((f) => el("option", { value: b.name + "\n" + f, text: f ? `${b.name}/${f}` : b.name })));
  folders.replaceChildren(...options);
  if (!state.bucket && state.buckets.length) browse(state.buckets[0].name, "", false);
}

async function browse(bucket, prefix, quiet) {
  state.bucket = bucket; state.prefix = prefix;
  document.getElementById("bucket-select").value = bucket;
  const r = await fetch(`/api/buckets/${encodeURIComponent(bucket)}?` + q({ prefix }));
  if (!r.ok) { if (!quiet) document.getElementById("bucket-body").replaceChildren(); return; }
  const listing = await r.json();
  const parts = prefix ? prefix.split("/") : [];
  const crumbs = [el("button", { type: "button", onclick: () => browse(bucket, "", false), text: bucket })];
  parts.forEach((p, i) => crumbs.push(" / ", el("button", { type: "button", onclick: () => browse(bucket, parts.slice(0, i + 1).join("/"), false), text: p })));
  document.getElementById("crumbs").replaceChildren(...crumbs);
  const body = document.getElementById("bucket-body");
  if (body.contains(document.activeElement)) return;
  body.replaceChildren(
    ...listing.folders.map((f) => el("tr", {}, el("td", {}, el("button", { type: "button", class: "linklike", onclick: () => browse(bucket, f, false), text: f.split("/").pop() + "/" })), el("td", {}), el("td", {}))),
    ...listing.objects.map((o) => el("tr", {},
      el("td", {}, el("a", { href: "/api/object?" + q({ bucket, key: o.key }), download: o.key.split("/").pop(), text: o.key.split("/").pop() })),
      el("td", { class: "num", text: o.size + " B" }),
      el("td", { text: new Date(o.modified).toLocaleString() }))));
}

async function upload(e) {
  e.preventDefault();
  const [bucket, folder] = document.getElementById("upload-folder").value.split("\n");
  const files = document.getElementById("upload-files").files;
  const status = document.getElementById("upload-status");
  let done = 0;
  for (const file of files) {
    const r = await fetch("/api/upload?" + q({ bucket, folder, name: file.name }), { method: "POST", body: file, headers: { "X-Scar-Dashboard": "1" } });
    if (!r.ok) { status.textContent = `${file.name}: ${await r.text()}`; return; }
    done++;
  }
  status.textContent = `${done} file(s) uploaded to ${bucket}/${folder}`;
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("filter-function").addEventListener("change", connect);
  document.getElementById("filter-outcome").addEventListener("change", connect);
  document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
  document.getElementById("bucket-select").addEventListener("change", (e) => browse(e.target.value, "", false));
  document.getElementById("upload").addEventListener("submit", upload);
  document.getElementById("invocations-body").addEventListener("focusout", () => {
    setTimeout(() => { if (state.pendingInvocations && state.snapshot && !document.getElementById("invocations-body").contains(document.activeElement)) renderInvocations(state.snapshot.invocations); }, 0);
  });
  let resized = null;
  window.addEventListener("resize", () => {
    clearTimeout(resized);
    resized = setTimeout(() => { if (state.snapshot) renderChain(state.snapshot.chain); }, 100);
  });
  loadBuckets();
  connect();
});
