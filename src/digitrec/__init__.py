"""digitrec: handwritten digit recognition on a plain CPU."""

from digitrec.core.errors import DigitrecError
from digitrec.core.version import __version__


def load_model(path=None, engine: str = "auto"):
    """Load a run folder (or the bundled model when `path` is None). Its `predict`, `predict_proba` and `read`
    take arrays, PIL images, bytes, paths and folders, with either engine. engine "auto": onnxruntime when the
    run has a model.onnx (the bundled model does), without importing torch; "torch" (or a run without
    model.onnx): PyTorch, from the train extra (`pip install "digitrec[train]"`)."""
    from digitrec.inference.engine import load_model  # `import digitrec` stays light: nothing loads until asked

    return load_model(path, engine)


def tune(examples, out, model=None, replay=None, steps: int | None = None):
    """Teach a run your handwriting: fine-tune `model` (a run folder; the bundled model when None) on the
    labelled pictures in `examples` (DIR/<digit>/*.png) into the new run folder `out`, replaying MNIST
    training digits from `replay` (default $DIGITREC_DATA). Returns the tuned model as a `Predictor`.

        >>> import digitrec
        >>> mine = digitrec.tune("my-digits/", "runs/mine")
        >>> mine.predict("seven.png")
    """
    from digitrec.core.hardware import require_torch

    require_torch("digitrec.tune")  # the train extra: a DigitrecError naming it, not an ImportError
    from digitrec.inference.engine import Predictor
    from digitrec.training.hand import TuneSettings, tune_run

    settings = TuneSettings() if steps is None else TuneSettings(steps=steps)
    tune_run(examples, out, model, replay, settings)
    return Predictor.load(out)


__all__ = ["DigitrecError", "__version__", "load_model", "tune"]
