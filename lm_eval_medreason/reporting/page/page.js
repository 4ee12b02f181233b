// The response browser: state lives in the URL hash (#task=KEY&vs=KEY&filter=wrong&group=G&q=TEXT&page=N), so
// every view can be linked to. A task's JSON block is parsed only when the task is first shown; PAGE_SIZE questions
// are rendered at a time. This script runs after the first task's block: later blocks may still be loading.
(function () {
  "use strict";
  const meta = JSON.parse(document.getElementById("meta").textContent);
  const tasks = meta.tasks, byKey = new Map(tasks.map((t) => [t.key, t]));
  const loaded = new Map();
  let cases = null;
  const $ = (id) => document.getElementById(id);
  const VERDICT = { c: "correct", w: "wrong", n: "no answer", u: "not graded" };
  const FILTERS = [["all", "all questions"], ["correct", "correct"], ["wrong", "wrong"], ["none", "no answer"]];
  const PAIR_FILTERS = [["differ", "answers differ (A vs B)"], ["a_only", "only A correct"], ["b_only", "only B correct"]];

  function data(task) {
    if (!loaded.has(task.key)) loaded.set(task.key, JSON.parse($(task.data).textContent));
    if (!cases) cases = JSON.parse($("cases").textContent);
    return loaded.get(task.key);
  }

  function readHash() {
    const p = new URLSearchParams(location.hash.replace(/^#/, ""));
    const task = byKey.get(p.get("task")) || (p.get("task") ? null : tasks[0]);
    return { task: task, missing: p.get("task"), vs: byKey.get(p.get("vs")) || null, filter: p.get("filter") || "all",
             group: p.get("group") || "", q: p.get("q") || "", page: Math.max(1, parseInt(p.get("page") || "1", 10) || 1) };
  }

  function writeHash(state) {
    const p = new URLSearchParams();
    p.set("task", state.task.key);
    if (state.vs) p.set("vs", state.vs.key);
    if (state.filter !== "all") p.set("filter", state.filter);
    if (state.group) p.set("group", state.group);
    if (state.q) p.set("q", state.q);
    if (state.page > 1) p.set("page", String(state.page));
    const hash = "#" + p.toString();
    if (location.hash !== hash) location.hash = hash; else render();
  }

  function option(value, text, selected) {
    const o = document.createElement("option");
    o.value = value; o.textContent = text; o.selected = selected;
    return o;
  }

  function fillControls(state) {
    const taskSel = $("task");
    if (!taskSel.options.length) tasks.forEach((t) => taskSel.appendChild(option(t.key, `${t.model} · ${t.strategy} · ${t.title}`, false)));
    taskSel.value = state.task.key;
    const vsSel = $("vs");
    vsSel.replaceChildren(option("", "(none)", !state.vs));
    tasks.filter((t) => t.key !== state.task.key && t.benchmark === state.task.benchmark)
      .sort((a, b) => (b.model === state.task.model) - (a.model === state.task.model))
      .forEach((t) => vsSel.appendChild(option(t.key, `${t.model} · ${t.strategy}`, state.vs && state.vs.key === t.key)));
    const filterSel = $("filter");
    filterSel.replaceChildren(...FILTERS.concat(state.vs ? PAIR_FILTERS : []).map(([v, text]) => option(v, text, v === state.filter)));
    const groupSel = $("group");
    const bench = cases[state.task.benchmark];
    const groups = state.task.by ? [...new Set(bench.grp)].sort() : [];
    $("group-label").hidden = !groups.length;
    $("group-label").firstChild.textContent = state.task.by ? `By ${state.task.by} ` : "Group ";
    groupSel.replaceChildren(option("", "(all)", !state.group), ...groups.map((g) => option(g, g, g === state.group)));
    if (document.activeElement !== $("q")) $("q").value = state.q;
  }

  function matches(state, a, b, i, j) {
    const f = state.filter, va = a.v[i], vb = b ? b.v[j] : null;
    if (f === "correct" && va !== "c") return false;
    if (f === "wrong" && va !== "w") return false;
    if (f === "none" && va !== "n") return false;
    if (f === "differ" && (!b || a.ch[i] === b.ch[j])) return false;
    if (f === "a_only" && (!b || va !== "c" || vb === "c")) return false;
    if (f === "b_only" && (!b || vb !== "c" || va === "c")) return false;
    const c = a.case[i], bench = cases[state.task.benchmark];
    if (state.group && bench.grp[c] !== state.group) return false;
    if (state.q) {
      const q = state.q.toLowerCase();
      const text = [bench.q[c], ...Object.values(bench.o[c] || {}), a.r[i], b ? b.r[j] : ""].join("\n").toLowerCase();
      if (!text.includes(q)) return false;
    }
    return true;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function response(d, i) {
    const pre = el("pre", "response"), text = d.r[i], sp = d.sp[i];
    if (sp && sp[0] !== null && sp[1] <= text.length) {
      pre.append(text.slice(0, sp[0]));
      const m = el("mark", "span", text.slice(sp[0], sp[1]));
      m.title = `the span the grader read (rule: ${d.ru[i]})`;
      pre.append(m, text.slice(sp[1]));
    } else pre.textContent = text;
    return pre;
  }

  function side(task, d, i) {
    const div = el("div", "side");
    const head = el("div");
    head.append(el("b", null, `${task.model} · ${task.strategy}`), " ");
    head.append(el("span", "verdict-" + d.v[i], VERDICT[d.v[i]]));
    const chosen = d.ch[i] === null ? "nothing" : d.ch[i];
    const parts = [`read: ${chosen}`, `rule: ${d.ru[i] || "n/a"}`, `tokens: ${d.tok[i] === null ? "n/a" : d.tok[i]}`];
    if (d.votes) parts.push(`maj@${task.k}: ${d.acc[i] === null ? "n/a" : d.acc[i].toFixed(3)}`, `mean tokens over the ${task.k}: ${d.tokm[i]}`);
    head.append(el("span", "tag", parts.join(" · ")));
    div.append(head);
    if (d.votes) {
      const v = d.votes[i];
      div.append(el("div", "votes", "votes: " + Object.entries(v).map(([k, n]) => `${k} ${n}`).join(", ") + " — shown: the first response voting " + chosen));
    }
    div.append(response(d, i));
    return div;
  }

  function card(state, a, b, i, j, n) {
    const bench = cases[state.task.benchmark], c = a.case[i];
    const box = el("article", "question");
    box.dataset.id = bench.id[c];
    box.dataset.verdict = a.v[i];
    const h = el("h3", null, `#${n + 1} · ${bench.id[c]}`);
    if (bench.grp[c] !== null) h.append(el("span", "tag", `${state.task.by}: ${bench.grp[c]}`));
    box.append(h, el("div", "case", bench.q[c]));
    const gold = bench.g[c];
    if (!state.task.freeform) {
      const ul = el("ul", "options");
      for (const [letter, text] of Object.entries(bench.o[c] || {})) {
        const li = el("li", null, `${letter}. ${text}`);
        if (letter === gold) { li.classList.add("gold"); li.append(el("span", "tag", "gold")); }
        if (letter === a.ch[i]) { li.classList.add("chosen"); li.append(el("span", "tag", b ? "A chose" : "chosen")); }
        if (b && letter === b.ch[j]) { li.classList.add("chosen"); li.append(el("span", "tag", "B chose")); }
        ul.append(li);
      }
      box.append(ul);
    } else box.append(el("div", "case", `gold answer: ${gold}`));
    const sides = el("div", b ? "sides two" : "sides");
    sides.append(side(state.task, a, i));
    if (b) sides.append(side(state.vs, b, j));
    box.append(sides);
    return box;
  }

  function pager(total, state, pages) {
    for (const id of ["pager-top", "pager-bottom"]) {
      const p = $(id);
      p.replaceChildren();
      const prev = el("button", null, "← previous"), next = el("button", null, "next →");
      prev.disabled = state.page <= 1; next.disabled = state.page >= pages;
      prev.onclick = () => writeHash({ ...state, page: state.page - 1 });
      next.onclick = () => writeHash({ ...state, page: state.page + 1 });
      p.append(prev, next, `page ${Math.min(state.page, pages)} of ${pages} (${total} questions)`);
    }
  }

  function render() {
    const state = readHash();
    if (!state.task) {
      $("questions").replaceChildren(el("p", "verdict-w", `No task ${state.missing} in this report.`));
      return;
    }
    const early = [state.task, state.vs].some((t) => t && t.data !== "data-0");
    if (early && document.readyState === "loading") {
      // a task whose block the browser has not read yet: render once the whole page is in
      $("questions").replaceChildren(el("p", null, "Loading the responses…"));
      document.addEventListener("DOMContentLoaded", render, { once: true });
      return;
    }
    const a = data(state.task);
    const b = state.vs ? data(state.vs) : null;
    fillControls(state);
    const bIndex = b ? new Map(b.case.map((c, j) => [cases[state.vs.benchmark].id[c], j])) : null;
    const bench = cases[state.task.benchmark];
    const shown = [];
    for (let i = 0; i < a.case.length; i++) {
      const j = b ? bIndex.get(bench.id[a.case[i]]) : null;
      if (b && j === undefined) continue;
      if (matches(state, a, b, i, j)) shown.push([i, j]);
    }
    const counts = { c: 0, w: 0, n: 0, u: 0 };
    a.v.forEach((v) => counts[v]++);
    $("summary").textContent = `${state.task.model} · ${state.task.strategy} · ${state.task.title}: ${a.v.length} questions — ` +
      `${counts.c} correct, ${counts.w} wrong, ${counts.n} no answer` + (counts.u ? `, ${counts.u} not graded` : "") +
      `. Showing ${shown.length}.`;
    const pages = Math.max(1, Math.ceil(shown.length / meta.pageSize));
    const page = Math.min(state.page, pages);
    const list = $("questions");
    list.replaceChildren();
    shown.slice((page - 1) * meta.pageSize, page * meta.pageSize)
      .forEach(([i, j], n) => list.append(card(state, a, b, i, j, (page - 1) * meta.pageSize + n)));
    if (!shown.length) list.append(el("p", null, "No question matches."));
    pager(shown.length, { ...state, page: page }, pages);
    if (!document.body.dataset.firstRenderMs) document.body.dataset.firstRenderMs = performance.now().toFixed(0);
    document.body.dataset.rendered = location.hash;
  }

  function current() {
    const s = readHash();
    return { ...s, task: s.task || tasks[0] };
  }
  $("task").onchange = (e) => writeHash({ task: byKey.get(e.target.value), vs: null, filter: "all", group: "", q: "", page: 1 });
  $("vs").onchange = (e) => writeHash({ ...current(), vs: byKey.get(e.target.value) || null, page: 1 });
  $("filter").onchange = (e) => writeHash({ ...current(), filter: e.target.value, page: 1 });
  $("group").onchange = (e) => writeHash({ ...current(), group: e.target.value, page: 1 });
  let timer = null;
  $("q").oninput = (e) => { clearTimeout(timer); timer = setTimeout(() => writeHash({ ...current(), q: e.target.value, page: 1 }), 250); };
  window.addEventListener("hashchange", () => {
    // links to sections (#table1, ...) are plain anchors; only browser states re-render
    if (location.hash.startsWith("#task=")) { render(); $("browser").scrollIntoView(); }
  });
  window.addEventListener("load", () => { document.body.dataset.loadedMs = performance.now().toFixed(0); });
  if (!tasks.length) { $("questions").replaceChildren(el("p", null, "No responses in this report.")); return; }
  render();
})();
