"""Provenance rule: a C2PA manifest is present but fails validation."""

from __future__ import annotations

from tamperscope.probe.rules.base import MetaInput, Rule, flag
from tamperscope.records import DetectionRecord


def invalid_c2pa(data: MetaInput) -> list[DetectionRecord]:
    """Flag a C2PA manifest whose validation fails (hash mismatch, bad claim signature), per the C2PA spec 2.1."""
    if data.provenance.get("status") != "invalid":
        return []
    return flag("invalid_c2pa", 0.8, "c2pa", failure_codes=data.provenance.get("failure_codes", []),
                validation_state=data.provenance.get("validation_state"))


RULES: dict[str, Rule] = {"invalid_c2pa": invalid_c2pa}
