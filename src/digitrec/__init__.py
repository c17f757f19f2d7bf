"""digitrec: handwritten digit recognition on a plain CPU."""

from digitrec.errors import DigitrecError
from digitrec.version import __version__


def load_model(path=None):
    """Load a run folder (or the bundled model when `path` is None) as a `Predictor`."""
    from digitrec.predict import Predictor  # `import digitrec` stays light: no torch until a model is asked for

    return Predictor.load(path)


__all__ = ["DigitrecError", "__version__", "load_model"]
