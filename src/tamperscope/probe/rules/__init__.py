"""Metadata anomaly rules: pure functions from harvested tool JSON to ``meta.<rule>`` flag records.

Each rule family lives in its own module and registers its rules in :data:`RULES`. A rule receives a
:class:`MetaInput` (the raw ExifTool, ffprobe and MediaInfo dicts plus a few values the stage measures) and
returns the flags it raises, an empty list when it does not fire. The approach follows the metadata
consistency checks of Kee, Johnson & Farid, "Digital image authentication from JPEG headers" (IEEE TIFS 2011)
and the provenance-signal survey of Farid, *Photo Forensics* (MIT Press 2016), ch. 3.
"""

from __future__ import annotations

from tamperscope.probe.rules import container, exif, gps, provenance, software
from tamperscope.probe.rules.base import RULES_VERSION, MetaInput, Rule
from tamperscope.records import DetectionRecord

RULES: dict[str, Rule] = {
    **software.RULES, **exif.RULES, **gps.RULES, **container.RULES, **provenance.RULES,
}


def evaluate(data: MetaInput) -> list[DetectionRecord]:
    """Run every registered rule on ``data``; a rule that raises nothing contributes nothing."""
    found: list[DetectionRecord] = []
    for rule in RULES.values():
        found.extend(rule(data))
    return found


__all__ = ["RULES", "RULES_VERSION", "MetaInput", "evaluate"]
