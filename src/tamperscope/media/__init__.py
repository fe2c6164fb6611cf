"""Media: turn every video (and image, as a one-frame video) into shots, sampled frames, faces and clips.

Modules (pure cores first, the stage that does the I/O last):

- ``decode``: one streaming PyAV decode with a libavfilter graph (rotation, SAR, scaling), PTS times;
- ``shots``: PySceneDetect content/adaptive/threshold detectors fed frame by frame, cut F1;
- ``sampling``: shot-aware sampling over a bounded look-back buffer;
- ``quality``: pHash, variance of Laplacian, luminance, near-duplicates, quality weight;
- ``faces``: MediaPipe detection + 478-point mesh, aligned crops, IoU tracks;
- ``windows``: clip windows and ``load_window``;
- ``png``: fast lossless PNG writer;
- ``synthetic``: generated videos with known cuts and a face video, for tests and benchmarks;
- ``stage``: the ``video`` pipeline stage.
"""
