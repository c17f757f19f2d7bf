"use strict";
// Number mode: the page draws and shows; the server reads (POST /api/read, the one preprocessing path).
const line = document.getElementById("line");
const ctx = line.getContext("2d");
const overlay = document.getElementById("boxes").getContext("2d");
const text = document.getElementById("text");
const confidence = document.getElementById("confidence");
const crops = document.getElementById("crops");
const statusLine = document.getElementById("status");
let drawing = false, inked = false, generation = 0;

function resetLine() {
  ctx.fillStyle = "white"; ctx.fillRect(0, 0, line.width, line.height);
  ctx.strokeStyle = "#111"; ctx.lineWidth = 9; ctx.lineCap = "round"; ctx.lineJoin = "round";
}

function clearResult() {
  generation++;
  text.textContent = ""; confidence.textContent = ""; statusLine.textContent = "";
  overlay.clearRect(0, 0, line.width, line.height);
  crops.replaceChildren();
}

function showReading(reading, scale) {
  text.textContent = reading.text;
  confidence.textContent = `${(100 * reading.confidence).toFixed(1)}% for the whole number` +
    (reading.rejected ? `, ${reading.rejected} mark(s) left out` : "");
  overlay.clearRect(0, 0, line.width, line.height);
  overlay.lineWidth = 3; overlay.font = "bold 20px system-ui, sans-serif";
  reading.digits.forEach((d) => {
    const [x0, y0, x1, y1] = d.box.map((v) => v * scale);
    overlay.strokeStyle = overlay.fillStyle = d.confidence < 0.7 ? "#c92a2a" : "#e8590c";
    overlay.strokeRect(x0, y0, x1 - x0, y1 - y0);
    overlay.fillText(`${d.digit} ${(100 * d.confidence).toFixed(0)}%`, x0, Math.max(18, y0 - 4));
  });
  crops.replaceChildren(...(reading.inputs || []).map((pixels, i) => {
    const c = document.createElement("canvas"); c.width = 28; c.height = 28; c.className = "crop";
    c.setAttribute("aria-label", `digit ${i + 1}: ${reading.digits[i].digit}`);
    const img = c.getContext("2d").createImageData(28, 28);
    pixels.flat().forEach((v, k) => { img.data.set([v, v, v, 255], 4 * k); });
    c.getContext("2d").putImageData(img, 0, 0);
    return c;
  }));
}

async function send(blob, scale) {
  const mine = ++generation;
  const form = new FormData(); form.append("file", blob, "number.png");
  try {
    const response = await fetch("/api/read?inputs=1", { method: "POST", body: form });
    const body = await response.json();
    if (mine !== generation) return;  // a newer stroke or a clear came in meanwhile
    if (!response.ok) { statusLine.textContent = body.error || `error ${response.status}`; return; }
    statusLine.textContent = "";
    showReading(body, scale);
  } catch (err) {
    if (mine === generation) statusLine.textContent = `server unreachable: ${err.message}`;
  }
}

function canvasPng() {  // synchronous, as on the single-digit page: toBlob can wait a second
  const bytes = atob(line.toDataURL("image/png").split(",")[1]);
  const buffer = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) buffer[i] = bytes.charCodeAt(i);
  return new Blob([buffer], { type: "image/png" });
}

function point(event) {
  const r = line.getBoundingClientRect();
  return [(event.clientX - r.left) * line.width / r.width, (event.clientY - r.top) * line.height / r.height];
}

line.addEventListener("pointerdown", (e) => {
  drawing = true;
  line.setPointerCapture(e.pointerId);
  const [x, y] = point(e);
  ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 0.01, y); ctx.stroke();
  inked = true;
});
line.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const [x, y] = point(e);
  ctx.lineTo(x, y); ctx.stroke();
});
for (const type of ["pointerup", "pointercancel"]) {
  line.addEventListener(type, () => { if (drawing) { drawing = false; if (inked) send(canvasPng(), 1); } });
}

function clearAll() { inked = false; resetLine(); clearResult(); }
document.getElementById("clear").addEventListener("click", () => { clearAll(); line.focus(); });
line.addEventListener("keydown", (e) => {
  if (["Delete", "Backspace", "Escape"].includes(e.key)) { e.preventDefault(); clearAll(); }
});
document.getElementById("upload").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) {
    clearAll();
    // Boxes come back in the photo's pixels: show the photo on the pad, scaled to fit, and scale the boxes.
    const img = new Image();
    img.onload = () => {
      const scale = Math.min(line.width / img.width, line.height / img.height);
      ctx.drawImage(img, 0, 0, img.width * scale, img.height * scale);
      send(file, scale);
    };
    img.src = URL.createObjectURL(file);
  }
  e.target.value = "";
});
resetLine();
