"""Rerun issue #16's reproductions as a user would: the real `digitrec` command in a child process, and HTTP
requests to a real `digitrec serve`. Each row: the item, what was done, what came back, and whether that is a
clean refusal (CLI: exit 2, one `digitrec: error:` line on stderr, no traceback, nothing overwritten; server: a
4xx JSON body) or a correct result. The load items (1, 2, 4) are `benchmarks/serve_load.py`'s; killed training
runs at 50 points are `tests/test_kill.py`'s.

    python scripts/check_hardening.py            # prints the table; exit 1 if any row fails
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ROWS: list[dict] = []


def digitrec(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "digitrec", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def refused(item: str, what: str, result: subprocess.CompletedProcess, *fragments: str, untouched=()) -> None:
    """A clean refusal: exit 2, one error line naming what was wrong, no traceback, files untouched."""
    lines = result.stderr.strip().splitlines()
    ok = (result.returncode == 2 and len(lines) == 1 and lines[0].startswith("digitrec: error:")
          and "Traceback" not in result.stderr and all(f in lines[0] for f in fragments))
    for path, content in untouched:
        ok &= Path(path).read_bytes() == content
    ROWS.append({"item": item, "reproduction": what, "answer": (lines[-1] if lines else f"exit {result.returncode}")
                 [:110], "ok": ok})


def correct(item: str, what: str, ok: bool, answer: str) -> None:
    ROWS.append({"item": item, "reproduction": what, "answer": answer[:110], "ok": ok})


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def digit_png() -> bytes:
    from digitrec import synthetic

    return png(synthetic.drawn_digits(1, seed=3, size=112)[0][0])


def nan_tiff(path: Path) -> Path:
    array = np.full((40, 40), np.nan, np.float32)
    array[10:30, 18:22] = np.inf
    Image.fromarray(array, mode="F").save(path, format="TIFF")
    return path


def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def idx_bytes(dims: list[int], magic_type: int = 8) -> bytes:
    return bytes([0, 0, magic_type, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


# ---------------------------------------------------------------- the CLI items


def files_lost(work: Path) -> None:
    csv = work / "t.csv"
    rows = ["pixel" + ",pixel".join(map(str, range(784)))[5:]] + [",".join(["0"] * 784)] * 2
    csv.write_text("\n".join(rows) + "\n")
    before = csv.read_bytes()
    refused("5", "predict t.csv --out t.csv", digitrec("predict", csv, "--out", csv), "overwrite",
            untouched=[(csv, before)])
    run = work / "run"
    shutil.copytree(ROOT / "src/digitrec/bundled", run)
    weights = (run / "model.safetensors").read_bytes()
    refused("5", "predict t.csv --out RUN/model.safetensors --overwrite",
            digitrec("predict", csv, "--model", run, "--out", run / "model.safetensors", "--overwrite"),
            "overwrite", untouched=[(run / "model.safetensors", weights)])
    existing = work / "existing.csv"
    existing.write_text("mine\n")
    refused("5", "predict t.csv --out an existing file", digitrec("predict", csv, "--out", existing),
            "already exists", untouched=[(existing, b"mine\n")])


def runs_items(work: Path, data_dir: Path) -> None:
    for flag, value, fragment in (("--epochs", "0", "epochs"), ("--epochs", "-1", "epochs"),
                                  ("--batch-size", "0", "batch_size"), ("--lr", "nan", "lr"),
                                  ("--val-fraction", "0.999", "val_fraction")):
        out = work / f"bad{flag}{value}"
        refused("7", f"train {flag} {value}", digitrec("train", "--data", data_dir, flag, value, "--out", out),
                fragment)
        if out.exists():
            ROWS[-1]["ok"] = False
            ROWS[-1]["answer"] += " (left a folder)"
    # killed during epoch 1: a run folder with a config and no checkpoint restarts with --resume
    out = work / "killed"
    result = subprocess.Popen([sys.executable, "-m", "digitrec", "train", "--recipe", "fast", "--data", data_dir,
                               "--out", out, "--quiet"], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    while not (out / "config.json").exists() and result.poll() is None:
        time.sleep(0.05)
    result.kill()
    result.wait()
    resumed = digitrec("train", "--resume", out, "--quiet")
    correct("7", "train killed in epoch 1, then --resume", resumed.returncode == 0 and "run saved" in resumed.stdout,
            (resumed.stdout.strip().splitlines() or [resumed.stderr.strip()])[-1])
    (work / "stale").mkdir()
    shutil.copytree(out, work / "stale", dirs_exist_ok=True)
    (work / "stale" / ".checkpoint.pt.123.tmp").write_bytes(b"half")
    evaluated = digitrec("evaluate", "--model", work / "stale", "--data", data_dir)
    correct("6", "a run folder with a finished epoch is usable (evaluate)", evaluated.returncode == 0,
            evaluated.stdout.splitlines()[1] if evaluated.returncode == 0 else evaluated.stderr.strip())


def bad_inputs(work: Path, data_dir: Path) -> None:
    x = np.zeros((4, 28, 28), np.uint8)
    y = np.arange(4)
    cases = {
        "floats in 0-1": dict(x_test=np.random.default_rng(0).random((4, 28, 28)), y_test=y),
        "NaN": dict(x_test=np.full((4, 28, 28), np.nan), y_test=y),
        "complex": dict(x_test=x.astype(np.complex64), y_test=y),
        "bool": dict(x_test=x.astype(bool), y_test=y),
        "strings": dict(x_test=np.array([["a"] * 28] * 28), y_test=y[:1]),
        "string labels": dict(x_test=x, y_test=np.array(["a", "b", "c", "d"])),
    }
    for name, arrays in cases.items():
        path = write_npz(work / f"{name.replace(' ', '-')}.npz", **arrays)
        refused("9", f"evaluate .npz with {name}", digitrec("evaluate", "--data", path), path.name)
    garbage = work / "garbage.npz"
    with zipfile.ZipFile(garbage, "w") as z:
        z.writestr("x_test.npy", b"\x93NUMPY garbage")
    refused("9", "evaluate .npz with a garbage member", digitrec("evaluate", "--data", garbage), "garbage.npz")
    huge = work / "huge.npz"
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (100000000000, 28, 28), }"
    with zipfile.ZipFile(huge, "w") as z:
        z.writestr("x_test.npy", b"\x93NUMPY\x01\x00" + len(header + "\n").to_bytes(2, "little") +
                   (header + "\n").encode())
    refused("9", "evaluate .npz declaring a huge shape", digitrec("evaluate", "--data", huge), "huge.npz")

    run = work / "tampered"
    shutil.copytree(ROOT / "src/digitrec/bundled", run)
    weights = bytearray((run / "model.safetensors").read_bytes())
    weights[-100] ^= 0xFF
    (run / "model.safetensors").write_bytes(bytes(weights))
    refused("10", "tampered model.safetensors (torch engine)",
            digitrec("predict", ROOT / "examples", "--model", run, "--engine", "torch"), "SHA-256")
    for text in ("null", '"arch"', '{"arch": "cnn", "recipe": "nonsense"}'):
        run = work / f"config-{abs(hash(text))}"
        shutil.copytree(ROOT / "src/digitrec/bundled", run)
        (run / "config.json").write_text(text)
        refused("10", f"config.json = {text}", digitrec("predict", ROOT / "examples", "--model", run), "config.json")

    for target, fragment in ((Path("/proc/version/x.json"), ""), (work, "folder"),
                             (work / "t.csv" / "x.json", "")):
        refused("11", f"predict --out {target}", digitrec("predict", ROOT / "examples", "--out", target), fragment)
    refused("11", "export --out a folder", digitrec("export", "--out", work), "folder")
    refused("11", "train --out under a regular file",
            digitrec("train", "--recipe", "fast", "--data", data_dir, "--out", work / "t.csv" / "run"), "")
    refused("11", "data check --plots under a regular file",
            digitrec("data", "check", data_dir, "--plots", work / "t.csv" / "plots"), "")
    overflow = work / "overflow"
    overflow.mkdir()
    (overflow / "t10k-images-idx3-ubyte").write_bytes(idx_bytes([2**31, 2**31, 2**31], 8))
    (overflow / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes([10]) + bytes(10))
    refused("11", "IDX header whose dimensions overflow", digitrec("evaluate", "--data", overflow), "t10k-images")
    bomb = work / "bomb"
    bomb.mkdir()
    (bomb / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes([10**6, 28, 28]) + bytes(700 * 2**20)))
    (bomb / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes([10]) + bytes(10))
    refused("11", "a gzip bomb (700 MB inflated)", digitrec("evaluate", "--data", bomb), "t10k-images")
    fifo = work / "fifo.png"
    os.mkfifo(fifo)
    start = time.monotonic()
    refused("11", "predict a FIFO", digitrec("predict", fifo, timeout=30), "not a regular file")
    ROWS[-1]["ok"] &= time.monotonic() - start < 30
    folder = work / "twenty"
    folder.mkdir()
    for i in range(20):
        (folder / f"{i:02d}.png").write_bytes(digit_png())
    nan_tiff(folder / "nan.tiff")
    result = digitrec("predict", folder, "--json")
    answers = json.loads(result.stdout) if result.stdout.strip().startswith("[") else []
    correct("11", "predict a folder: 20 good PNGs and a NaN TIFF",
            result.returncode == 2 and sum(a["digit"] is not None for a in answers) == 20 and "Traceback" not in
            result.stderr and "nan.tiff" in result.stderr, f"{sum(a['digit'] is not None for a in answers)} read, "
            f"stderr: {result.stderr.strip().splitlines()[-1][:70] if result.stderr.strip() else '-'}")


def small_items(work: Path) -> None:
    header = ",".join(f"pixel{i}" for i in range(784))
    row = ",".join(["0"] * 300 + ["200"] * 100 + ["0"] * 384)
    bom = work / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (header + "\n" + row + "\n").encode())
    result = digitrec("predict", bom, "--out", work / "bom-out.csv")
    correct("12", "predict a CSV with a byte-order mark", result.returncode == 0, result.stdout.strip() or
            result.stderr.strip())
    cr = work / "cr.csv"
    cr.write_bytes((header + "\r" + row + "\r").encode())
    result = digitrec("predict", cr, "--out", work / "cr-out.csv")
    correct("12", "predict a CSV with CR-only line endings", result.returncode == 0, result.stdout.strip() or
            result.stderr.strip())
    big = work / "big.csv"
    big.write_text(header + "\n" + ",".join(["12345678901234567890"] + ["0"] * 783) + "\n")
    refused("12", "a 20-digit pixel value", digitrec("predict", big, "--out", work / "big-out.csv"),
            "12345678901234567890")
    folder = work / "mixed"
    folder.mkdir()
    (folder / "good.png").write_bytes(digit_png())
    (folder / "bad.png").write_bytes(b"not a picture")
    result = digitrec("predict", folder)
    correct("12", "a bad picture in a folder is named on stderr too",
            result.returncode == 2 and "bad.png" in result.stderr and "Traceback" not in result.stderr,
            result.stderr.strip()[:110])
    exif = work / "exif.jpg"
    image = Image.open(io.BytesIO(digit_png())).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05garbage")
    exif.write_bytes(buffer.getvalue())
    result = digitrec("predict", exif)
    correct("12", "a JPEG with corrupt EXIF: no warning on stderr",
            result.returncode == 0 and not result.stderr.strip(),
            result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr.strip())
    for content, name in ((b"", "empty"), (b"\x00\x00\x09\x03" + bytes(16), "wrong magic")):
        mnist = work / f"idx-{name.replace(' ', '-')}"
        mnist.mkdir()
        (mnist / "t10k-images-idx3-ubyte").write_bytes(content)
        refused("12", f"IDX file {name}: the file is named", digitrec("evaluate", "--data", mnist),
                "t10k-images-idx3-ubyte")


# ---------------------------------------------------------------- the server items


def server_items(work: Path) -> None:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(work / "serve.log", "w")  # noqa: SIM115 (the server writes to it while the checks run)
    server = subprocess.Popen([sys.executable, "-m", "digitrec", "serve", "--port", str(port), "--workers", "1"],
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        tiff = io.BytesIO()
        nan_tiff(work / "nan-upload.tiff")
        tiff.write((work / "nan-upload.tiff").read_bytes())
        sends = {
            "a NaN/inf float TIFF": dict(content=tiff.getvalue(), headers={"content-type": "image/tiff"}),
            "JSON pixels with a 400-digit integer": dict(content=b'{"pixels": [[' + b"9" * 400 + b"]]}",
                                                         headers={"content-type": "application/json"}),
            "a 100,000-deep JSON body": dict(content=b"[" * 100_000 + b"]" * 100_000,
                                             headers={"content-type": "application/json"}),
        }
        for name, request in sends.items():
            r = httpx.post(f"{url}/api/predict", timeout=30, **request)
            is_json = r.headers.get("content-type", "").startswith("application/json")
            correct("3", f"POST /api/predict {name}", 400 <= r.status_code < 500 and is_json and "error" in r.json(),
                    f"{r.status_code} {r.text[:90]}")
        r = httpx.get(f"{url}/docs", timeout=10)
        correct("4", "/docs served from the package (no CDN)", r.status_code == 200 and "cdn" not in r.text.lower(),
                f"{r.status_code}, {len(r.text)} bytes")
        r = httpx.get(f"{url}/api/health", headers={"host": "evil.example"}, timeout=10)
        correct("server", "a request for another Host name (DNS rebinding)", r.status_code in (400, 403, 421),
                f"{r.status_code} {r.text[:80]}")
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\npartial")
        time.sleep(0.5)
        r = httpx.get(f"{url}/api/health", timeout=10)
        text = (work / "serve.log").read_text()
        correct("1", "a client gone mid-upload: no traceback in the log, server answers",
                r.status_code == 200 and "Traceback" not in text, f"health {r.status_code}, log {len(text)} bytes")
    finally:
        server.terminate()
        server.wait(10)
        log.close()


def main() -> int:
    data_dir = os.environ.get("DIGITREC_DATA")
    work = Path(tempfile.mkdtemp(prefix="digitrec-hardening-"))
    try:
        if not data_dir:
            sys.path.insert(0, str(ROOT / "tests"))
            from conftest import synthetic_digits, write_idx

            data_dir = work / "mnist"
            data_dir.mkdir()
            for prefix, n, seed in (("train", 600, 0), ("t10k", 100, 1)):
                d = synthetic_digits(n, seed)
                write_idx(data_dir / f"{prefix}-images-idx3-ubyte", d.x)
                write_idx(data_dir / f"{prefix}-labels-idx1-ubyte", d.y)
        files_lost(work)
        runs_items(work, Path(data_dir))
        bad_inputs(work, Path(data_dir))
        small_items(work)
        server_items(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(r["reproduction"]) for r in ROWS)
    for r in ROWS:
        print(f"{'ok  ' if r['ok'] else 'FAIL'} #{r['item']:<6} {r['reproduction']:<{width}}  {r['answer']}")
    failed = sum(not r["ok"] for r in ROWS)
    print(f"\n{len(ROWS) - failed} of {len(ROWS)} reproductions answered cleanly")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
