"""Synthetic face forgeries made from real face crops, to train the frame and clip detectors without fakes.

Three generators, all pure functions of arrays and a ``numpy.random.Generator`` (the same seed gives the same
output):

- :func:`.blending.self_blend` -- a Self-Blended Image (SBI) [1]_: a real crop blended into itself through a
  deformed landmark-hull mask after one copy was colour-, quality- and scale-jittered. The result carries the
  generic traces of face blending (boundary, colour and frequency mismatch, slight misalignment) without any
  identity change, so a detector trained on it does not overfit one manipulation method.
- :func:`.swap.landmark_swap` -- a crude face swap between two identities: piecewise-affine warp of the source
  face onto the destination's landmarks, Reinhard colour transfer in Lab [2]_, blend through the destination hull.
- :func:`.temporal.inconsistent_clip` -- a temporally inconsistent fake clip for the clip model: per-frame
  self-blends whose mask deformation, jitter and blend ratio drift from frame to frame, so the blending boundary
  flickers.

:func:`.masks.hull_mask` is the mask all three blend through, and :func:`.landmarks.landmarks_in_crop` maps frame
landmarks into the pixels of the aligned crop :class:`tamperscope.media.faces.FaceAnalyzer` cuts.

Landmarks are the MediaPipe 478-point face mesh given as ``N x 2`` (or ``N x 3``, z ignored) crop pixels;
fewer points (any ``N >= 3``) work too, with the whole point set's hull as the only mask region.

The module-level constants of each module document every random range it draws.

References
----------
.. [1] K. Shiohara and T. Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022,
   doi:10.1109/CVPR52688.2022.01816.
.. [2] E. Reinhard, M. Adhikhmin, B. Gooch and P. Shirley, "Color transfer between images", IEEE Computer
   Graphics and Applications 21(5), 2001, doi:10.1109/38.946629.
"""
