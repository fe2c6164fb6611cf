"""Evaluation: the synthetic forgery benchmark (:mod:`.synthetic`) and the image harness (:mod:`.harness`).

Media-specific harnesses live beside them (e.g. ``video.py``) and reuse the harness's metric and table helpers.
"""
