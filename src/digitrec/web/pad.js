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
      show(body, ...extra);
    } catch (err) {
      if (mine === generation) statusLine.textContent = `server unreachable: ${err.message}`;
    }
  };
  sender.cancel = () => { generation++; };
  return sender;
}
