"""Default settings shared by the Editor and the CLI (kept free of heavy imports)."""

# Face detections scoring below this are ignored: on the test photos real faces scored >= 0.34 and the
# one false detection (the astronaut's suit) 0.12.
DEFAULT_MIN_FACE_SCORE = 0.25
