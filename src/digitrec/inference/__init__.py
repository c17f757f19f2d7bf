"""One engine API (onnxruntime or torch), run folders, export, metrics, calibration and reports."""
