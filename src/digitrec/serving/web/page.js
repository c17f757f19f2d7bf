"use strict";
// Page mode: the server finds and reads every field (POST /api/page); the page boxes them on the photo,
// lists them, and writes the list as CSV.
const upload = document.getElementById("upload");
const statusLine = document.getElementById("status");
const sheet = document.getElementById("sheet");
const photo = document.getElementById("photo");
const marks = document.getElementById("marks");
const count = document.getElementById("count");
const csvLink = document.getElementById("csv");
const table = document.getElementById("fields");
const DOUBTFUL = 0.7;  // a field read with less confidence is marked for a person to check
let fileName = "page";

const percent = (p) => `${(100 * p).toFixed(1)}%`;

// A CSV cell as digitrec's own tables write it (core/csvout.py): quoted when it holds a comma, a quote or a
// line break; a text a spreadsheet would take for a formula (=, +, -, @, tab, CR first) prefixed with ',
// unless it is a plain number (-3).
const NUMBER = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;
function csvCell(value) {
  let text = String(value);
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text) && !NUMBER.test(text)) text = "'" + text;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvOf(fields) {
  const rows = [["file", "field", "text", "confidence", "x0", "y0", "x1", "y1"]];
  fields.forEach((f, i) => rows.push([fileName, i + 1, f.text, f.confidence.toFixed(4), ...f.box]));
  return rows.map((row) => row.map(csvCell).join(",")).join("\n") + "\n";
}

function clearResult() {
  marks.replaceChildren();
  table.tBodies[0].replaceChildren();
  table.hidden = true; csvLink.hidden = true;
  count.textContent = "";
  if (csvLink.href) URL.revokeObjectURL(csvLink.href);
  csvLink.removeAttribute("href");
}

// Boxes in shares of the page, so they stay on their fields however wide the photo is shown.
function showPage(answer) {
  clearResult();
  const { width, height, fields } = answer;
  fields.forEach((f, i) => {
    const [x0, y0, x1, y1] = f.box;
    const mark = document.createElement("div");
    // a tag goes above its box, or below it when the box is at the top of the page
    mark.className = "field-box" + (f.confidence < DOUBTFUL ? " doubtful" : "") + (y0 < 0.06 * height ? " top" : "");
    Object.assign(mark.style, { left: `${100 * x0 / width}%`, top: `${100 * y0 / height}%`,
                                width: `${100 * (x1 - x0) / width}%`, height: `${100 * (y1 - y0) / height}%` });
    const tag = document.createElement("span"); tag.className = "field-tag";
    tag.textContent = `${i + 1}: ${f.text} ${(100 * f.confidence).toFixed(0)}%`;
    mark.append(tag);
    marks.append(mark);
    const row = table.tBodies[0].insertRow();
    row.className = f.confidence < DOUBTFUL ? "doubtful" : "";
    for (const text of [String(i + 1), f.text, percent(f.confidence)]) row.insertCell().textContent = text;
  });
  count.textContent = fields.length ? String(fields.length) : "none";
  statusLine.textContent = fields.length ? "" : "No handwritten field found on this picture.";
  table.hidden = !fields.length;
  if (fields.length) {
    csvLink.href = URL.createObjectURL(new Blob([csvOf(fields)], { type: "text/csv" }));
    csvLink.download = `${fileName.replace(/\.[^.]*$/, "") || "page"}-fields.csv`;
    csvLink.hidden = false;
  }
}

const send = makeSender("/api/page", statusLine, showPage);

upload.addEventListener("change", (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (!file) return;
  fileName = file.name;
  clearResult();
  statusLine.textContent = "Reading the page…";
  if (photo.src) URL.revokeObjectURL(photo.src);
  photo.src = URL.createObjectURL(file);
  sheet.hidden = false;
  send(file);
});
