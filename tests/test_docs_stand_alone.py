"""The repository stands alone: no file in it cites a design document kept outside it, and
every numbered invariant or Redis rule that code, tests or docs cite is one that
docs/design.md defines, so a reader who follows a citation finds what it names. The outside
documents' names are built from parts, so that this file does not cite them itself."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "design.md"
OUTSIDE = tuple(f"{name}.md" for name in ("ARCHITECTURE", "INTERFACES"))
# "invariant 3", "Invariant 7 (state part)", "invariants 1, 2, 5, 6 and 7", "Redis rule 2",
# also wrapped onto a comment's next line; not a heading followed by a numbered list.
NUMBERS = r"(?:[ \t]+|[ \t]*\n[ \t]*(?:(?:#|--)[ \t]*)?)(\d+(?:\s*(?:,|and|or)\s*(?:and\s+)?\d+)*)"
CITES = {
    "Invariants": re.compile(r"\binvariants?" + NUMBERS, re.IGNORECASE),
    "Redis rules": re.compile(r"\bRedis\s+rules?" + NUMBERS, re.IGNORECASE),
}


def repository_texts() -> dict[str, str]:
    """Every text file git knows or would add (tracked, or new and not ignored), by path."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    texts = {}
    for name in sorted(set(listed.decode("utf-8").split("\0")) - {""}):
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree, not committed yet
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def section(heading: str) -> str:
    """The text of a ``## heading`` section of docs/design.md, up to the next ``##``."""
    text = DESIGN.read_text("utf-8")
    found = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found, f"docs/design.md has no '## {heading}' section"
    return found.group(1)


def defined(heading: str) -> set[int]:
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", section(heading), re.M)]
    assert numbers == list(range(1, len(numbers) + 1)), f"{heading} numbered {numbers}"
    return set(numbers)


def test_no_file_cites_a_document_outside_the_repository():
    cited = [
        f"{name}:{number}: {line.strip()}"
        for name, text in repository_texts().items()
        for number, line in enumerate(text.splitlines(), 1)
        if any(outside in line for outside in OUTSIDE)
    ]
    assert not cited, "cite docs/design.md instead:\n" + "\n".join(cited)


def test_design_defines_the_invariants_and_the_redis_rules():
    assert defined("Invariants") == set(range(1, 8))
    assert len(defined("Redis rules")) >= 1


@pytest.mark.parametrize("heading", sorted(CITES))
def test_every_cited_number_is_defined_in_the_design(heading):
    numbers = defined(heading)
    wrong = [
        f"{name}: {found.group(0)!r}"
        for name, text in repository_texts().items()
        for found in CITES[heading].finditer(text)
        if not {int(n) for n in re.findall(r"\d+", found.group(1))} <= numbers
    ]
    assert not wrong, f"docs/design.md defines {heading} {sorted(numbers)} only:\n" + "\n".join(
        wrong
    )


def test_the_tests_that_hold_each_invariant_exist():
    invariants = section("Invariants")
    paths = set(re.findall(r"`(tests/[\w/]+\.py)`", invariants))
    assert paths, "the invariants name no tests"
    assert not {p for p in paths if not (ROOT / p).is_file()}, "named tests moved or gone"
    sources = "\n".join(p.read_text("utf-8") for p in (ROOT / "tests").rglob("*.py"))
    names = set(re.findall(r"`(test_\w+)`", invariants))
    missing = {n for n in names if not re.search(rf"\bdef {n}\(", sources)}
    assert not missing, f"docs/design.md names tests that do not exist: {sorted(missing)}"
