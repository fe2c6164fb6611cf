"""Media: turn every video (and image, as a one-frame video) into shots, sampled frames, faces and clips.

Modules (pure cores first, the per-analysis session last):

- ``frames`` and ``limits``: what both decoders share (the normalised frame, the size rule, scrubbed errors) and
  the budgets they enforce on what they decode;
- ``video_reader``: one streaming PyAV decode with a libavfilter graph (rotation, SAR, scaling), PTS times;
- ``orientation``: EXIF orientation, the one place arrays and points are turned upright;
- ``image``: still images read once with Pillow (stored grid for the detectors, or one upright frame);
- ``audio``: the audio track, collected from the video reader's demux pass or extracted on its own;
- ``shots``: PySceneDetect content/adaptive/threshold detectors fed frame by frame, cut F1;
- ``sampling``: shot-aware sampling over a bounded look-back buffer;
- ``quality``: pHash, variance of Laplacian, luminance, near-duplicates, quality weight;
- ``faces``: MediaPipe detection + 478-point mesh, aligned crops, IoU tracks;
- ``windows``: clip windows and ``load_window``;
- ``png``: fast lossless PNG writer;
- ``session``: one media session per analysis (the file fetched once, the image decoded once, cached frames).

The ``video`` stage that drives them is ``tamperscope.stages.video``; generated test media live in ``samples``.
"""
