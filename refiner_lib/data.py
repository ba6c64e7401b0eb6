"""Load questions and corpora into one normalized layout, and split them.

Questions: FlashRAG {id, question, golden_answers} plus annotations
  label ("Local"/"Global" or None), type, supporting [{doc_id, title, path}]
  (path [] means the abstract). Corpus: FlashRAG {id, contents: "title\\ntext"}.
Trees: the true structure of each document where the source knows it.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

from . import synthetic
from .errors import InputError
from .jsonl import check_unique, read_jsonl, require, require_text
from .structure import flat_tree

LOG = logging.getLogger(__name__)


def load_corpus(path: str | Path) -> list[dict]:
    corpus = []
    for line, record in read_jsonl(path):
        where = f"{path}:{line}"
        doc_id = str(require(record, "id", (str, int), where))
        contents = require_text(record, "contents", where)
        title, _, body = contents.partition("\n")
        if not title.strip():
            raise InputError(f"{where}: field 'contents' has an empty title line")
        if not body.strip():
            raise InputError(f"{where}: field 'contents' has no text after its title line (an empty document)")
        corpus.append({"id": doc_id, "contents": contents, "_where": where})
    if not corpus:
        raise InputError(f"{path}: the corpus has no documents")
    check_unique(((d["id"], d["_where"]) for d in corpus), path)
    return [{"id": d["id"], "contents": d["contents"]} for d in corpus]


def load_flashrag_questions(path: str | Path) -> list[dict]:
    questions = []
    for line, record in read_jsonl(path):
        where = f"{path}:{line}"
        answers = require(record, "golden_answers", list, where)
        if not answers or not all(isinstance(a, str) for a in answers):
            raise InputError(f"{where}: field 'golden_answers' must be a non-empty list of non-empty strings")
        for number, answer in enumerate(answers):
            require_text({"golden_answers": answer}, "golden_answers", f"{where}: item {number}")
        questions.append({"id": str(require(record, "id", (str, int), where)),
                          "question": require_text(record, "question", where), "golden_answers": answers,
                          "label": None, "type": None, "supporting": [], "_where": where})
    check_unique(((q["id"], q["_where"]) for q in questions), path)
    return strip_where(questions)


def load_hotpotqa(path: str | Path, corpus: list[dict]) -> list[dict]:
    """HF `hotpot_qa` layout; supporting titles are mapped to corpus ids by title.
    A title the corpus lacks is kept in the question's `supporting_missing` and
    counted in the log; if no title at all is found, the corpus is the wrong one
    and this is an error (the oracle would label every selection empty)."""
    title_to_id = {d["contents"].split("\n", 1)[0].strip(): d["id"] for d in corpus}
    questions = []
    for line, record in read_jsonl(path):
        where = f"{path}:{line}"
        answer = require_text(record, "answer", where)
        facts = require(record, "supporting_facts", dict, where)
        titles = require(facts, "title", list, f"{where}: supporting_facts")
        if not all(isinstance(title, str) for title in titles):
            raise InputError(f"{where}: field 'supporting_facts.title' must be a list of strings")
        unique = list(dict.fromkeys(titles))
        supporting = [{"doc_id": title_to_id[t], "title": t, "path": []} for t in unique if t in title_to_id]
        questions.append({"id": str(require(record, "id", str, where)), "question": require_text(record, "question", where),
                          "golden_answers": [answer], "label": "Local", "type": record.get("type"),
                          "supporting": supporting, "supporting_missing": [t for t in unique if t not in title_to_id],
                          "_where": where})
    check_unique(((q["id"], q["_where"]) for q in questions), path)
    report_missing_titles(questions, path)
    return strip_where(questions)


def report_missing_titles(questions: list[dict], path) -> None:
    missing = [(q["_where"], title) for q in questions for title in q["supporting_missing"]]
    if not missing:
        return
    total = len(missing) + sum(len(q["supporting"]) for q in questions)
    if len(missing) == total:
        raise InputError(f"{path}: none of the {total} supporting titles is a document title of the corpus "
                         f"(first: '{missing[0][1]}' at {missing[0][0]}); is data.hotpotqa.corpus the right corpus?")
    LOG.warning("%s: %d of %d supporting titles are not in the corpus, kept in each question's "
                "'supporting_missing' (first: '%s' at %s)", path, len(missing), total, missing[0][1], missing[0][0])


def strip_where(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "_where"} for r in records]


def synthetic_dataset(settings: synthetic.SyntheticSettings) -> tuple[list[dict], list[dict], list[dict]]:
    """Questions, corpus and true trees of the embedded encyclopedia."""
    articles, raw = synthetic.generate(settings)
    title_to_id = {a.title: a.entity_id for a in articles}
    corpus = [{"id": a.entity_id, "contents": a.contents()} for a in articles]
    trees = [dict(id=a.entity_id, **a.tree()) for a in articles]
    questions = []
    for q in raw:
        supporting = [{"doc_id": title_to_id[s["title"]], "title": s["title"], "path": s["path"]} for s in q["supporting"]]
        questions.append({"id": q["id"], "question": q["question"], "golden_answers": q["golden_answers"],
                          "label": q["label"], "type": q["type"], "supporting": supporting})
    return questions, corpus, trees


def split_part(questions: list[dict], part: str, num_train: int, num_eval: int, seed: int) -> list[dict]:
    if num_train + num_eval > len(questions):
        raise InputError(f"split asks for {num_train} train + {num_eval} eval questions, the data has {len(questions)}")
    order = list(range(len(questions)))
    random.Random(seed).shuffle(order)
    chosen = order[:num_eval] if part == "eval" else order[len(order) - num_train:]
    return [questions[i] for i in chosen]


@dataclass(frozen=True)
class DataFiles:
    """A real data set's files (config `data.hotpotqa` or `data.flashrag`)."""

    questions: str  # the questions (HotpotQA's JSON or JSONL; FlashRAG's JSONL)
    corpus: str  # the passages, FlashRAG's {id, contents} JSONL


