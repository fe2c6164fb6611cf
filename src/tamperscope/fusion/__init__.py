"""Fusion: one calibrated manipulation probability and a band per asset, from named branches of evidence.

How it fits together
--------------------
* :mod:`.branches` -- a **Branch registry**. A :class:`~.branches.Branch` names a feature group, the stage that
  writes its rows, its feature names, and an ``extract(rows) -> {feature: value} | None`` function over the
  asset's detection rows. ``None`` means "this branch has no evidence" (stage absent, no face, no audio) and is
  *masked* by the model (feature at its training mean + explicit ``<branch>.missing`` = 1), never read as 0.
  Built in: ``forensics`` (max score per classical detector over windows), ``metadata`` (flag count), and for
  videos ``deep_frame`` (top-10 % mean, median), ``deep_clip`` (max, mean), ``temporal`` and ``avsync`` (the
  asset scores of those stages).
* :mod:`.model` -- :class:`~.model.FusionModel`: standardisation, logistic-regression coefficients, Platt
  calibration and a :class:`~.policy.ThresholdPolicy`, stored as JSON in ``fusion/artifacts/<model_id>.json``
  together with its training manifest and metrics (AUC, ECE, reliability curve). :func:`~.model.fit` builds one.
* :mod:`.policy` -- probability -> ``likely_real`` / ``unsure`` / ``likely_manipulated``; see
  ``docs/threshold-policy.md``. The policy version is stored in every verdict's evidence.
* :mod:`.stage` -- :class:`~.stage.FusionStage` picks the artifact for the asset's media type
  (``MODEL_FOR_MEDIA``), extracts the artifact's branches and writes one ``fusion`` detection on ``asset``, plus
  the per-window timeline (:mod:`.timeline`: one ``fusion.window`` row per clip window) for models with deep
  branches.
* :mod:`.cv` -- fitting on small labelled sets: calibration on inner leave-one-group-out logits
  (:func:`~.cv.fit_grouped`) and leave-one-fold-out cross-validation (:func:`~.cv.cross_validate`);
  :mod:`.augment` splices a few fake windows into real videos as extra training samples;
  :func:`~.cv.select_branches` starts from the primary branch and keeps only the branches that raise the
  held-out AUC. The video model ``video-v3`` is fitted by ``tamperscope eval-video``
  (:mod:`tamperscope.evaluation.video`).

Extending (how ``video-v2`` was added)
-------------------------------------
1. ``register_branch(Branch("deep_clip", "deep", ("max", "mean"), extract_fn))`` in your own module, imported
   from :mod:`.branches`' registrations (add one import line at the end of ``branches.py``).
2. Build training samples ``({branch: features or None}, label)`` and call ``fit(model_id, branch_features,
   train, cal)`` (separate calibration split) or ``fit_grouped(model_id, branch_features, samples, groups)``
   (small sets; what ``tamperscope eval-video`` does for ``video-v2``); write ``model.to_json()`` to
   ``fusion/artifacts/<model_id>.json``.
3. Set ``MODEL_FOR_MEDIA["video"] = "video-v2"`` in :mod:`.stage`. Nothing else changes: the stage only evaluates
   the branches the artifact lists, and missing ones are masked.
"""
