"""Evaluation: the image harnesses (:mod:`.harness`, :mod:`.image`) over the synthetic forgery benchmark
(:mod:`tamperscope.samples.forgeries`) and real images, and the video harness (:mod:`.video`).

Media-specific harnesses live beside them (e.g. ``video.py``) and reuse the harness's metric and table helpers.
"""
