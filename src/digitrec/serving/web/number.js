"use strict";
// Number mode: the page draws and shows; the server reads (POST /api/read, the one preprocessing path).
const line = document.getElementById("line");
const overlay = document.getElementById("boxes").getContext("2d");
const text = document.getElementById("text");
const confidence = document.getElementById("confidence");
const crops = document.getElementById("crops");
const statusLine = document.getElementById("status");

function clearResult() {
  send.cancel();
  text.textContent = ""; confidence.textContent = ""; statusLine.textContent = "";
  overlay.clearRect(0, 0, line.width, line.height);
  crops.replaceChildren();
  teacher.reset();
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

const send = makeSender("/api/read?inputs=1", statusLine, showReading);
const teacher = makeTeacher(document.getElementById("teach"), "number", () => send.last);

const drawPad = makePad(line, 9, () => send(drawPad.png(), 1), clearResult);
const ctx = drawPad.ctx;

document.getElementById("upload").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) {
    drawPad.clearAll();
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
