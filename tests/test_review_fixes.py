"""Small fixes found in review: damaged EXIF, huge JSON integers, oversized picture files, symlinks in the
collect folder, carriage returns in CSV cells, folder loops in `read`, unbounded counts on the command line."""
import io
import json

import pytest
from PIL import Image, ImageDraw

from digitrec.cli import main


def _broken_exif_png() -> bytes:
    im = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(im).line((20, 20, 80, 80), fill=0, width=8)
    out = io.BytesIO()
    im.save(out, format="PNG", exif=b"II")
    return out.getvalue()


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    from digitrec.inference.engine import load_predictor
    from digitrec.serving.app import create_app

    with TestClient(create_app(load_predictor(threads=1)), raise_server_exceptions=False) as c:
        yield c


def _run(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_damaged_exif_is_read_unrotated():
    from digitrec.imaging.decode import open_image

    image = open_image(_broken_exif_png())
    assert image.size == (100, 100)


def test_damaged_exif_in_cli_predict_folder(tmp_path, capsys):
    (tmp_path / "a.png").write_bytes(_broken_exif_png())
    code, out, err = _run(capsys, ["predict", str(tmp_path)])
    assert "Traceback" not in err and "SyntaxError" not in err
    assert "a.png" in out


@pytest.mark.parametrize("endpoint", ["/api/predict", "/api/read"])
def test_damaged_exif_over_http(client, endpoint):
    r = client.post(endpoint, content=_broken_exif_png(), headers={"content-type": "image/png"})
    assert r.status_code < 500 and r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("endpoint,key", [("/api/predict", "pixels"), ("/api/read", "image"),
                                          ("/api/predict", "image")])
def test_very_long_json_integer_is_a_400(client, endpoint, key):
    body = f'{{"{key}": {"9" * 5000}}}'
    r = client.post(endpoint, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in json.dumps(r.json())


def test_oversized_picture_file_is_refused_unread(tmp_path, capsys, monkeypatch):
    from digitrec.data import formats

    big = tmp_path / "S" / "big.png"
    big.parent.mkdir()
    with open(big, "wb") as f:  # sparse: no disk used
        f.truncate(formats.MAX_PICTURE_FILE_BYTES + 1)
    reads = []
    real_open = open

    def watched(file, *args, **kwargs):
        handle = real_open(file, *args, **kwargs)
        if isinstance(file, int):
            real_read = handle.read
            handle.read = lambda n=-1: reads.append(n) or real_read(n)
        return handle

    monkeypatch.setattr("builtins.open", watched)
    with pytest.raises(formats.DigitrecError, match="over the limit"):
        formats.read_picture_file(big)
    assert reads == []
    monkeypatch.undo()
    code, out, err = _run(capsys, ["predict", str(big.parent)])
    assert "big.png" in out + err and "over the limit" in out + err and "Traceback" not in err


@pytest.mark.parametrize("name", [".examples.csv", "3", ".inputs", ".tuned/tune.log", ""])
def test_collect_folder_with_a_link_is_refused(tmp_path, name):
    from digitrec.core.errors import DigitrecError
    from digitrec.serving.corrections import Collector

    outside = tmp_path / "outside.csv"
    outside.write_text("keep\n")
    folder = tmp_path / "COL"
    if name:
        (folder / ".tuned").mkdir(parents=True)
        (folder / name).symlink_to(outside if "." in name else tmp_path)
    else:
        folder.symlink_to(tmp_path)
    with pytest.raises(DigitrecError, match="symbolic link"):
        Collector(folder)
    assert outside.read_text() == "keep\n"


def test_collect_log_is_never_appended_through_a_link(tmp_path):
    from digitrec.serving.corrections import _append_line

    outside = tmp_path / "outside.csv"
    outside.write_text("keep\n")
    (tmp_path / "log").symlink_to(outside)
    with pytest.raises(OSError):
        _append_line(tmp_path / "log", "1/x.png,1,draw,1\n")
    assert outside.read_text() == "keep\n"


def test_carriage_return_in_a_cell_is_quoted_and_keeps_the_row_whole():
    import csv

    from digitrec.core.csvout import csv_text

    text = csv_text(["file", "digit"], [["a\rb.png", 3], ["c\nd.png", 4], ["=1+1\r.png", 5], ["plain", -0.5]])
    assert text.startswith("file,digit\n") and text.endswith("plain,-0.5\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [["file", "digit"], ["a\rb.png", "3"], ["c\nd.png", "4"], ["'=1+1\r.png", "5"], ["plain", "-0.5"]]
    assert '"a\rb.png"' in text


def test_read_folder_does_not_go_back_through_a_loop(tmp_path, capsys):
    from digitrec.data import synthetic

    images, _ = synthetic.drawn_digits(2, seed=3)
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.png").write_bytes(synthetic.png_bytes(images[0]))
    (tmp_path / "sub" / "b.png").write_bytes(synthetic.png_bytes(images[1]))
    (tmp_path / "sub" / "loop").symlink_to("..")
    (tmp_path / "bad.png").write_bytes(b"not a picture")  # before sub/ in the walk
    code, out, err = _run(capsys, ["read", str(tmp_path), "--json"])
    assert "Traceback" not in err
    rows = {r["file"]: r for r in json.loads(out)} if out.lstrip().startswith("[") else None
    assert rows is not None, out
    loop = next(r for name, r in rows.items() if name.endswith("loop"))
    assert "loop" in loop["error"] and "readable" not in loop["error"] and "sub/loop)" not in loop["error"]
    assert sum(name.endswith("b.png") for name in rows) == 1


@pytest.mark.parametrize("argv", [
    ["sweep", "--space", "lr=0.1,0.2", "--trials", "100000000000", "--out", "S"],
    ["ensemble", "--train", "100000000", "--out", "E"],
    ["train-lines", "--lines", "1000000000000", "--out", "L"],
])
def test_counts_on_the_command_line_have_an_upper_bound(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, argv)
    assert code == 2 and "too many" in err and "at most" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_damaged_exif_in_a_correction_is_kept(tmp_path):
    from fastapi.testclient import TestClient

    from digitrec.inference.engine import load_predictor
    from digitrec.serving.app import create_app
    from digitrec.serving.corrections import Collector

    app = create_app(load_predictor(threads=1), collector=Collector(tmp_path / "COL"))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/api/correct", files={"file": ("x.png", _broken_exif_png(), "image/png")}, data={"label": "1"})
    assert r.status_code < 500 and r.headers["content-type"].startswith("application/json"), r.text
