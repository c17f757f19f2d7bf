import gzip
import hashlib
import http.server
import io
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import write_idx, write_kaggle_csv
from PIL import Image

from digitrec import data
from digitrec.core.errors import DigitrecError
from digitrec.data import formats


def test_real_mnist_matches_published_counts(mnist):
    assert mnist["train"].x.shape == (60000, 28, 28) and mnist["train"].x.dtype == np.uint8
    assert mnist["test"].x.shape == (10000, 28, 28)
    assert np.bincount(mnist["train"].y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist["test"].y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(mnist["train"].x.mean() - 33.318) < 0.01


@pytest.mark.parametrize("compress", [False, True])
def test_idx_folder_raw_or_gzipped(tmp_path, tiny_digits, compress):
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", tiny_digits.x, compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", tiny_digits.y, compress)
    assert data.detect_kind(tmp_path) == "mnist-dir"
    loaded = data.load(tmp_path)
    assert np.array_equal(loaded.x, tiny_digits.x) and np.array_equal(loaded.y, tiny_digits.y)


def test_truncated_idx_names_file_and_sizes(tmp_path, tiny_digits):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", tiny_digits.x)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DigitrecError, match=r"train-images-idx3-ubyte: truncated: 39100 bytes.*expected 39200"):
        data.read_idx(path)


def test_truncated_gzip_is_refused(tmp_path, tiny_digits):
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", tiny_digits.x, compress=True)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(DigitrecError, match="truncated or corrupt gzip"):
        data.read_idx(path)


def test_labels_count_must_match_images(tmp_path, tiny_digits):
    write_idx(tmp_path / "train-images-idx3-ubyte", tiny_digits.x)
    write_idx(tmp_path / "train-labels-idx1-ubyte", tiny_digits.y[:-1])
    with pytest.raises(DigitrecError, match="49 labels for 50 images"):
        data.load_splits(tmp_path)


def test_kaggle_csv_train_and_test(tmp_path, tiny_digits):
    train = data.load(write_kaggle_csv(tmp_path / "train.csv", tiny_digits.x, tiny_digits.y))
    assert np.array_equal(train.x, tiny_digits.x) and np.array_equal(train.y, tiny_digits.y)
    test = data.load(write_kaggle_csv(tmp_path / "test.csv", tiny_digits.x, None))
    assert test.y is None and np.array_equal(test.x, tiny_digits.x)


def test_csv_with_crlf_and_decimal_integers_loads_the_same(tmp_path, tiny_digits):
    path = write_kaggle_csv(tmp_path / "train.csv", tiny_digits.x[:20], tiny_digits.y[:20])
    header, *rows = path.read_text().splitlines()
    (tmp_path / "crlf.csv").write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode())
    (tmp_path / "floats.csv").write_text("\n".join([header, *(",".join(f"{v}.0" for v in r.split(",")) for r in rows)]))
    for name in ("crlf.csv", "floats.csv"):
        loaded = data.load(tmp_path / name)
        assert np.array_equal(loaded.x, tiny_digits.x[:20]) and np.array_equal(loaded.y, tiny_digits.y[:20])


def test_csv_detected_by_content_not_name(tmp_path, tiny_digits):
    path = write_kaggle_csv(tmp_path / "digits.txt", tiny_digits.x, tiny_digits.y)
    assert data.detect_kind(path) == "csv"


