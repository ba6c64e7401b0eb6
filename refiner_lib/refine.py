"""LongRefiner's hierarchical selection under a token budget.

Local scores come from a scorer (BM25 over every paragraph of a question's
documents), propagate up the tree as means (subsection -> section; abstract
from its paragraphs), and are min-max normalized per question. Global
selection adds alpha = P(Global) / (P(Global) + P(Local)) to every selected
node, and a share of it to the paragraphs right under a selected section or
subsection (alpha over one more than the section's subsections, or than the
subsection's paragraphs, as LongRefiner's code divides it). Nodes are then
taken best first while they fit the budget; a parent replaces its chosen
children when it fits, and a child of a chosen parent is skipped.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .bm25 import BM25Params, rank_nodes


@dataclass
class Node:
    doc_rank: int
    kind: str  # paragraph | abstract | section | subsection
    title: str  # its own title ('abstract' for the abstract); a paragraph: its parent's
    ancestors: tuple[str, ...]  # titles of the nodes above it, nearest first
    order: int  # position in the document, to print chosen text in reading order
    paragraphs: list[str] = field(default_factory=list)
    score: float = 0.0
    tokens: int = 0


def build_nodes(trees: list[dict]) -> list[Node]:
    nodes, order = [], 0

    def add(kind, doc_rank, title, ancestors, paragraphs):
        nonlocal order
        node = Node(doc_rank, kind, title, ancestors, order, list(paragraphs))
        order += 1
        nodes.append(node)
        return node

    for rank, tree in enumerate(trees):
        if tree["abstract"]:
            add("abstract", rank, "abstract", (), tree["abstract"])
            for p in tree["abstract"]:
                add("paragraph", rank, "abstract", ("abstract",), [p])
        for section in tree["sections"]:
            all_text = section["paragraphs"] + [p for sub in section["subsections"] for p in sub["paragraphs"]]
            add("section", rank, section["title"], (), all_text)
            for p in section["paragraphs"]:
                add("paragraph", rank, section["title"], (section["title"],), [p])
            for sub in section["subsections"]:
                add("subsection", rank, sub["title"], (section["title"],), sub["paragraphs"])
                for p in sub["paragraphs"]:
                    add("paragraph", rank, sub["title"], (sub["title"], section["title"]), [p])
    return nodes


def children_of(node: Node, nodes: list[Node]) -> list[Node]:
    return [n for n in nodes if n.doc_rank == node.doc_rank and n.ancestors[:1] == (node.title,) and n is not node]


def score_nodes(question: str, nodes: list[Node], probabilities: dict[str, float],
                selections: list[list[str]], local_scorer: BM25Params = BM25Params()) -> None:
    paragraphs = [n for n in nodes if n.kind == "paragraph"]
    for node, score in zip(paragraphs, rank_nodes(question, [n.paragraphs[0] for n in paragraphs], local_scorer)):
        node.score = score
    # bottom-up means: subsections first, then sections and abstracts
    for kind in ("subsection", "abstract", "section"):
        for node in (n for n in nodes if n.kind == kind):
            below = [c.score for c in children_of(node, nodes) if c.kind in ("paragraph", "subsection")]
            own = [c.score for c in children_of(node, nodes) if c.kind == "paragraph"]
            subs = [c.score for c in children_of(node, nodes) if c.kind == "subsection"]
            parts = ([sum(own) / len(own)] if own else []) + subs if kind == "section" else below
            node.score = sum(parts) / len(parts) if parts else 0.0
    low, high = min(n.score for n in nodes), max(n.score for n in nodes)
    for node in nodes:
        node.score = 0.0 if high == low else (node.score - low) / (high - low)
    total = probabilities.get("Global", 0.0) + probabilities.get("Local", 0.0)
    alpha = probabilities.get("Global", 0.0) / total if total else 0.0
    for node in nodes:
        chosen = {t.lower() for t in selections[node.doc_rank]}
        if node.kind != "paragraph" and node.title.lower() in chosen:
            node.score += alpha
        elif node.kind == "paragraph" and node.title.lower() in chosen and node.ancestors != ("abstract",):
            node.score += alpha / (leaf_count(node, nodes) + 1)


def leaf_count(paragraph: Node, nodes: list[Node]) -> int:
    """LongRefiner's divisor for a paragraph's share of its chosen parent's
    alpha: the parent section's number of subsections, or the parent
    subsection's number of paragraphs (abstract paragraphs get no share)."""
    same_doc = [n for n in nodes if n.doc_rank == paragraph.doc_rank]
    if len(paragraph.ancestors) == 1:  # directly under a section
        return sum(1 for n in same_doc if n.kind == "subsection" and n.ancestors == paragraph.ancestors)
    return sum(1 for n in same_doc if n.kind == "paragraph" and n.ancestors == paragraph.ancestors)


def covers(parent: Node, child: Node) -> bool:
    return parent.kind != "paragraph" and parent.doc_rank == child.doc_rank and parent.title in child.ancestors


def select(nodes: list[Node], budget: int, title_tokens: list[int] | None = None) -> list[Node]:
    """Best first under `budget`; a document's title line is paid for by the
    first node taken from that document."""
    title_tokens = title_tokens or [0] * (1 + max((n.doc_rank for n in nodes), default=0))
    chosen: list[Node] = []
    remaining = budget
    for node in sorted(nodes, key=lambda n: (-n.score, n.order)):
        if any(covers(c, node) for c in chosen):
            continue
        replaced = [c for c in chosen if covers(node, c)]
        freed = sum(c.tokens for c in replaced)
        new_document = not any(c.doc_rank == node.doc_rank for c in chosen)
        cost = node.tokens + (title_tokens[node.doc_rank] if new_document else 0)
        if cost <= remaining + freed:
            chosen = [c for c in chosen if c not in replaced] + [node]
            remaining += freed - cost
    return sorted(chosen, key=lambda n: n.order)


def render(chosen: list[Node], trees: list[dict]) -> str:
    """One block per document, in retrieval order: its title, then the chosen text."""
    blocks = []
    for rank, tree in enumerate(trees):
        texts = [p for node in chosen if node.doc_rank == rank for p in node.paragraphs]
        if texts:
            blocks.append(tree["title"] + "\n" + "\n".join(dict.fromkeys(texts)))
    return "\n\n".join(blocks)


def refine_question(question: str, trees: list[dict], probabilities: dict[str, float], selections: list[list[str]],
                    budget: int, count_tokens, local_scorer: BM25Params = BM25Params()) -> dict:
    nodes = build_nodes(trees)
    if not nodes:
        return {"context": "", "context_tokens": 0}
    score_nodes(question, nodes, probabilities, selections, local_scorer)
    for node in nodes:
        node.tokens = sum(count_tokens(p + "\n") for p in node.paragraphs)
    title_tokens = [count_tokens(tree["title"] + "\n\n") for tree in trees]
    chosen = select(nodes, budget, title_tokens)
    context = render(chosen, trees)
    while chosen and count_tokens(context) > budget:  # token merges at joins: drop the weakest node
        chosen.remove(min(chosen, key=lambda n: n.score))
        context = render(chosen, trees)
    refined = {"context": context, "context_tokens": count_tokens(context)}
    if not chosen:  # there was text, but no part of it (with its title) fits the budget
        refined["over_budget"] = True
    return refined


def full_context(docs: list[dict], max_tokens: int, tokenizer) -> str:
    """The `full` baseline: every retrieved document, cut to the generator's window."""
    text = "\n\n".join(d["contents"] for d in docs)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer.decode(ids[:max_tokens]) if len(ids) > max_tokens else text