@dataclass(frozen=True)
class DataSettings:
    """The questions and corpus a run prepares (config `data`, as prepare_data reads it)."""

    kind: str  # synthetic (made here), hotpotqa or flashrag
    synthetic: synthetic.SyntheticSettings | None = None  # kind synthetic: how to make it
    files: DataFiles | None = None  # kind hotpotqa or flashrag: where to read it

    def __post_init__(self):
        needs = {"synthetic": "synthetic", "hotpotqa": "files", "flashrag": "files"}.get(self.kind)
        if needs is None:
            raise InputError(f"data.kind: unknown kind '{self.kind}'")
        if getattr(self, needs) is None:
            raise InputError(f"data.{self.kind}: missing (data.kind is {self.kind})")

    @classmethod
    def from_dict(cls, settings: dict) -> "DataSettings":
        """From config `data` (its chosen kind's block is enough)."""
        kind, block = settings["kind"], settings.get(settings["kind"])
        if kind == "synthetic":
            return cls(kind, synthetic=synthetic.SyntheticSettings(**block) if block else None)
        return cls(kind, files=DataFiles(**block) if block else None)


def prepare(settings: DataSettings) -> dict:
    """All of prepare_data's outputs as lists: questions, corpus, trees."""
    if settings.kind == "synthetic":
        questions, corpus, trees = synthetic_dataset(settings.synthetic)
        return {"questions": questions, "corpus": corpus, "trees": trees}
    corpus = load_corpus(settings.files.corpus)
    if settings.kind == "hotpotqa":
        questions = load_hotpotqa(settings.files.questions, corpus)
        trees = [flat_tree(d["id"], d["contents"]) for d in corpus]
    else:  # flashrag: no structure known
        questions, trees = load_flashrag_questions(settings.files.questions), []
    return {"questions": questions, "corpus": corpus, "trees": trees}


def split_validation(records: list[dict], size: int, seed: int) -> tuple[list[dict], list[dict]]:
    """A fixed held-out part of a stage's training records (never trained on)."""
    if size <= 0:
        return records, []
    if size >= len(records):
        raise InputError(f"training: validation size {size} leaves no training records (have {len(records)})")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    held = set(order[:size])
    return [r for i, r in enumerate(records) if i not in held], [r for i, r in enumerate(records) if i in held]