def _corrupt_csv(tmp_path, tiny_digits, line: int, edit) -> Path:
    path = write_kaggle_csv(tmp_path / "train.csv", tiny_digits.x[:5], tiny_digits.y[:5])
    lines = path.read_text().splitlines()
    fields = lines[line - 1].split(",")
    lines[line - 1] = ",".join(edit(fields))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "edit", "message"),
    [
        (3, lambda f: f[:10] + [""] + f[11:], r"train.csv, line 3, column 'pixel9': missing value"),
        (4, lambda f: f[:5] + ["abc"] + f[6:], r"train.csv, line 4, column 'pixel4': 'abc' is not a number"),
        (2, lambda f: [*f, "0"], r"train.csv, line 2: 786 values \(expected 785\)"),
        (5, lambda f: f[:-10], r"train.csv, line 5: 775 values \(expected 785\)"),
        (6, lambda f: f[:100] + ["300"] + f[101:], r"line 6, column 'pixel99': pixel value 300 \(expected 0-255\)"),
        (3, lambda f: ["12"] + f[1:], r"line 3, column 'label': label 12 \(expected a digit 0-9\)"),
        (2, lambda f: f[:50] + ["-1"] + f[51:], r"line 2, column 'pixel49': pixel value -1"),
        (4, lambda f: f[:7] + ["12.5"] + f[8:], r"train.csv, line 4: 12.5 is not an integer"),
        (3, lambda f: f[:20] + ["99999999999999999999"] + f[21:],
         r"line 3, column 'pixel19': pixel value 99999999999999999999 \(expected 0-255\)"),
    ],
    ids=["missing", "non-numeric", "extra-column", "short-row", "over-255", "bad-label", "negative", "fraction",
         "20-digits"],
)
def test_bad_csv_names_line_and_column(tmp_path, tiny_digits, line, edit, message):
    with pytest.raises(DigitrecError, match=message):
        data.load(_corrupt_csv(tmp_path, tiny_digits, line, edit))


def _cells_csv(tmp_path, tiny_digits, cells: dict[tuple[int, int], str]) -> Path:
    """train.csv of 5 digits with cells[(line, column)] written as given (column 0 is the label)."""
    path = write_kaggle_csv(tmp_path / "train.csv", tiny_digits.x[:5], tiny_digits.y[:5])
    lines = [line.split(",") for line in path.read_text().splitlines()]
    for (line, column), text in cells.items():
        lines[line - 1][column] = text
    path.write_bytes("\n".join(",".join(fields) for fields in lines).encode("utf-8", "surrogateescape") + b"\n")
    return path


def test_csv_cells_pandas_read_as_numbers_load_the_same(tmp_path, tiny_digits):
    # Quoted, padded, signed or written with an exponent or a fraction of zero: the values pandas read them as.
    path = _cells_csv(tmp_path, tiny_digits, {(2, 1): '"0"', (3, 2): " 0 ", (4, 3): "+0", (5, 4): "0e5",
                                              (6, 5): "\t0.0", (2, 0): f'"{tiny_digits.y[0]}"'})
    loaded = data.load(path)
    assert np.array_equal(loaded.x, tiny_digits.x[:5]) and np.array_equal(loaded.y, tiny_digits.y[:5])


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ({(3, 10): "NA"}, r"line 3, column 'pixel9': missing value"),
        ({(4, 2): "null"}, r"line 4, column 'pixel1': missing value"),
        ({(3, 7): " "}, r"line 3, column 'pixel6': ' ' is not a number"),  # numpy alone read it as 0
        ({(2, 5): "TRUE"}, r"line 2, column 'pixel4': 'TRUE' is not a number"),
        ({(2, 5): '"1', (2, 6): '5"'}, r"line 2, column 'pixel4': '1,5' is not a number"),
        ({(2, 9): "abc", (5, 3): "x"}, r"line 5, column 'pixel2': 'x' is not a number"),  # column by column
        ({(2, 9): "abc", (3, 1): ""}, r"line 2, column 'pixel8': 'abc' is not a number"),  # before a missing one
        ({(4, 6): "1e400"}, r"line 4, column 'pixel5': pixel value 1e400 \(expected 0-255\)"),
        ({(3, 4): "2\udcff"}, r"train.csv: malformed CSV: 'utf-8' codec can't decode byte 0xff in position 1"),
        ({(3, 4): '"7'}, r"train.csv, line 3: malformed CSV: a quoted cell is never closed"),
    ],
    ids=["NA", "null", "spaces", "TRUE", "quoted-comma", "column-first", "word-first", "overflow", "not-utf8",
         "open-quote"],
)
def test_an_odd_csv_cell_is_named_as_pandas_named_it(tmp_path, tiny_digits, cells, message):
    with pytest.raises(DigitrecError, match=message):
        data.load(_cells_csv(tmp_path, tiny_digits, cells))


