"""digitrec: handwritten digit recognition on a plain CPU."""

from digitrec.errors import DigitrecError
from digitrec.version import __version__


def load_model(path=None):
    """Load a run folder (or the bundled model when `path` is None) as a `Predictor`."""
    from digitrec.predict import Predictor  # `import digitrec` stays light: no torch until a model is asked for

    return Predictor.load(path)


def tune(examples, out, model=None, replay=None, steps: int | None = None):
    """Teach a run your handwriting: fine-tune `model` (a run folder; the bundled model when None) on the
    labelled pictures in `examples` (DIR/<digit>/*.png) into the new run folder `out`, replaying MNIST
    training digits from `replay` (default $DIGITREC_DATA). Returns the tuned model as a `Predictor`.

        >>> import digitrec
        >>> mine = digitrec.tune("my-digits/", "runs/mine")
        >>> mine.predict("seven.png")
    """
    from digitrec.predict import Predictor
    from digitrec.tune import TuneSettings, tune_run

    settings = TuneSettings() if steps is None else TuneSettings(steps=steps)
    tune_run(examples, out, model, replay, settings)
    return Predictor.load(out)


__all__ = ["DigitrecError", "__version__", "load_model", "tune"]
