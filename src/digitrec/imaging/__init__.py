"""Turning a picture from the outside world into what a network reads: decoding with limits, paper and
light, ruled lines and frames, the digit fit and its refusals, morphology."""
