"use strict";
// A drawing pad shared by both pages: pointer strokes (mouse, pen, touch) in canvas pixels, a clear,
// and the picture as PNG bytes. `onStroke` runs when a stroke ends.
function makePad(canvas, lineWidth, onStroke, onClear) {
  const ctx = canvas.getContext("2d");
  let drawing = false;
  const pad = { ctx, inked: false };

  pad.reset = () => {
    ctx.fillStyle = "white"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#111"; ctx.lineWidth = lineWidth; ctx.lineCap = "round"; ctx.lineJoin = "round";
    pad.inked = false;
  };
  // Encoded with the synchronous toDataURL: toBlob's callback can wait a whole second in some browsers.
  pad.png = () => {
    const bytes = atob(canvas.toDataURL("image/png").split(",")[1]);
    const buffer = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) buffer[i] = bytes.charCodeAt(i);
    return new Blob([buffer], { type: "image/png" });
  };
  const point = (event) => {
    const r = canvas.getBoundingClientRect();
    return [(event.clientX - r.left) * canvas.width / r.width, (event.clientY - r.top) * canvas.height / r.height];
  };
  canvas.addEventListener("pointerdown", (e) => {
    drawing = true;
    canvas.setPointerCapture(e.pointerId);
    const [x, y] = point(e);
    ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 0.01, y); ctx.stroke();
    pad.inked = true;
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const [x, y] = point(e);
    ctx.lineTo(x, y); ctx.stroke();
  });
  for (const type of ["pointerup", "pointercancel"]) {
    canvas.addEventListener(type, () => { if (drawing) { drawing = false; if (pad.inked) onStroke(); } });
  }
  const clearAll = () => { pad.reset(); onClear(); };
  document.getElementById("clear").addEventListener("click", () => { clearAll(); canvas.focus(); });
  canvas.addEventListener("keydown", (e) => {
    if (["Delete", "Backspace", "Escape"].includes(e.key)) { e.preventDefault(); clearAll(); }
  });
  pad.clearAll = clearAll;
  pad.reset();
  return pad;
}

// Posts a picture to `url` and hands the JSON answer to `show`; an error goes to the status line. A newer
// call, or `cancel()` (a clear), makes an answer still on its way count for nothing.
function makeSender(url, statusLine, show) {
  let generation = 0;
  const sender = async (blob, ...extra) => {
    const mine = ++generation;
    const form = new FormData(); form.append("file", blob, "picture.png");
    try {
      const response = await fetch(url, { method: "POST", body: form });
      const body = await response.json();
      if (mine !== generation) return;
      if (!response.ok) { statusLine.textContent = body.error || `error ${response.status}`; return; }
      statusLine.textContent = "";
      sender.last = { blob, answer: body };
      show(body, ...extra);
    } catch (err) {
      if (mine === generation) statusLine.textContent = `server unreachable: ${err.message}`;
    }
  };
  sender.cancel = () => { generation++; sender.last = null; };
  return sender;
}

// "Wrong? It was: ..." under a reading, shown only when the server keeps examples (`serve --collect`).
// `mode` "digit": ten buttons; "number": a field for the digits. `last()` gives the picture last read and its
// answer. With "keep right answers too" ticked, a "Right" button keeps a confirmed reading as well.
function makeTeacher(container, mode, last) {
  const message = document.createElement("span"); message.className = "teach-status";
  message.setAttribute("role", "status");
  const keep = async (fields) => {
    const now = last();
    if (!now) { message.textContent = "Draw or upload a picture first."; return; }
    const form = new FormData(); form.append("file", now.blob, "picture.png");
    Object.entries(fields).forEach(([k, v]) => form.append(k, v));
    try {
      const response = await fetch("/api/correct", { method: "POST", body: form });
      const body = await response.json();
      message.textContent = response.ok
        ? `Kept as ${fields.label ?? fields.text}: ${body.examples} example(s) so far` +
          (body.tuning ? "; learning them in the background" : "")
        : body.error || `error ${response.status}`;
    } catch (err) { message.textContent = `server unreachable: ${err.message}`; }
  };
  const answerOf = (now) => (mode === "digit" ? String(now.answer.digit) : now.answer.text);
  const label = document.createElement("span"); label.className = "label"; label.textContent = "Wrong? It was:";
  const row = document.createElement("div"); row.className = "teach-row"; row.append(label);
  if (mode === "digit") {
    for (let d = 0; d < 10; d++) {
      const b = document.createElement("button"); b.type = "button"; b.textContent = d; b.className = "teach-digit";
      b.setAttribute("aria-label", `It was a ${d}`);
      b.addEventListener("click", () => keep({ label: String(d) }));
      row.append(b);
    }
  } else {
    const field = document.createElement("input");
    Object.assign(field, { id: "correct-text", inputMode: "numeric", pattern: "[0-9]*", maxLength: 32,
                           placeholder: "the digits" });
    field.setAttribute("aria-label", "What the number was");
    const save = document.createElement("button"); save.type = "button"; save.textContent = "Keep";
    save.id = "correct-save";
    save.addEventListener("click", () => {
      if (!/^[0-9]{1,32}$/.test(field.value)) { message.textContent = "Type the digits, 0-9."; return; }
      keep({ text: field.value });
    });
    row.append(field, save);
  }
  const confirmRow = document.createElement("div"); confirmRow.className = "teach-row";
  const tick = document.createElement("input"); tick.type = "checkbox"; tick.id = `keep-right-${mode}`;
  const tickLabel = document.createElement("label"); tickLabel.htmlFor = tick.id; tickLabel.textContent = "keep right answers too";
  const right = document.createElement("button"); right.type = "button"; right.textContent = "Right"; right.hidden = true;
  right.id = "confirm-right";
  tick.addEventListener("change", () => { right.hidden = !tick.checked; });
  right.addEventListener("click", () => {
    const now = last();
    if (!now) { message.textContent = "Draw or upload a picture first."; return; }
    keep(mode === "digit" ? { label: answerOf(now), confirmed: "1" } : { text: answerOf(now), confirmed: "1" });
  });
  confirmRow.append(tick, tickLabel, right, message);
  container.replaceChildren(row, confirmRow);
  fetch("/api/model").then((r) => r.json()).then((m) => { container.hidden = !m.collect; }).catch(() => {});
  return { reset: () => { message.textContent = ""; } };
}
