"""What every path into a model shares: the picture's size, the class count, the ONNX graph's names, the
product's "unsure" threshold and the picture formats digitrec decodes."""

IMAGE_SIZE = 28  # MNIST's side, in pixels: what every model reads
NUM_CLASSES = 10
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
INPUT_NAME, OUTPUT_NAME = "image", "logits"  # the ONNX graph's names
# Below this calibrated confidence a reading is reported as unsure (`predict`, `evaluate`, the API and the
# page say so). Chosen on validation data: MODEL_CARD.md gives the accuracy above it and the share below.
UNSURE_BELOW = 0.7
# The picture formats digitrec decodes (Pillow's names; an MPO, a camera's JPEG, opens as JPEG), and how errors
# name them. Only these: Pillow knows 40 more, and some (ICO, CUR) decode a whole embedded picture when opened,
# before its size can be checked.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
IMAGE_FORMATS_TEXT = "PNG, JPEG, GIF, BMP, WebP or TIFF"
