"""The documentation stays true: the README stays short, every link and picture resolves, every result file is
indexed, and the command reference covers every command with the options the command really has."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import typer.main

from edgeprof.cli import app

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
INDEX = RESULTS / "INDEX.md"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), INDEX]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# what a command prints about itself, left out of the reference's tables (the README says which have them)
COMMON_OPTIONS = {"--help", "--json", "--quiet"}


def _prose(text: str) -> str:
    """Markdown without its fenced code blocks, where brackets are not links."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(line.lstrip("#")) for line in _prose(path.read_text()).splitlines() if line.startswith("#")}


def _local_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(_prose(path.read_text()))
            if not re.match(r"[a-z]+:", target)]


def _commands(group, prefix: str = "") -> dict[str, object]:
    """Every command of the click group, by its full path (`scenario show`)."""
    found = {}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            found.update(_commands(command, path + " "))
        else:
            found[path] = command
    return found


COMMANDS = _commands(typer.main.get_command(app))


def _reference_sections() -> dict[str, str]:
    """The README's command reference, split by command heading (`### `edgeprof PATH ...``)."""
    readme = (ROOT / "README.md").read_text()
    reference = readme.split("## Command reference", 1)[1].split("\n## ", 1)[0]
    sections = {}
    for block in reference.split("\n### ")[1:]:
        heading = block.splitlines()[0]
        words = heading.strip("`").split()[1:]
        path = " ".join(word for word in words if re.fullmatch(r"[a-z][a-z-]*", word))
        sections[path] = block
    return sections


def test_readme_is_under_450_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) < 450


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_and_picture_resolves(document):
    links = _local_links(document)
    assert links, f"{document.name} links nothing"
    broken = []
    for target in links:
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(target)
    assert not broken, f"{document.name}: {broken}"


def test_link_checker_sees_broken_links_and_anchors(tmp_path):
    (tmp_path / "there.md").write_text("# A heading: `here`\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md#a-heading-here) ![gone](missing.png) [web](https://example.org)\n"
                    "```\n[in code](nowhere.md)\n```\n")
    assert _local_links(page) == ["there.md#a-heading-here", "missing.png"]
    assert _anchors(tmp_path / "there.md") == {"a-heading-here"}


def test_every_result_file_is_indexed_and_every_indexed_file_exists():
    on_disk = {path.relative_to(RESULTS).as_posix() for path in RESULTS.rglob("*")
               if path.is_file() and path != INDEX}
    rows = [line for line in INDEX.read_text().splitlines() if line.startswith("| [")]
    indexed = [LINK.match(row[2:]).group(1) for row in rows]
    assert len(indexed) == len(set(indexed)), "a file is listed twice"
    assert sorted(on_disk - set(indexed)) == [], "result files missing from INDEX.md"
    assert sorted(set(indexed) - on_disk) == [], "INDEX.md lists files that do not exist"


def test_archived_files_say_what_supersedes_them():
    rows = [line for line in INDEX.read_text().splitlines() if line.startswith("| [archive/")]
    assert rows
    for row in rows:
        status = row.rstrip(" |").rsplit(" | ", 1)[1]
        assert "superseded by" in status or status.startswith("as "), row


def test_command_reference_covers_every_command_with_its_real_options():
    sections = _reference_sections()
    assert sorted(sections) == sorted(COMMANDS)
    for path, command in COMMANDS.items():
        options = {name for parameter in command.params for name in getattr(parameter, "opts", [])
                   if name.startswith("--")}
        cells = re.findall(r"^\| `([^`]*)`", sections[path], flags=re.M)
        listed = {name for cell in cells for name in re.findall(r"(?<![\w-])--[\w-]+", cell)}
        listed -= {name for cell in cells for name in re.findall(r"/ (--no-[\w-]+)", cell)}
        assert listed == options - COMMON_OPTIONS, f"{path}: regenerate with python docs/reference.py"


def test_command_reference_is_what_the_generator_prints():
    spec = importlib.util.spec_from_file_location("reference", ROOT / "docs" / "reference.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    readme = (ROOT / "README.md").read_text()
    assert generator.reference() in readme, "the command reference is stale: regenerate with python docs/reference.py"
