"""The pipeline stages, one module each, on the small contract of :mod:`.base` (a stage sees a
:class:`~.base.StageContext`, returns a :class:`~tamperscope.records.StageOutput`).

``metadata`` (probe), ``video`` (decode, shots, frames, faces, windows), ``forensics`` (classical detectors),
``temporal`` (blinks, head pose, landmarks), ``avsync`` (audio-video offset), ``deep`` (frame and clip models) and
``fusion`` (verdict and timeline). Each calls the algorithm cores of its package; the cores never import a stage.
A new stage is a new module here: the registry (:mod:`tamperscope.pipeline.registry`) finds every
:class:`~.base.Stage` subclass with a ``name`` in these modules and puts them in pipeline order.
"""
