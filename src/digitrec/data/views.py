"""Training digits as other pens, papers and scanners give them, read back through preprocessing.

`synthetic` draws a digit as a picture: a phone photo on uneven paper, a felt-tip marker, a ball-point,
faint pencil on grainy paper, ruled paper, an old scanner's 8x8 block counts. `imaging.fit.to_mnist` then
brings the picture back to 28x28 exactly as it does a user's picture. Training on some of these views
(the recipe's `rendered` fraction) shows the network what preprocessing makes of real pens and paper,
which MNIST's own scanner never showed it. Views are made from the training digits only, once per
training set (a few milliseconds each, on every core), and kept in a cache file.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from digitrec import imaging
from digitrec.core import hardware, settings
from digitrec.core.errors import DigitrecError
from digitrec.core.files import atomic_path
from digitrec.data import pages, synthetic
from digitrec.imaging.decode import open_image
from digitrec.imaging.fit import to_mnist

CACHE_ENV = settings.CACHE
CHUNK = 500
# Every kind a recipe's `render_kinds` may name: the renderers of the project's real-world sets, and `pen`, a
# digit as the page bench's writers draw it.
RENDERERS = {"photos": synthetic.photo_of, **synthetic.RENDERERS, "pen": pages.pen_view}
# The kinds drawn unless a recipe names others. Not `boxed` (a digit stretched to fill a square): with it among
# the views, a student from random weights read MNIST validation at 99.20 % against 99.40 %, and boxed
# validation digits at 96.8 against 96.4 %; with a teacher reading the clean digit, 99.33 % and 97.8 %
# (docs/experiments.md). Nor `framed`: preprocessing takes the box away. The order matters: a digit's random
# number picks the kind by its place.
TRAINING_KINDS = ("photos", "scans", "marker", "ballpoint", "pencil", "ruled")


def render_views(images: np.ndarray, views: int, seed: int, processes: int | None = None,
                 kinds: tuple[str, ...] = TRAINING_KINDS) -> np.ndarray:
    """uint8 [views, N, 28, 28]: each of `images` (uint8 [N, 28, 28], MNIST style) drawn `views` times, each
    time by one of the renderers named in `kinds` picked at random, and read back by `to_mnist`.
    The same seed gives the same views whatever the number of processes."""
    unknown = [kind for kind in kinds if kind not in RENDERERS]
    if unknown or not kinds:
        raise DigitrecError(f"unknown kind of rendered view {unknown[0]!r}" if unknown else "no kind of view named",
                            expected="some of " + ", ".join(RENDERERS))
    starts = range(0, len(images), CHUNK)
    jobs = [(images[s : s + CHUNK], views, seed, s, tuple(kinds)) for s in starts]
    processes = processes or hardware.available_cores()
    # A bar on a terminal only (minutes for a whole training set); nothing in logs and tests.
    bar = tqdm(total=views * len(images), unit="picture", unit_scale=True, file=sys.stderr, disable=None)
    parts = []
    with bar, contextlib.ExitStack() as stack:
        if processes == 1 or len(jobs) == 1:
            done = (_render_chunk(*job) for job in jobs)
        else:
            done = stack.enter_context(ProcessPoolExecutor(processes)).map(_render_chunk, *zip(*jobs, strict=True))
        for part in done:
            parts.append(part)
            bar.update(part.shape[0] * part.shape[1])
    return np.concatenate(parts, axis=1) if parts else np.zeros((views, 0, 28, 28), np.uint8)


def _render_chunk(images: np.ndarray, views: int, seed: int, start: int, kinds: tuple[str, ...]) -> np.ndarray:
    renderers = [RENDERERS[kind] for kind in kinds]
    out = np.empty((views, len(images), 28, 28), np.uint8)
    for i, image in enumerate(images):
        rng = np.random.default_rng([seed, start + i])  # per digit: independent of how the work is split
        for v in range(views):
            render = renderers[int(rng.integers(len(renderers)))]
            try:
                out[v, i] = to_mnist(open_image(render(image, rng)))
            except DigitrecError:  # a view that preprocessing refuses (too faint, say): the digit as it is
                out[v, i] = image
    return out


def cached_views(images: np.ndarray, views: int, seed: int, kinds: tuple[str, ...] = TRAINING_KINDS) -> np.ndarray:
    """`render_views`, kept in $DIGITREC_CACHE (default $XDG_CACHE_HOME/digitrec, else ~/.cache/digitrec)
    under a name made from the images, the settings and the code that draws and preprocesses them: a change to
    any makes new views."""
    key = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    imaging_sources = sorted(Path(imaging.__file__).parent.glob("*.py"))  # every module a picture goes through
    drawers = (synthetic.__file__, pages.__file__) if "pen" in kinds else (synthetic.__file__,)  # pages: `pen` only
    for source in (*drawers, *imaging_sources, __file__):
        key.update(Path(source).read_bytes())
    key.update(f"{views} {seed} {','.join(kinds)}".encode())
    folder = settings.cache_dir()
    path = folder / f"views-{key.hexdigest()[:20]}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):  # a damaged cache file is made again, never a traceback
            cached = None
        if cached is not None and cached.shape == (views, *images.shape) and cached.dtype == np.uint8:
            return cached
    print(f"digitrec: drawing {views * len(images):,} training digits as other pens and papers see them, "
          f"once (cached in {folder})", file=sys.stderr, flush=True)
    out = render_views(images, views, seed, kinds=kinds)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, out, allow_pickle=False)
    except OSError:
        pass  # a cache that cannot be written costs time next run, nothing else
    return out