def test_csv_with_wrong_header(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DigitrecError, match=r"bad.csv, line 1: header has 3 columns"):
        data.load(path)


def test_npz(tmp_path, tiny_digits):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=tiny_digits.x, y_train=tiny_digits.y, x_test=tiny_digits.x[:10], y_test=tiny_digits.y[:10])
    splits = data.load_splits(path)
    assert len(splits["train"]) == 50 and len(splits["test"]) == 10
    assert len(data.load(path)) == 10  # evaluation uses the test split


def test_labelled_image_folder(tmp_path, tiny_digits):
    for i, (image, label) in enumerate(zip(tiny_digits.x[:20], tiny_digits.y[:20], strict=True)):
        (tmp_path / str(label)).mkdir(exist_ok=True)
        Image.fromarray(image).save(tmp_path / str(label) / f"{i}.png")
    loaded = data.load(tmp_path)
    assert data.detect_kind(tmp_path) == "image-dir"
    assert sorted(loaded.y.tolist()) == sorted(tiny_digits.y[:20].tolist())


def test_not_an_image_in_a_training_folder_names_the_file(tmp_path):
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "broken.png").write_bytes(b"this is not a png")
    with pytest.raises(DigitrecError, match=r"broken.png: not a readable image"):
        data.load(tmp_path)


def test_missing_path_and_unset_env(tmp_path, monkeypatch):
    with pytest.raises(DigitrecError, match="no such file"):
        data.load(tmp_path / "nope")
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    with pytest.raises(DigitrecError, match="DIGITREC_DATA"):
        data.load(None)


def test_stratified_split_is_reproducible_and_proportional():
    labels = np.random.default_rng(0).choice(10, size=60000, p=np.linspace(0.06, 0.14, 10))
    a_train, a_val = data.stratified_split(labels, 0.1, seed=7)
    b_train, b_val = data.stratified_split(labels, 0.1, seed=7)
    _, c_val = data.stratified_split(labels, 0.1, seed=8)
    assert np.array_equal(a_val, b_val) and not np.array_equal(a_val, c_val)
    assert abs(len(a_val) - 6000) <= 5 and len(a_train) + len(a_val) == 60000
    assert not set(a_train.tolist()) & set(a_val.tolist())
    counts = np.bincount(labels[a_val])
    assert np.allclose(counts, np.bincount(labels) * 0.1, atol=1)


def test_training_load_never_touches_the_test_split(digits_dir, digits):
    train, val = data.load_for_training(digits_dir, 0.1, 0)
    assert len(train) + len(val) == len(digits["train"]) and len(val) == 200
    test_images = {image.tobytes() for image in digits["test"].x}
    assert not any(image.tobytes() in test_images for image in np.concatenate([train.x, val.x]))


def test_check_clean_mnist(mnist_dir):
    report = data.check(mnist_dir)
    assert report.clean, report.problems
    assert report.splits["test"]["label_counts"][1] == 1135


def test_check_reports_duplicates_and_imbalance(tmp_path, tiny_digits):
    x = np.concatenate([tiny_digits.x, tiny_digits.x[:3]])
    y = np.concatenate([tiny_digits.y, tiny_digits.y[:3]])
    path = write_kaggle_csv(tmp_path / "train.csv", x, y)
    report = data.check(path)
    assert not report.clean
    assert any("3 duplicate images" in p for p in report.problems)
    ones = write_kaggle_csv(tmp_path / "ones.csv", tiny_digits.x[:5], np.ones(5, dtype=int))
    assert any("no examples of digit" in p for p in data.check(ones).problems)


