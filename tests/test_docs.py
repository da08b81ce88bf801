"""The README and docs/: every relative link and picture leads to a file of the repository, and
every #anchor to a heading of the page it names (as GitHub makes anchors). Reads text only."""
from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCED = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
MD_LINK = re.compile(r"!?\[(?:[^\[\]\n]|\[[^\]\n]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""<(?:img|a|source)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)       # http:, https:, mailto: ... (not checked)


def slugs(text: str) -> set[str]:
    """GitHub's anchors for the headings of a page: lower case, punctuation dropped, spaces to
    hyphens, a repeated one numbered -1, -2 ..."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCED.sub("", text)):
        words = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)        # a link: its text
        slug = re.sub(r"[^\w\- ]", "", words.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def targets(text: str) -> list[str]:
    """The link and picture targets of a Markdown page, outside code."""
    prose = CODE_SPAN.sub("", FENCED.sub("", text))
    return MD_LINK.findall(prose) + HTML_LINK.findall(prose)


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """What in `page` does not resolve: 'target: why' for each."""
    bad = []
    for target in targets(page.read_text(encoding="utf-8")):
        if SCHEME.match(target):
            continue
        path, _, anchor = urllib.parse.unquote(target).partition("#")
        dest = (page.parent / path).resolve() if path else page.resolve()
        if path.startswith("/"):
            bad.append(f"{target}: absolute path (give it relative to the page)")
        elif not dest.is_relative_to(root.resolve()):
            bad.append(f"{target}: outside the repository")
        elif not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in slugs(dest.read_text(encoding="utf-8")):
            bad.append(f"{target}: no heading '#{anchor}' in {dest.relative_to(root.resolve())}")
    return bad


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_and_picture_resolves(page):
    assert page.exists(), page
    assert broken_links(page) == []


def test_the_pages_link_somewhere():
    """The check reads links at all: the README links into docs/ and shows pictures."""
    found = targets((ROOT / "README.md").read_text(encoding="utf-8"))
    assert any(t.startswith("docs/") and t.endswith(".md") for t in found)
    assert any(t.endswith(".jpg") for t in found)


def test_a_broken_link_is_caught(tmp_path):
    """The checker itself: a missing file, a missing heading, a link out of the tree, and what it
    must leave alone (code, web addresses, good links)."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# A page\n\n## The `hd` preset (128 px)\n")
    (tmp_path / "pic.jpg").write_bytes(b"\xff\xd8")
    page = tmp_path / "README.md"
    page.write_text("\n".join([
        "# Title", "",
        "[good](docs/there.md) [good anchor](docs/there.md#the-hd-preset-128-px) [self](#title)",
        "![good picture](pic.jpg) <img src=\"pic.jpg\"> [web](https://example.org/x.md)",
        "`[in code](nothing.md)`", "```", "[in a block](nothing.md)", "```",
        "[missing](docs/gone.md) ![missing picture](docs/gone.jpg)",
        "[bad anchor](docs/there.md#no-such-heading) [out](../elsewhere.md)",
    ]))
    assert broken_links(page, tmp_path) == [
        "docs/gone.md: no such file", "docs/gone.jpg: no such file",
        "docs/there.md#no-such-heading: no heading '#no-such-heading' in docs/there.md",
        "../elsewhere.md: outside the repository"]
