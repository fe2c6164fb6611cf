"""Editor / processor signatures: load ``editors.yaml`` and attribute ExifTool tag values to named programs.

The list is data (``editors.yaml`` beside this module): each signature has a name, a category (editor,
raw-converter, converter, transfer-tool, metadata-tool, or a category that is never flagged such as camera
firmware) and regular expressions tested against the ExifTool tags that name a writing program. Matching is a
pure function so that the rule, the benchmark and the tests share it and a report can show which tag value
caused a flag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


@dataclass(frozen=True)
class Category:
    """A kind of program, the prior weight of its flag, and whether it is flagged at all."""

    name: str
    score: float
    flagged: bool
    meaning: str


@dataclass(frozen=True)
class MatchItem:
    """One regular expression and the tags (``Name`` or ``Group:Name``) whose values it is tested against."""

    pattern: re.Pattern[str]
    tags: frozenset[str]


@dataclass(frozen=True)
class Signature:
    """A named program with its category, match items and the reference for its tag/value form."""

    name: str
    category: str
    items: tuple[MatchItem, ...]
    source: str


@dataclass(frozen=True)
class SignatureList:
    """The loaded ``editors.yaml``: version, categories, default tags, the ordered signatures, all tags used."""

    version: int
    categories: dict[str, Category]
    software_tags: frozenset[str]
    signatures: tuple[Signature, ...]
    watched: frozenset[str]


@dataclass(frozen=True)
class Match:
    """Evidence: ``tag`` (ExifTool ``Group:Name``) holds ``value``, attributed to ``signature`` of ``category``."""

    signature: str
    category: str
    tag: str
    value: str

    def as_dict(self) -> dict[str, str]:
        """Plain dict for JSON evidence."""
        return {"signature": self.signature, "category": self.category, "tag": self.tag, "value": self.value}


def parse_signatures(data: Mapping[str, Any]) -> SignatureList:
    """Build a :class:`SignatureList` from the parsed YAML; unknown categories are an error."""
    categories = {name: Category(name, float(spec["score"]), bool(spec["flagged"]), str(spec["meaning"]))
                  for name, spec in data["categories"].items()}
    default_tags = frozenset(data["software_tags"])
    signatures = []
    for entry in data["signatures"]:
        if entry["category"] not in categories:
            raise ValueError(f"signature {entry['name']!r}: unknown category {entry['category']!r}")
        items = tuple(MatchItem(re.compile(item["pattern"], re.IGNORECASE),
                                frozenset(item["tags"]) if "tags" in item else default_tags)
                      for item in entry["match"])
        signatures.append(Signature(str(entry["name"]), str(entry["category"]), items, str(entry["source"])))
    watched = frozenset(tag for signature in signatures for item in signature.items for tag in item.tags)
    return SignatureList(int(data["version"]), categories, default_tags, tuple(signatures), watched)


@lru_cache(maxsize=1)
def load_signatures() -> SignatureList:
    """The signature list shipped in the package (``probe/rules/editors.yaml``), parsed once."""
    text = resources.files(__package__).joinpath("editors.yaml").read_text(encoding="utf-8")
    return parse_signatures(yaml.safe_load(text))


def _selected(key: str, tags: frozenset[str]) -> bool:
    return key in tags or key.partition(":")[2] in tags


def _values(value: Any) -> Iterable[str]:
    values = value if isinstance(value, list) else [value]
    seen: list[str] = []
    for item in values:
        text = str(item).strip()
        if text and text not in seen:
            seen.append(text)
    return seen


def match_signatures(exif: Mapping[str, Any] | None, signatures: SignatureList) -> list[Match]:
    """Attribute every program-naming tag value of an ExifTool ``-G1`` record to the first signature matching it.

    Each distinct (tag, value) pair yields at most one :class:`Match` (list values are tested element by
    element); pairs that no signature matches are left out. Matches of categories that are not flagged (camera
    firmware, phone apps, XMP libraries) are returned too, so that callers can show what the file carries.
    """
    found: list[Match] = []
    for key, value in (exif or {}).items():
        if not _selected(key, signatures.watched):
            continue
        for text in _values(value):
            for signature in signatures.signatures:
                if any(_selected(key, item.tags) and item.pattern.search(text) for item in signature.items):
                    found.append(Match(signature.name, signature.category, key, text))
                    break
    return found


def flagged(matches: Iterable[Match], signatures: SignatureList) -> list[Match]:
    """The matches whose category is flagged."""
    return [m for m in matches if signatures.categories[m.category].flagged]