class _LoopbackMirror:
    """A real HTTP server on 127.0.0.1 serving one folder, as an MNIST mirror would."""

    def __init__(self, folder: Path):
        handler = partial(_QuietHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.url

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_verifies_checksums(tmp_path, digits_dir, digits, monkeypatch):
    # The synthetic set stands in for MNIST: its own files and checksums, served by a real HTTP server.
    sums = {p.name.removesuffix(".gz"): hashlib.sha256(gzip.decompress(p.read_bytes())).hexdigest()
            for p in digits_dir.glob("*.gz")}
    monkeypatch.setattr(data, "MNIST_FILES", sums)
    with _LoopbackMirror(digits_dir) as url:
        dest = data.download_mnist(tmp_path / "cache", mirrors=(url,))
    assert np.array_equal(data.load(dest, "train").x, digits["train"].x)

    junk = tmp_path / "junk"
    junk.mkdir()
    for name in data.MNIST_FILES:
        (junk / f"{name}.gz").write_bytes((digits_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    with _LoopbackMirror(junk) as url, pytest.raises(DigitrecError, match="checksum"):
        data.download_mnist(tmp_path / "cache2", mirrors=(url,))
    assert not (tmp_path / "cache2" / "train-images-idx3-ubyte.gz").exists()


def test_download_tries_the_next_mirror_after_a_corrupt_file_or_a_gzip_bomb(tmp_path, digits_dir, monkeypatch):
    sums = {p.name.removesuffix(".gz"): hashlib.sha256(gzip.decompress(p.read_bytes())).hexdigest()
            for p in digits_dir.glob("*.gz")}
    monkeypatch.setattr(data, "MNIST_FILES", sums)
    corrupt, bomb = tmp_path / "corrupt", tmp_path / "bomb"
    corrupt.mkdir()
    bomb.mkdir()
    zeros = gzip.compress(bytes(100 << 20))  # 100 KB that unpack to 100 MB
    for name in sums:
        good = (digits_dir / f"{name}.gz").read_bytes()
        (corrupt / f"{name}.gz").write_bytes(good[:20] + b"\x00" * 50 + good[70:])
        (bomb / f"{name}.gz").write_bytes(zeros)
    with _LoopbackMirror(corrupt) as bad, _LoopbackMirror(bomb) as huge, _LoopbackMirror(digits_dir) as fine:
        dest = data.download_mnist(tmp_path / "cache", mirrors=(bad, huge, fine))
        assert sorted(p.name for p in dest.iterdir()) == sorted(f"{n}.gz" for n in sums)
        with pytest.raises(DigitrecError) as refused:
            data.download_mnist(tmp_path / "cache2", mirrors=(bad, huge))
    message = str(refused.value)
    assert "corrupt gzip stream" in message and "unpacks to over 67,108,864 bytes" in message
    assert not any((tmp_path / "cache2").iterdir())


def test_a_local_gzip_bomb_is_refused_before_it_fills_memory(tmp_path, monkeypatch):
    from digitrec.data import formats

    monkeypatch.setattr(formats, "MAX_INFLATED", 1 << 20)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3, 0, 0, 0, 200, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(8 << 20)))
    with pytest.raises(DigitrecError, match="unpacks to over 1,048,576 bytes"):
        formats.read_idx(path)


@pytest.mark.parametrize(("arrays", "message"), [
    ({"x_train": np.random.default_rng(0).random((5, 28, 28)), "y_train": np.arange(5)}, "floats in 0-1"),
    ({"x_train": np.full((5, 28, 28), np.nan), "y_train": np.arange(5)}, "NaN or infinite"),
    ({"x_train": np.zeros((5, 28, 28), complex), "y_train": np.arange(5)}, "holds complex128 values"),
    ({"x_train": np.zeros((5, 28, 28), bool), "y_train": np.arange(5)}, "booleans"),
    ({"x_train": np.array(["a"] * 5), "y_train": np.arange(5)}, "holds <U1 values"),
    ({"x_train": np.zeros((5, 28, 28), np.uint8), "y_train": np.array(list("abcde"))}, "holds <U1 values"),
    ({"x_train": np.zeros((5, 28, 28), np.uint8), "y_train": np.arange(5) + 0.5}, "integer labels"),
], ids=["floats-0-1", "nan", "complex", "bool", "strings", "string-labels", "fractional-labels"])
def test_npz_with_the_wrong_kind_of_values_is_refused(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DigitrecError, match=message) as raised:
        data.load(path)
    assert str(path) in str(raised.value)


def test_npz_whose_header_declares_a_huge_array_is_refused_before_reading(tmp_path):
    import zipfile

    path = tmp_path / "huge.npz"
    header = {"descr": "|u1", "fortran_order": False, "shape": (10**9, 28, 28)}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", buffer.getvalue() + b"\0" * 100)
    with pytest.raises(DigitrecError, match="too large"):
        data.load(path)
    garbage = tmp_path / "garbage.npz"
    with zipfile.ZipFile(garbage, "w") as archive:
        archive.writestr("x_train.npy", b"\x93NUMPY garbage")
    with pytest.raises(DigitrecError, match="x_train is damaged"):
        data.load(garbage)


def test_csv_with_a_byte_order_mark_or_cr_line_endings_loads_the_same(tmp_path, tiny_digits):
    path = write_kaggle_csv(tmp_path / "train.csv", tiny_digits.x[:10], tiny_digits.y[:10])
    text = path.read_bytes()
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + text)
    cr = tmp_path / "cr.csv"
    cr.write_bytes(text.replace(b"\n", b"\r"))
    for variant in (bom, cr):
        loaded = data.load(variant)
        assert np.array_equal(loaded.x, tiny_digits.x[:10]) and np.array_equal(loaded.y, tiny_digits.y[:10])


