"""Document trees (abstract / sections / subsections) and LongRefiner's XML outline.

A tree is {"id", "title", "abstract": [paragraph], "sections": [{"title",
"paragraphs", "subsections": [{"title", "paragraphs"}]}]}. The outline format
is the one in LongRefiner's doc-structuring data: every paragraph elided to its
first and last words, paragraphs joined by <br>, sections in <section: T> tags.
"""
from __future__ import annotations

import re

ELIDE_WORDS = 5
SECTION = re.compile(r"<section: ([^>]*)>(.*?)</section: \1>", re.DOTALL)
SUBSECTION = re.compile(r"<sub-section: \"?([^>\"]*)\"?>(.*?)</sub-section: \"?\1\"?>", re.DOTALL)
ABSTRACT = re.compile(r"<abstract>(.*?)</abstract>", re.DOTALL)


def body_paragraphs(contents: str) -> list[str]:
    """The paragraphs of a FlashRAG 'title\\ntext' document, title dropped."""
    return [line.strip() for line in contents.split("\n")[1:] if line.strip()]


def flat_tree(doc_id: str, contents: str) -> dict:
    """A document with no known structure: every paragraph in the abstract."""
    title = contents.split("\n", 1)[0].strip()
    return {"id": doc_id, "title": title, "abstract": body_paragraphs(contents), "sections": []}


def elide(paragraph: str) -> str:
    words = paragraph.split()
    if len(words) <= 2 * ELIDE_WORDS:
        return paragraph
    return " ".join(words[:ELIDE_WORDS]) + "..." + " ".join(words[-ELIDE_WORDS:])


def render_outline(tree: dict) -> str:
    """The doc-structuring target: the tree as an elided XML outline."""
    def join(paragraphs):
        return "<br>".join(elide(p) for p in paragraphs)

    parts = [f"<abstract>{join(tree['abstract'])}</abstract>"]
    for section in tree["sections"]:
        inner = join(section["paragraphs"])
        for sub in section["subsections"]:
            inner += f"<sub-section: {sub['title']}>{join(sub['paragraphs'])}</sub-section: {sub['title']}>"
        parts.append(f"<section: {section['title']}>{inner}</section: {section['title']}>")
    return "".join(parts)


class ParagraphMatcher:
    """Maps elided pieces back to the document's full paragraphs. Outlines follow
    reading order, so the search starts after the last match (as LongRefiner
    cuts the text after each match); filler paragraphs often share their first
    and last words, and an unordered search would swap them."""

    def __init__(self, paragraphs: list[str]):
        self.paragraphs, self.used, self.cursor = paragraphs, set(), 0

    def take(self, piece: str) -> str | None:
        piece = " ".join(piece.split())
        if not piece:
            return None
        # a sentence's own period may touch the ellipsis ("1548....for"): try every split
        splits = [(piece[:i].strip(), piece[i + 3:].strip()) for i in range(len(piece) - 2) if piece[i:i + 3] == "..."]
        splits = splits or [(piece, "")]
        count = len(self.paragraphs)
        for index in [(self.cursor + k) % count for k in range(count)]:
            flat = " ".join(self.paragraphs[index].split())
            if index in self.used:
                continue
            if any(flat.startswith(head) and flat.endswith(tail) and len(head) + len(tail) <= len(flat)
                   for head, tail in splits) or flat == piece:
                self.used.add(index)
                self.cursor = index + 1
                return self.paragraphs[index]
        return None

    def take_all(self, text: str) -> list[str]:
        return [p for p in (self.take(piece) for piece in text.split("<br>")) if p is not None]


def parse_outline(doc_id: str, contents: str, outline: str) -> tuple[dict, bool]:
    """Rebuild a full tree from a (model-written) outline. Paragraphs the outline
    does not place go to the abstract, so no text is lost; the flag says whether
    the outline was usable at all."""
    paragraphs = body_paragraphs(contents)
    matcher = ParagraphMatcher(paragraphs)
    tree = {"id": doc_id, "title": contents.split("\n", 1)[0].strip(), "abstract": [], "sections": []}
    abstract = ABSTRACT.search(outline)
    if abstract:
        tree["abstract"] = matcher.take_all(abstract.group(1))
    for title, inner in SECTION.findall(outline):
        subsections = [{"title": t.strip(), "paragraphs": matcher.take_all(text)} for t, text in SUBSECTION.findall(inner)]
        own = matcher.take_all(SUBSECTION.sub("", inner))
        section = {"title": title.strip(), "paragraphs": own, "subsections": [s for s in subsections if s["paragraphs"]]}
        if section["paragraphs"] or section["subsections"]:
            tree["sections"].append(section)
    usable = bool(matcher.used)
    leftovers = [p for i, p in enumerate(paragraphs) if i not in matcher.used]
    tree["abstract"] += leftovers
    return tree, usable


def outline_text(tree: dict) -> str:
    """The outline shown to global selection: 'Title: ...', 'Section1: ...'."""
    lines, section_index = [f"Title: {tree['title']}"], 1
    for section in tree["sections"]:
        lines.append(f"Section{section_index}: {section['title']}")
        section_index += 1
        for sub_index, sub in enumerate(section["subsections"], start=1):
            lines.append(f"Subsection{sub_index}: {sub['title']}")
    return "\n".join(lines)


def abstract_text(tree: dict) -> str:
    return "\n".join(tree["abstract"])


def node_titles(tree: dict) -> list[str]:
    """Every selectable title: 'abstract', sections and subsections."""
    titles = ["abstract"] if tree["abstract"] else []
    for section in tree["sections"]:
        titles.append(section["title"])
        titles += [sub["title"] for sub in section["subsections"]]
    return titles
