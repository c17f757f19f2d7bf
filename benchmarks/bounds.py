"""Bounded work for hostile inputs: peak memory (the process's VmHWM) and wall time of one CLI command on each,
in a fresh process, imports included. Targets: `read` of a 40000x12 PNG at most 200 MB and 1 s of reading; the
.npz and gzip bombs refused under 1.2 GB.

    python benchmarks/bounds.py
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
from common import machine_line, print_table
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_bounds import _deflated_zeros, _strokes, gzip_bomb, idx_header, npy_header, zip_bomb  # noqa: E402

PROBE = """import json, sys, time
from pathlib import Path
start = time.perf_counter()
try:
    if sys.argv[2] == 'open_image':  # what the server does with an upload
        from digitrec.imaging.decode import open_image
        status = open_image(Path(sys.argv[3]).read_bytes()).size
    else:
        from digitrec.cli import main
        status = main(sys.argv[2:])
except SystemExit as e:
    status = e.code
except Exception as e:
    print(e, file=sys.stderr)
    status = type(e).__name__
peak = int(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))
json.dump({'status': status, 'seconds': time.perf_counter() - start, 'peak_mb': peak / 1024}, open(sys.argv[1], 'w'))
"""


def png_of_zeros(width: int, height: int) -> bytes:
    """A transparent RGBA PNG, width x height, whose pixels are a few KB of deflate: made in milliseconds."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">L", len(body)) + kind + body + struct.pack(">L", zlib.crc32(kind + body))

    size = (4 * width + 1) * height
    adler, left, block = 1, size, bytes(1 << 24)
    while left > 0:
        adler = zlib.adler32(block[: min(left, len(block))], adler)
        left -= len(block)
    idat = b"\x78\xda" + _deflated_zeros(b"", size) + struct.pack(">L", adler)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">LLBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def inputs(folder: Path) -> list[tuple[str, list[str]]]:
    small = folder / "small.png"
    Image.fromarray(_strokes(64, 64, 20)).save(small)
    wide = folder / "wide.png"
    Image.fromarray(_strokes(40_000, 12, 6)).save(wide, optimize=True)
    png = png_of_zeros(8000, 8000)
    ico = folder / "bomb.ico"
    ico.write_bytes(struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 22) + png)
    shape = (4_200_000, 28, 28)
    npz = zip_bomb(folder / "bomb.npz", "x_train.npy", npy_header(shape), int(np.prod(shape)))
    declares = gzip_bomb(folder / "declares-idx3-ubyte.gz", idx_header(2_000_000, 28, 28), 735 << 20)
    trails = gzip_bomb(folder / "trails-idx3-ubyte.gz", idx_header(60_000, 28, 28), 1200 << 20)
    return [("read 64x64 PNG (the command's own cost)", ["read", str(small)]),
            (f"read 40000x12 PNG ({wide.stat().st_size // 1024} KB)", ["read", str(wide)]),
            (f"open_image of an ICO around an 8000x8000 PNG ({ico.stat().st_size // 1024} KB)",
             ["open_image", str(ico)]),
            (f"data check .npz declaring 3.3 GB ({npz.stat().st_size // 1024} KB)", ["data", "check", str(npz)]),
            (f"data check gzip declaring 1.57 GB ({declares.stat().st_size // 1024} KB)",
             ["data", "check", str(declares)]),
            (f"data check gzip of 1.25 GB ({trails.stat().st_size // 1024} KB)", ["data", "check", str(trails)])]


def main() -> None:
    print(machine_line())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, argv in inputs(folder):
            probe = folder / "probe.json"
            run = subprocess.run([sys.executable, "-c", PROBE, str(probe), *argv], capture_output=True, text=True,
                                 timeout=600)
            measured = json.loads(probe.read_text())
            lines = run.stderr.strip().splitlines() + run.stdout.strip().splitlines()
            said = next((line for line in lines if line.startswith(("problem:", "digitrec: error"))), lines[-1:] or "")
            said = said if isinstance(said, str) else "".join(said)
            rows.append({"input": name, "exit": measured["status"], "peak MB": round(measured["peak_mb"]),
                         "seconds": round(measured["seconds"], 2), "answer": said.replace(tmp + "/", "")[:90]})
    print_table(rows)


if __name__ == "__main__":
    main()