@pytest.mark.parametrize("content, message", [
    (b"", r"train-images-idx3-ubyte: file is empty"),
    (b"XXXXXXXXXXXXXXXX", r"train-images-idx3-ubyte: not an IDX file \(magic 58585858\)"),
])
def test_an_mnist_file_that_is_not_idx_is_named_not_the_folder(tmp_path, content, message):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(content)
    (folder / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 1, 3]))
    with pytest.raises(DigitrecError, match=message):
        data.load(folder)


def test_an_idx_header_whose_dimensions_overflow_is_refused(tmp_path):
    # 2**31 x 2**31 x 2**31 bytes: numpy's int64 product wraps to 0, which an empty file would have matched
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + (2**31).to_bytes(4, "big") * 3)
    with pytest.raises(DigitrecError, match="truncated: 0 bytes of data"):
        formats.read_idx(path)


def test_image_files_stream_in_sorted_path_order_without_hidden_ones(tmp_path):
    for name in ("b.png", "a.png", "a/x.png", "a/sub/y.jpg", "a-b/z.png", "c.txt", ".hidden/h.png", "a/.h.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = list(formats.iter_image_files(tmp_path))
    expected = sorted(p for p in tmp_path.rglob("*") if p.suffix in (".png", ".jpg")
                      and not any(part.startswith(".") for part in p.relative_to(tmp_path).parts))
    assert found == expected and len(found) == 5


def test_the_same_digits_in_two_folders_are_the_same_data(digits_dir, tmp_path):
    import shutil

    copy = tmp_path / "mnist"
    shutil.copytree(digits_dir, copy)
    (copy / "README.md").write_text("where these came from")  # as ../shared/data/mnist has, with SHA256SUMS
    (copy / "SHA256SUMS").write_text("0" * 64 + "  train-images-idx3-ubyte.gz\n")
    assert data.fingerprint(copy) == data.fingerprint(digits_dir)
    labels = copy / "train-labels-idx1-ubyte.gz"
    changed = bytearray(gzip.decompress(labels.read_bytes()))
    changed[-1] = (changed[-1] + 1) % 10  # one label changed: other data
    labels.write_bytes(gzip.compress(bytes(changed)))
    assert data.fingerprint(copy) != data.fingerprint(digits_dir)
