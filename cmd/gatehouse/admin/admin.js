// The admin page: polls /state.json every second and /usage.json every five
// seconds, and redraws. No library, no build step, nothing fetched from
// anywhere but this listener.
"use strict";

const el = (tag, attrs, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
};

// meter is one window's bar: its fill is the part of the allowance left.
function meter(w, win, peek) {
  const left = peek ? w.remaining : 0;
  const frac = w.limit > 0 ? left / w.limit : 0;
  const fill = el("div", { class: "fill" + (frac <= 0 ? " out" : frac < 0.25 ? " low" : "") });
  fill.style.width = (frac * 100).toFixed(1) + "%";
  const bar = el("div", { class: "bar", "data-window": win, "data-remaining": String(left), "data-limit": String(w.limit) }, fill);
  const count = el("span", { class: "count" }, peek ? `${left} / ${w.limit}` : `? / ${w.limit}`);
  return el("div", { class: "meter" }, bar, count);
}

// update keeps each row's elements and moves only the fills' widths, so that
// the bars animate between polls instead of being redrawn.
function drawKeys(keys, peek) {
  const body = document.querySelector("#keys tbody");
  const rows = new Map([...body.children].map((r) => [r.dataset.key, r]));
  for (const k of keys) {
    const fresh = el("tr", { "data-key": k.id, class: k.active ? "" : "inactive" },
      el("td", { class: "key" }, el("div", { class: "name" }, k.name || k.id), el("div", { class: "id" }, k.id)),
      el("td", {}, meter(k.minute, "minute", peek)),
      el("td", {}, meter(k.day, "day", peek)));
    const old = rows.get(k.id);
    if (!old) { body.append(fresh); continue; }
    rows.delete(k.id);
    old.className = fresh.className;
    for (const win of ["minute", "day"]) {
      const o = old.querySelector(`[data-window="${win}"]`), n = fresh.querySelector(`[data-window="${win}"]`);
      for (const a of ["data-remaining", "data-limit"]) o.setAttribute(a, n.getAttribute(a));
      const of = o.firstChild, nf = n.firstChild;
      of.className = nf.className;
      of.style.width = nf.style.width;
      o.nextSibling.textContent = n.nextSibling.textContent;
    }
  }
  for (const r of rows.values()) r.remove();
}

// drawKeyNotes says where the keys come from, and what the table leaves out:
// the keys past the state's bound, or every key when the database does not
// answer.
function drawKeyNotes(st) {
  document.getElementById("key-source").textContent = `served from the ${st.key_source} · `;
  const note = document.getElementById("keys-note");
  note.textContent = st.keys_error ||
    (st.keys_total > st.keys.length ? `the first ${st.keys.length} of ${st.keys_total} keys, by id` : "");
  note.className = "note" + (st.keys_error ? " bad" : "");
}

function pill(state) {
  const known = ["ok", "down", "open", "closed", "breaker_open"].includes(state);
  return el("span", { class: "pill " + (known ? state : "other") }, state.replace("_", " "));
}

function drawUpstreams(ups) {
  const body = document.querySelector("#upstreams tbody");
  body.replaceChildren(...(ups.length ? ups.map((u) =>
    el("tr", { "data-upstream": u.name }, el("td", {}, u.name), el("td", {}, pill(u.health)), el("td", {}, pill(u.breaker))))
    : [el("tr", {}, el("td", { class: "empty", colspan: "3" }, "no upstream over HTTP"))]));
}

function drawRates(rates) {
  const box = document.getElementById("rates");
  if (!rates.length) { box.replaceChildren(el("p", { class: "empty" }, "no requests in the last 5 s")); return; }
  const top = Math.max(1, ...rates.map((r) => r.per_second));
  box.replaceChildren(...rates.map((r) => {
    const cls = r.status === 429 ? "c429" : "c" + Math.floor(r.status / 100);
    const fill = el("div", { class: "fill" });
    fill.style.width = ((r.per_second / top) * 100).toFixed(1) + "%";
    return el("div", { class: "rate " + cls, "data-status": String(r.status) },
      el("span", { class: "code" }, String(r.status)), el("div", { class: "bar" }, fill),
      el("span", { class: "count" }, r.per_second.toFixed(1) + " /s"));
  }));
}

// hourBars is a key's 24 bars of requests per hour, scaled to its busiest
// hour: each bar carries its hour and count, and says them on hover.
const svgNS = "http://www.w3.org/2000/svg";
function hourBars(hours) {
  const top = Math.max(1, ...hours), w = 8, h = 32;
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("class", "hours");
  svg.setAttribute("viewBox", `0 0 ${24 * w} ${h}`);
  svg.setAttribute("width", String(24 * w));
  svg.setAttribute("height", String(h));
  hours.forEach((n, i) => {
    const bar = document.createElementNS(svgNS, "rect");
    const height = n > 0 ? Math.max(2, Math.round((n / top) * h)) : 1;
    for (const [k, v] of Object.entries({ "data-hour": i, "data-count": n, x: i * w, y: h - height, width: w - 2, height })) {
      bar.setAttribute(k, String(v));
    }
    if (n === 0) bar.setAttribute("class", "zero");
    const title = document.createElementNS(svgNS, "title");
    title.textContent = `${String(i).padStart(2, "0")}:00 UTC: ${n} requests`;
    bar.append(title);
    svg.append(bar);
  });
  return svg;
}

// usageNote says how fresh the rows are, what the table leaves out, or why
// there is no usage.
function usageNote(u) {
  if (u.error) return u.error;
  const every = `flushed every ${u.flush_every_ms / 1000} s`;
  let s = u.flushed
    ? `${u.day}, from the key database, as of this gateway's last flush, ${u.flushed.slice(11, 19)} UTC (${every})`
    : `${u.day}, from the key database; this gateway has not flushed yet (${every})`;
  if (u.keys_total > u.keys.length) s += ` · the first ${u.keys.length} of ${u.keys_total} keys, by id`;
  return s;
}

function drawUsage(u) {
  document.getElementById("usage").hidden = Boolean(u.error);
  document.querySelector("#usage tbody").replaceChildren(...u.keys.map((k) =>
    el("tr", { "data-usage-key": k.id },
      el("td", { class: "key" }, el("div", { class: "name" }, k.name || k.id), el("div", { class: "id" }, k.id)),
      el("td", {}, hourBars(k.hours)),
      el("td", { class: "used", title: `${k.cost} cost units of ${k.per_day} a day, in ${k.requests} requests` }, `${k.cost} / ${k.per_day}`))));
  const note = document.getElementById("usage-note");
  note.textContent = usageNote(u);
  note.className = "note";
}

// pollUsage reads /usage.json: the rows change only when a gateway flushes,
// so every 5 s is enough.
async function pollUsage() {
  try {
    const res = await fetch("usage.json", { cache: "no-store" });
    if (!res.ok) throw new Error(res.status);
    drawUsage(await res.json());
  } catch (e) {
    const note = document.getElementById("usage-note");
    note.textContent = "cannot read the usage (" + e.message + ")";
    note.className = "note bad";
  }
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const res = await fetch("state.json", { cache: "no-store" });
    if (!res.ok) throw new Error(res.status);
    const st = await res.json();
    drawKeys(st.keys, st.peek);
    drawKeyNotes(st);
    drawUpstreams(st.upstreams);
    drawRates(st.rates);
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "status";
  } catch (e) {
    status.textContent = "cannot reach the gateway (" + e.message + ")";
    status.className = "status stale";
  }
}

poll();
setInterval(poll, 1000);
pollUsage();
setInterval(pollUsage, 5000);
