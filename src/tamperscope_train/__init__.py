"""Training of tamperscope's deep detectors (the ``train`` extra: torch). Kept out of the runtime package.

The runtime (``tamperscope``) reads only the exported ONNX files with onnxruntime and never imports this package;
this package imports the runtime's face analysis, hashing and split code, so training and inference see the same
crops. Its command line is ``tamperscope-train``.
"""
