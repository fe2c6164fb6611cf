"""Training of tamperscope's deep detectors (the ``train`` extra: torch). Kept out of the runtime package.

The runtime (``tamperscope``) reads only the exported ONNX files with onnxruntime and never imports this package;
this package imports the runtime's face analysis, hashing and split code, so training and inference see the same
crops. Its command line is ``tamperscope-train``.

Modules: :mod:`.config` (run configurations), :mod:`.dataset` (face tracks), :mod:`.synthesis` (synthetic fakes),
:mod:`.backbone` (EfficientNet-Lite0), :mod:`.networks` (torch modules and exported graphs),
:mod:`.frame_samples` (frame samples and their trunk features), :mod:`.fitting` (splits, calibration, metrics,
manifest), :mod:`.frame_model` and :mod:`.clip_model` (training and export), :mod:`.cross_validation` (identity
folds), :mod:`.cli`.
"""
