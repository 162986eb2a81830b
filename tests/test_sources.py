"""The product cites its own sources: docs/sources.md defines every [ID] it cites, and nothing points outside it.

Values in config/ cite the law, statutory guidance and the council's framework document by
a short id in square brackets ("SI 2006/1738 reg 19(4) [CR2006]"), defined in docs/sources.md.
What ships (config/, docs/, engine/, README.md) must not refer to notes or files that are not
part of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "docs" / "sources.md"

SHIPPED = [ROOT / "config", ROOT / "docs", ROOT / "engine", ROOT / "README.md"]
CITING = [ROOT / "config", ROOT / "docs"]
TEXT = {".yaml", ".yml", ".json", ".md", ".py", ".txt", ".toml"}

#: references to files outside the product
OUTSIDE = re.compile(r"DOMAIN\.md|REVIEW-[A-Za-z]|review-repro|(?<![\w.-])shared/")

#: a source id: capitals and digits, parts joined by '-' ("CR2006", "WT23"); not a markdown
#: link ("[Limits](#limits)") and not a list of ids such as "[SM-02]" or "[C-0701]"
CITATION = re.compile(r"\[([A-Z][A-Z0-9]*(?:-[A-Z][A-Z0-9]*)*)\](?!\()")

#: capitalised placeholders of the syntax tables, not citations:
#: "people: [EXPR]" in workflow-language.md, "{role: [ROLES], exclude: [EXPRESSIONS]}" in simulation.md
PLACEHOLDERS = {"EXPR", "ROLES", "EXPRESSIONS"}

#: a definition: a heading that starts with the id, "### [CR2006] The Children Act 1989 ..."
DEFINITION = re.compile(r"^#{2,4} \[([A-Z][A-Z0-9]*(?:-[A-Z][A-Z0-9]*)*)\] \S", re.MULTILINE)


def files(roots: list[Path]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in TEXT and "__pycache__" not in path.parts:
                yield path


def defined() -> list[str]:
    return DEFINITION.findall(SOURCES.read_text(encoding="utf-8"))


def cited(text: str) -> set[str]:
    return set(CITATION.findall(text)) - PLACEHOLDERS


def test_nothing_shipped_refers_to_notes_outside_the_product():
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in files(SHIPPED)
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == []


def test_sources_defines_each_id_once():
    ids = defined()
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    # the sources the configuration rests on most
    assert {"QALF", "CA1989", "CR2006", "GBC", "IRO", "CPPCR2010", "WT23", "ILACS", "CHC", "BH", "LAP"} <= set(ids)


def test_every_id_cited_in_config_and_docs_is_defined_in_sources():
    ids = set(defined())
    undefined = sorted(
        f"{path.relative_to(ROOT)}:{n}: [{cite}]"
        for path in files(CITING)
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for cite in cited(line)
        if cite not in ids
    )
    assert undefined == []


def test_the_configuration_cites_its_sources_by_id():
    config = "\n".join(p.read_text(encoding="utf-8") for p in files([ROOT / "config"]))
    assert {"QALF", "CR2006", "IRO", "CHC", "LAP"} <= cited(config)


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("# SI 2006/1738 reg 14: 10 working days [CR2006]", {"CR2006"}),
        ("# a certainty tag [S] or [U] is not a source", {"S", "U"}),
        ('source: "IRO Handbook para 6.2 [IRO]; councils [LAP]"', {"IRO", "LAP"}),
        ("to: [qa_team, complaints_manager]", set()),
        ("people: [SM-02]  data: {case_id: [C-0701]}", set()),
        ("(see [Limits](#limits)); people: [EXPR]", set()),
    ],
)
def test_what_counts_as_a_citation(text, ids):
    assert cited(text) == ids


@pytest.mark.parametrize(
    ("line", "outside"),
    [
        ("# DOMAIN.md 1.2: the complaints manager", True),
        ('"""F6 (REVIEW-reliability.md): ..."""', True),
        ("see /work/shared/seeds/000.txt", True),
        ("see shared/DOMAIN.md", True),
        ("review-repro/case.sh", True),
        ("deadline clocks are shared until one is changed", False),
        ("HS* algorithms use a shared secret", False),
    ],
)
def test_what_counts_as_a_reference_outside_the_product(line, outside):
    assert bool(OUTSIDE.search(line)) is outside
