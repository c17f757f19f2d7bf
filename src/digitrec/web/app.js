"use strict";
// The page draws and shows; the server does all the reading (one preprocessing path).
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const prediction = document.getElementById("prediction");
const confidence = document.getElementById("confidence");
const probabilities = document.getElementById("probabilities");
const seen = document.getElementById("seen").getContext("2d");
const statusLine = document.getElementById("status");
let drawing = false, inked = false, generation = 0;

const bars = [];
for (let d = 0; d < 10; d++) {
  const label = document.createElement("span"); label.textContent = d;
  const bar = document.createElement("div"); bar.className = "bar"; bar.appendChild(document.createElement("div"));
  const pct = document.createElement("span"); pct.className = "pct"; pct.textContent = "";
  probabilities.append(label, bar, pct);
  bars.push([bar, pct]);
}

function resetPad() {
  ctx.fillStyle = "white"; ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = "#111"; ctx.lineWidth = 20; ctx.lineCap = "round"; ctx.lineJoin = "round";
}

function showResult(result) {
  prediction.textContent = String(result.digit);
  confidence.textContent = result.unsure
    ? `not sure: ${(100 * result.confidence).toFixed(1)}%`
    : `${(100 * result.confidence).toFixed(1)}% sure`;
  const top = result.digit;
  result.probabilities.forEach((p, d) => {
    bars[d][0].firstChild.style.width = `${(100 * p).toFixed(1)}%`;
    bars[d][0].classList.toggle("top", d === top);
    bars[d][1].textContent = `${(100 * p).toFixed(1)}%`;
  });
  const img = seen.createImageData(28, 28);
  result.input.flat().forEach((v, i) => { img.data.set([v, v, v, 255], 4 * i); });
  seen.putImageData(img, 0, 0);
}

function clearResult() {
  generation++;
  prediction.textContent = ""; confidence.textContent = ""; statusLine.textContent = "";
  bars.forEach(([bar, pct]) => { bar.firstChild.style.width = "0"; bar.classList.remove("top"); pct.textContent = ""; });
  seen.clearRect(0, 0, 28, 28);
}

async function send(blob) {
  const mine = ++generation;
  const form = new FormData(); form.append("file", blob, "digit.png");
  try {
    const response = await fetch("/api/predict", { method: "POST", body: form });
    const body = await response.json();
    if (mine !== generation) return;  // a newer stroke or a clear came in meanwhile
    if (!response.ok) { statusLine.textContent = body.error || `error ${response.status}`; return; }
    statusLine.textContent = "";
    showResult(body);
  } catch (err) {
    if (mine === generation) statusLine.textContent = `server unreachable: ${err.message}`;
  }
}

// Read at once when a stroke ends. The PNG is encoded with the synchronous toDataURL: toBlob's
// callback can wait a whole second in some browsers. A newer stroke supersedes an older answer.
function canvasPng() {
  const bytes = atob(pad.toDataURL("image/png").split(",")[1]);
  const buffer = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) buffer[i] = bytes.charCodeAt(i);
  return new Blob([buffer], { type: "image/png" });
}

function read() {
  if (inked) send(canvasPng());
}

function point(event) {
  const r = pad.getBoundingClientRect();
  return [(event.clientX - r.left) * pad.width / r.width, (event.clientY - r.top) * pad.height / r.height];
}

pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  const [x, y] = point(e);
  ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 0.01, y); ctx.stroke();
  inked = true;
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const [x, y] = point(e);
  ctx.lineTo(x, y); ctx.stroke();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { if (drawing) { drawing = false; read(); } });
}

function clearAll() { inked = false; resetPad(); clearResult(); }
document.getElementById("clear").addEventListener("click", () => { clearAll(); pad.focus(); });
pad.addEventListener("keydown", (e) => {
  if (["Delete", "Backspace", "Escape"].includes(e.key)) { e.preventDefault(); clearAll(); }
});
document.getElementById("upload").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) { clearAll(); send(file); }
  e.target.value = "";
});

fetch("/api/model").then((r) => r.json()).then((m) => {
  const acc = m.test_accuracy ? `, ${(100 * m.test_accuracy).toFixed(2)}% on the MNIST test set` : "";
  document.getElementById("model").textContent = `model ${m.name} (${m.architecture}${acc}), digitrec ${m.version}`;
}).catch(() => {});
resetPad();
