/* qualcode workspace: select words and code them, by mouse or keyboard. Plain JavaScript, no build. */
(function () {
  "use strict";
  const root = document.getElementById("qc");
  if (!root) return;
  const api = root.dataset.api;
  const csrf = root.dataset.csrf;
  const coder = root.dataset.coder || "";
  // The undo stack outlives a reload (a document memo reloads the page), per tab, coder and document.
  const undoKey = `qc-undo:${coder}:${root.dataset.document || ""}`;
  const undoStack = (() => { try { return JSON.parse(sessionStorage.getItem(undoKey) || "[]"); } catch (e) { return []; } })();
  function saveUndo() { try { sessionStorage.setItem(undoKey, JSON.stringify(undoStack.slice(-100))); } catch (e) { /* private mode */ } }
  function pushUndo(step) { if (step) { undoStack.push(step); saveUndo(); } }
  const status = document.getElementById("qc-status");
  let statusTimer = null;

  function say(text, bad) {
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("qc-bad", !!bad);
    status.classList.add("qc-show");
    clearTimeout(statusTimer);
    statusTimer = setTimeout(() => status.classList.remove("qc-show"), bad ? 6000 : 2500);
  }

  async function post(action, body) {
    const started = performance.now();
    const response = await fetch(api + action, {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrftoken": csrf },
      body: JSON.stringify(body),
    });
    let data;
    try { data = await response.json(); } catch (e) { data = { ok: false, error: "the server answered " + response.status }; }
    data.ms = Math.round(performance.now() - started);
    if (!data.ok) { say(data.error || "that did not work", true); throw new Error(data.error); }
    if (data.turn_html) replaceTurn(data.segment_id, data.turn_html);
    return data;
  }

  // --- compare page: consensus decisions -----------------------------------------------------
  if (root.classList.contains("qc-compare")) {
    const coders = JSON.parse(root.dataset.coders || "[]");
    root.addEventListener("click", async (event) => {
      const button = event.target.closest("[data-consensus]");
      if (!button) return;
      const box = button.closest(".qc-decide");
      const name = (document.getElementById("qc-consensus") || {}).value || "Consensus";
      const apply = button.dataset.consensus === "apply";
      try {
        const data = await post("consensus", { segment_id: +box.dataset.segment, code_id: box.dataset.code, apply, coders, consensus: name });
        let mark = box.querySelector("b");
        if (!mark) { mark = document.createElement("b"); box.insertBefore(mark, button); }
        mark.textContent = data.decision + " ";
        say("Consensus recorded: " + data.decision);
      } catch (e) { /* said */ }
    });
    return;
  }

  // --- offsets: a selection back into document offsets (code points) -------------------------
  function codePoints(text) { let n = 0; for (const _ of text) n++; return n; }

  function pieceOf(node) {
    const el = node.nodeType === Node.TEXT_NODE ? node.parentElement : node;
    return el ? el.closest("[data-o]") : null;
  }

  function offsetAt(node, offset) {
    // A point in the DOM as a document offset: the piece's offset plus code points before the point.
    let piece = pieceOf(node);
    if (node.nodeType !== Node.TEXT_NODE) {
      const text = node.closest && node.closest(".qc-text");
      if (text && node === text) {  // a point between pieces
        const child = text.childNodes[offset];
        if (child && child.dataset) return +child.dataset.o;
        const last = text.lastElementChild;
        return last ? +last.dataset.o + codePoints(last.textContent) : null;
      }
      if (!piece) return null;
      return +piece.dataset.o + (offset > 0 ? codePoints(piece.textContent) : 0);
    }
    if (!piece) return null;
    return +piece.dataset.o + codePoints(node.data.slice(0, offset));
  }

  function withCRLF(turn, value) {
    // Browsers drop the \r of \r\n from text; count each one before the point back in.
    const crs = (turn.dataset.crlf || "").split(",").filter(Boolean).map(Number);
    let out = value;
    for (const cr of crs) if (cr < out) out++;
    return out;
  }

  function turnOf(node) { return (node.nodeType === Node.TEXT_NODE ? node.parentElement : node).closest(".qc-turn"); }

  function selectionSpan() {
    const sel = window.getSelection();
    if (!sel || sel.isCollapsed || !sel.rangeCount) return null;
    const range = sel.getRangeAt(0).cloneRange();
    const turnA = turnOf(range.startContainer);
    let turnB = turnOf(range.endContainer);
    if (turnA && turnB && turnA !== turnB) {
      // A triple-click selects a turn up to the start of the next one: nothing of that one is selected.
      const rest = range.cloneRange();
      rest.setStart(turnB.querySelector(".qc-text"), 0);
      if (!rest.toString()) turnB = turnA;
    }
    if (!turnA || turnA !== turnB) return turnA || turnB ? { error: "Select words within one turn." } : null;
    // An edge outside the turn's text (a triple-click or a drag ends in the margin, or starts on the
    // speaker) is the text's start or end; a selection wholly outside it collapses to nothing.
    const box = turnA.querySelector(".qc-text");
    const inside = document.createRange();
    inside.selectNodeContents(box);
    if (inside.comparePoint(range.startContainer, range.startOffset) < 0) range.setStart(box, 0);
    if (inside.comparePoint(range.endContainer, range.endOffset) > 0) range.setEnd(box, box.childNodes.length);
    if (range.collapsed) return null;
    let start = offsetAt(range.startContainer, range.startOffset), end = offsetAt(range.endContainer, range.endOffset);
    if (start === null || end === null) return null;
    start = withCRLF(turnA, start); end = withCRLF(turnA, end);
    const text = range.toString();
    const lead = codePoints(text) - codePoints(text.replace(/^\s+/u, ""));
    const trail = codePoints(text) - codePoints(text.replace(/\s+$/u, ""));
    start += lead; end -= trail;
    const lo = +turnA.dataset.start, hi = +turnA.dataset.end;
    start = Math.max(start, lo); end = Math.min(end, hi);
    if (end <= start) return null;
    return { turn: turnA, start, end, rect: range.getBoundingClientRect() };
  }

  // --- turns and focus ----------------------------------------------------------------------
  const transcript = document.getElementById("qc-transcript");
  let focused = null;

  function turns() { return Array.from(transcript.querySelectorAll(".qc-turn")); }

  function focusTurn(turn, scroll) {
    if (!turn) return;
    if (focused) focused.classList.remove("qc-focus");
    focused = turn;
    turn.classList.add("qc-focus");
    if (scroll !== false) turn.scrollIntoView({ block: "nearest" });
  }

  function replaceTurn(segmentId, html) {
    const old = transcript.querySelector(`.qc-turn[data-segment="${segmentId}"]`);
    if (!old) return;
    const holder = document.createElement("div");
    holder.innerHTML = html.trim();
    const fresh = holder.firstElementChild;
    old.replaceWith(fresh);
    if (focused === old) focusTurn(fresh, false);
  }

  function move(step) {
    const all = turns();
    const at = focused ? all.indexOf(focused) : -1;
    focusTurn(all[Math.min(all.length - 1, Math.max(0, at + step))]);
  }

  // --- the code picker ----------------------------------------------------------------------
  const codebook = JSON.parse((document.getElementById("qc-codebook-data") || {}).textContent || "[]");
  const picker = document.getElementById("qc-picker");
  const input = document.getElementById("qc-picker-input");
  const options = document.getElementById("qc-options");
  const recentBox = document.getElementById("qc-recent");
  let target = null, choice = 0, shown = [];

  function recent() { try { return JSON.parse(localStorage.getItem("qc-recent") || "[]"); } catch (e) { return []; } }
  function remember(code) {
    const list = [code, ...recent().filter((c) => c !== code)].slice(0, 9);
    localStorage.setItem("qc-recent", JSON.stringify(list));
  }
  const byId = Object.fromEntries(codebook.map((k) => [k.id, k]));

  function renderOptions() {
    const q = input.value.trim().toLowerCase();
    shown = codebook.filter((k) => k.depth > 0 || !codebook.some((c) => c.parent_id === k.id)).filter((k) =>
      !q || k.name.toLowerCase().includes(q) || k.id.toLowerCase().includes(q) ||
      (k.terms || []).some((t) => t.toLowerCase().includes(q)));
    choice = Math.min(choice, Math.max(0, shown.length - 1));
    options.replaceChildren(...shown.map((k, i) => {
      const li = document.createElement("li");
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", i === choice ? "true" : "false");
      li.dataset.code = k.id;
      const dot = document.createElement("span"); dot.className = "qc-dot"; dot.style.setProperty("--c", k.color);
      const small = document.createElement("small"); small.textContent = k.id;
      li.append(dot, document.createTextNode(k.name), small);
      return li;
    }));
    const r = recent().filter((c) => byId[c]);
    recentBox.textContent = r.length ? r.map((c, i) => `${i + 1} ${byId[c].name}`).join(" · ") : "Recently used codes appear here, on keys 1–9.";
  }

  function openPicker(spanOrTurn) {
    if (!coder) { say("Sign in to code.", true); return; }
    target = spanOrTurn;
    const rect = spanOrTurn.rect || spanOrTurn.turn.querySelector(".qc-text").getBoundingClientRect();
    picker.hidden = false;
    picker.style.top = `${window.scrollY + rect.bottom + 6}px`;
    picker.style.left = `${Math.max(8, Math.min(window.innerWidth - 400, window.scrollX + rect.left))}px`;
    input.value = ""; choice = 0;
    renderOptions();
    input.focus();
  }

  function closePicker() { picker.hidden = true; target = null; if (focused) focused.focus({ preventScroll: true }); }

  async function apply(code) {
    if (!target || !code) return;
    const t = target;
    closePicker();
    const body = { segment_id: +t.turn.dataset.segment, code_id: code };
    if (t.start !== undefined) { body.start = t.start; body.end = t.end; }
    try {
      const data = await post("apply", body);
      remember(code);
      pushUndo(data.undo);
      window.getSelection().removeAllRanges();
      say(data.added ? `Coded ${byId[code] ? byId[code].name : code} (${data.ms} ms)` : "Already coded that way");
    } catch (e) { /* said */ }
  }

  input && input.addEventListener("input", () => { choice = 0; renderOptions(); });
  input && input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") { choice = Math.min(shown.length - 1, choice + 1); renderOptions(); event.preventDefault(); }
    else if (event.key === "ArrowUp") { choice = Math.max(0, choice - 1); renderOptions(); event.preventDefault(); }
    else if (event.key === "Enter") { event.preventDefault(); if (shown[choice]) apply(shown[choice].id); }
    else if (event.key === "Escape") { event.preventDefault(); closePicker(); }
    else if (/^[1-9]$/.test(event.key) && !input.value) {
      const code = recent()[+event.key - 1];
      if (code && byId[code]) { event.preventDefault(); apply(code); }
    }
  });
  options && options.addEventListener("mousedown", (event) => {
    const li = event.target.closest("li[data-code]");
    if (li) { event.preventDefault(); apply(li.dataset.code); }
  });
  document.addEventListener("mousedown", (event) => {
    if (picker && !picker.hidden && !picker.contains(event.target)) closePicker();
  });

  // Datasette closes every open <details> on a click outside it (meant for its menus): keep the
  // codebook's guidance open as the coder left it while they click and select in the transcript.
  let keepOpen = [];
  document.addEventListener("click", () => { keepOpen = Array.from(document.querySelectorAll("details.qc-code[open]")); }, true);
  document.addEventListener("click", () => { keepOpen.forEach((d) => { d.open = true; }); keepOpen = []; });

  // --- clicks -------------------------------------------------------------------------------
  transcript.addEventListener("mouseup", () => {
    setTimeout(() => {
      const span = selectionSpan();
      if (span && span.error) { say(span.error, true); return; }
      if (span) { focusTurn(span.turn, false); openPicker(span); }
    }, 0);
  });

  async function decide(turn, accept, box) {
    const sugg = box || (turn && turn.querySelector(".qc-sugg"));
    if (!sugg) { say("No suggestion on this turn."); return; }
    try {
      const data = await post("suggestion", { suggestion_id: +sugg.dataset.suggestion, accept });
      pushUndo(data.undo);
      say(`${accept ? "Accepted" : "Rejected"} (${data.ms} ms)${data.retraining ? " — retraining the model in the background" : ""}`);
    } catch (e) { /* said */ }
  }

  async function memo(body, current) {
    const text = window.prompt(body.memo_id || body.coding_id ? "Edit the memo (empty deletes it):" : "Memo:", current || "");
    if (text === null) return;
    try {
      const data = body.coding_id ? await post("coding-memo", { coding_id: body.coding_id, memo: text }) : await post("memo", { ...body, text });
      pushUndo(data.undo);
      say("Memo saved");
      if (!data.segment_id) window.location.reload();
    } catch (e) { /* said */ }
  }

  document.addEventListener("click", async (event) => {
    const el = event.target;
    const turn = el.closest && el.closest(".qc-turn");
    if (el.closest("[data-whole]")) { event.preventDefault(); focusTurn(turn, false); openPicker({ turn }); return; }
    if (el.closest("[data-remove]")) {
      const chip = el.closest("[data-coding]");
      try {
        const data = await post("remove", { coding_id: +chip.dataset.coding });
        pushUndo(data.undo);
        say("Coding removed (u undoes)");
      } catch (e) { /* said */ }
      return;
    }
    if (el.closest("[data-edit-memo]")) {
      const chip = el.closest("[data-coding]");
      const current = chip.querySelector(".qc-memo-mark");
      memo({ coding_id: +chip.dataset.coding }, current ? current.title : "");
      return;
    }
    if (el.closest("[data-edit-turn-memo], [data-edit-doc-memo]")) {
      const box = el.closest("[data-memo]");
      memo({ memo_id: +box.dataset.memo }, box.textContent.replace(/^[^:]*:\s*/, "").replace(/✎\s*$/, "").trim());
      return;
    }
    if (el.closest("[data-doc-memo]")) { memo({ document_id: root.dataset.document }); return; }
    if (el.closest("[data-accept]")) { decide(turn, true, el.closest(".qc-sugg")); return; }
    if (el.closest("[data-reject]")) { decide(turn, false, el.closest(".qc-sugg")); return; }
    if (el.closest("[data-apply-code]")) {
      event.preventDefault();
      const span = selectionSpan();
      const t = span && !span.error ? span : focused ? { turn: focused } : null;
      if (!t) { say("Select words or a turn first.", true); return; }
      target = t; apply(el.closest("[data-apply-code]").dataset.applyCode);
      return;
    }
    if (el.closest("[data-next]")) { nextUncertain(); return; }
    if (el.closest("[data-help]")) { toggleHelp(); return; }
    if (turn && !el.closest("button, a, .qc-sugg")) focusTurn(turn, false);
  });

  async function undo() {
    const last = undoStack.pop();
    saveUndo();
    if (!last) { say("Nothing to undo"); return; }
    try {
      const data = await post("undo", { undo: last });
      say("Undone");
      if (!data.segment_id && last.action === "memo") window.location.reload();  // a document memo: not in a turn
    }
    catch (e) { /* said */ }
  }

  async function nextUncertain() {
    if (!coder) { say("Sign in to review suggestions.", true); return; }
    // The ones shown already this session are skipped, so n walks down the queue; at its end, the top again.
    let seen = [];
    try { seen = JSON.parse(sessionStorage.getItem("qc-seen") || "[]"); } catch (e) { /* start afresh */ }
    const ask = async (skip) => (await fetch(api + "next?after=" + encodeURIComponent(skip.join(",")), { credentials: "same-origin" })).json();
    let data = await ask(seen);
    if (data.ok && !data.suggestion_id && seen.length) { seen = []; data = await ask(seen); }
    if (!data.ok || !data.suggestion_id) { say("No pending suggestions left."); return; }
    seen = [...seen, data.suggestion_id].slice(-100);
    sessionStorage.setItem("qc-seen", JSON.stringify(seen));
    if (data.document_id === root.dataset.document) {
      const turn = transcript.querySelector(`.qc-turn[data-segment="${data.segment_id}"]`);
      focusTurn(turn);
      const box = turn && turn.querySelector(`[data-suggestion="${data.suggestion_id}"]`);
      if (box) box.scrollIntoView({ block: "center" });
      say(`Most uncertain: ${data.code_id} at ${data.score.toFixed(2)}`);
    } else {
      window.location.href = root.dataset.base + encodeURIComponent(data.document_id) + "#turn-" + data.seq;
    }
  }

  // --- keys ---------------------------------------------------------------------------------
  const help = document.getElementById("qc-help");
  function toggleHelp() { help.hidden = !help.hidden; }

  document.addEventListener("keydown", (event) => {
    if (event.target.closest && event.target.closest("input, textarea, select")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const k = event.key;
    if (k === "?") { toggleHelp(); event.preventDefault(); }
    else if (k === "Escape") { help.hidden = true; if (!picker.hidden) closePicker(); }
    else if (k === "j" || k === "ArrowDown") { move(1); event.preventDefault(); }
    else if (k === "k" || k === "ArrowUp") { move(-1); event.preventDefault(); }
    else if (k === "c" || k === "Enter") {
      const span = selectionSpan();
      if (span && !span.error) openPicker(span);
      else if (focused) openPicker({ turn: focused });
      event.preventDefault();
    }
    else if (k === "a") decide(focused, true);
    else if (k === "r") decide(focused, false);
    else if (k === "u") undo();
    else if (k === "n") nextUncertain();
    else if (k === "m" && focused) memo({ segment_id: +focused.dataset.segment });
  });

  // Arriving at #turn-N (from an excerpt, a search result, the queue): focus that turn.
  const hash = /^#turn-(\d+)$/.exec(window.location.hash);
  focusTurn(hash ? document.getElementById("turn-" + hash[1]) : turns()[0], !!hash);
  root.dataset.ready = String(Math.round(performance.now()));
})();
