"use strict";
// The page draws and shows; the server does all the reading (one preprocessing path).
const pad = document.getElementById("pad");
const prediction = document.getElementById("prediction");
const confidence = document.getElementById("confidence");
const probabilities = document.getElementById("probabilities");
const seen = document.getElementById("seen").getContext("2d");
const statusLine = document.getElementById("status");

const bars = [];
for (let d = 0; d < 10; d++) {
  const label = document.createElement("span"); label.textContent = d;
  const bar = document.createElement("div"); bar.className = "bar"; bar.appendChild(document.createElement("div"));
  const pct = document.createElement("span"); pct.className = "pct"; pct.textContent = "";
  probabilities.append(label, bar, pct);
  bars.push([bar, pct]);
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
  send.cancel();
  prediction.textContent = ""; confidence.textContent = ""; statusLine.textContent = "";
  bars.forEach(([bar, pct]) => { bar.firstChild.style.width = "0"; bar.classList.remove("top"); pct.textContent = ""; });
  seen.clearRect(0, 0, 28, 28);
  teacher.reset();
}

const send = makeSender("/api/predict", statusLine, showResult);
const teacher = makeTeacher(document.getElementById("teach"), "digit", () => send.last);

// Read at once when a stroke ends; a newer stroke supersedes an older answer.
const drawPad = makePad(pad, 20, () => send(drawPad.png()), clearResult);

document.getElementById("upload").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) { drawPad.clearAll(); send(file); }
  e.target.value = "";
});

fetch("/api/model").then((r) => r.json()).then((m) => {
  const acc = m.test_accuracy ? `, ${(100 * m.test_accuracy).toFixed(2)}% on the MNIST test set` : "";
  document.getElementById("model").textContent = `model ${m.name} (${m.architecture}${acc}), digitrec ${m.version}`;
}).catch(() => {});
