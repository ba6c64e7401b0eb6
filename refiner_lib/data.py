"""Load questions and corpora into one normalized layout, and split them.

Questions: FlashRAG {id, question, golden_answers} plus annotations
  label ("Local"/"Global" or None), type, supporting [{doc_id, title, path}]
  (path [] means the abstract). Corpus: FlashRAG {id, contents: "title\\ntext"}.
Trees: the true structure of each document where the source knows it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from . import loaders, synthetic
from .errors import ConfigError, InputError
from .jsonl import check_unique, require, require_text
from .sources import read_records, strip_where
from .structure import flat_tree

LOG = logging.getLogger(__name__)


def load_corpus(path: str | Path) -> list[dict]:
    """FlashRAG's {id, contents: "title\\ntext"}. wiki18's titles come in quotes
    ('"Title"'): they are taken off, so that a title reads as every other one."""
    corpus = []
    for where, record in read_records(path):
        doc_id = str(require(record, "id", (str, int), where))
        contents = unquoted_title(require_text(record, "contents", where))
        title, _, body = contents.partition("\n")
        if not title.strip():
            raise InputError(f"{where}: field 'contents' has an empty title line")
        if not body.strip():
            raise InputError(f"{where}: field 'contents' has no text after its title line (an empty document)")
        corpus.append({"id": doc_id, "contents": contents, "_where": where})
    check_unique(((d["id"], d["_where"]) for d in corpus), path)
    return [{"id": d["id"], "contents": d["contents"]} for d in corpus]


def unquoted_title(contents: str) -> str:
    title, newline, body = contents.partition("\n")
    if len(title) >= 2 and title[0] == title[-1] == '"':
        return title[1:-1] + newline + body
    return contents


def load_flashrag_questions(path: str | Path) -> list[dict]:
    """FlashRAG's {id, question, golden_answers, metadata?}; `metadata` is kept."""
    questions = []
    for where, record in read_records(path):
        answers = require(record, "golden_answers", list, where)
        if not answers or not all(isinstance(a, str) for a in answers):
            raise InputError(f"{where}: field 'golden_answers' must be a non-empty list of non-empty strings")
        for number, answer in enumerate(answers):
            require_text({"golden_answers": answer}, "golden_answers", f"{where}: item {number}")
        questions.append({"id": str(require(record, "id", (str, int), where)),
                          "question": require_text(record, "question", where), "golden_answers": answers,
                          "label": None, "type": None, "supporting": [], "_where": where,
                          **({"metadata": record["metadata"]} if record.get("metadata") is not None else {}),
                          **readings_of(record.get("metadata"))})
    check_unique(((q["id"], q["_where"]) for q in questions), path)
    return strip_where(questions)


def readings_of(metadata) -> dict:
    """FlashRAG's ASQA keeps ASQA's disambiguated readings in its metadata
    (`qa_pairs`, each with `short_answers`): STR-EM scores them."""
    pairs = metadata.get("qa_pairs") if isinstance(metadata, dict) else None
    if not isinstance(pairs, list):
        return {}
    readings = [[a for a in pair.get("short_answers") or [] if isinstance(a, str) and a.strip()]
                for pair in pairs if isinstance(pair, dict)]
    return {"readings": [r for r in readings if r]} if any(readings) else {}


def load_hotpotqa(path: str | Path, corpus: list[dict]) -> list[dict]:
    """HF `hotpot_qa` layout; supporting titles are mapped to corpus ids by title.
    A title the corpus lacks is kept in the question's `supporting_missing` and
    counted in the log; if no title at all is found, the corpus is the wrong one
    and this is an error (the oracle would label every selection empty)."""
    title_to_id = {d["contents"].split("\n", 1)[0].strip(): d["id"] for d in corpus}
    questions = []
    for where, record in read_records(path):
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


# layouts whose questions carry what the oracle teacher labels from (the
# supporting documents; the synthetic set also its sections and Local/Global)
ANNOTATED = ("synthetic", "hotpotqa", "2wikimultihopqa")
SHORT_FORM = ("em", "f1", "accuracy")
# the answer metrics a layout is scored with unless its dataset names others
DEFAULT_METRICS = {"asqa": (*SHORT_FORM, "str_em"), "eli5": (*SHORT_FORM, "rouge_l")}


@dataclass(frozen=True)
class DatasetSettings:
    """One question set and its corpus (config `datasets.NAME`, as prepare_data reads it)."""

    name: str
    layout: str  # synthetic (made here), flashrag, hotpotqa, 2wikimultihopqa, asqa or eli5
    questions: str | None = None  # a JSON, JSONL or Parquet file or an hf: name (sources.py)
    corpus: str | None = None  # FlashRAG {id, contents}; 2wikimultihopqa may build it from its contexts
    synthetic: synthetic.SyntheticSettings | None = None  # layout synthetic: how to make it
    eval_questions: str | None = None  # the eval part's own pool (a test split); then `questions` is the train pool

    def __post_init__(self):
        for field in needed_files(self.layout):
            if not getattr(self, field):
                raise ConfigError(f"key 'datasets.{self.name}.{field}': missing (layout {self.layout} reads it)")

    @classmethod
    def from_dict(cls, name: str, block: dict) -> "DatasetSettings":
        """From config `datasets.NAME` (the keys prepare_data reads)."""
        made = synthetic.SyntheticSettings(**block.get("synthetic", {})) if block["layout"] == "synthetic" else None
        return cls(name, block["layout"], block.get("questions"), block.get("corpus"), made,
                   block.get("eval_questions"))


def needed_files(layout: str, optional: bool = False) -> tuple[str, ...]:
    """The files a layout reads (with optional=True, also those it may read: an
    eval pool, and 2WikiMultihopQA's corpus, which its own context paragraphs
    otherwise make)."""
    if layout == "synthetic":
        return ()
    if not optional:
        return ("questions",) if layout == "2wikimultihopqa" else ("questions", "corpus")
    return ("questions", "eval_questions", "corpus")


def teacher_kind(block: dict, default: str) -> str:
    """A dataset's teacher: its own `teacher`, else `default` (config teacher.kind)
    where its layout carries annotations, else the LLM teacher."""
    return block.get("teacher") or (default if block["layout"] in ANNOTATED else "llm")


def answer_metrics(block: dict) -> list[str]:
    return list(block.get("metrics") or DEFAULT_METRICS.get(block["layout"], SHORT_FORM))


def prepare(settings: DatasetSettings) -> dict:
    """All of prepare_data's outputs as lists: questions, corpus, trees. With
    `eval_questions`, each question carries its `pool` (train or eval), from
    which split_questions draws that part."""
    if settings.layout == "synthetic":
        questions, corpus, trees = synthetic_dataset(settings.synthetic)
        return {"questions": questions, "corpus": corpus, "trees": trees}
    given = load_corpus(settings.corpus) if settings.corpus else None
    pools = [("train", settings.questions), ("eval", settings.eval_questions)] if settings.eval_questions else \
        [(None, settings.questions)]
    questions, own_corpus = [], {}
    for pool, source in pools:
        loaded, documents = load_question_set(settings.layout, source, given)
        questions += [{**q, "pool": pool, "_where": f"{source}, question {q['id']}"} if pool else q for q in loaded]
        for document in documents:
            own_corpus.setdefault(document["id"], document)
    if settings.eval_questions:
        check_unique(((q["id"], q["_where"]) for q in questions), f"{settings.questions} and {settings.eval_questions}")
        questions = strip_where(questions)
    corpus = given if given is not None else list(own_corpus.values())
    # the annotated sets' documents are single paragraphs (a flat tree); elsewhere no structure is known
    trees = [flat_tree(d["id"], d["contents"]) for d in corpus] if settings.layout in ANNOTATED else []
    return {"questions": questions, "corpus": corpus, "trees": trees}


def load_question_set(layout: str, source: str, corpus: list[dict] | None) -> tuple[list[dict], list[dict]]:
    """A layout's questions, and the corpus documents the set itself brings
    (2WikiMultihopQA's context paragraphs, unless a corpus is given)."""
    if layout == "2wikimultihopqa":
        questions, documents = loaders.load_2wikimultihopqa(source)
        if corpus is not None:  # supporting titles name documents of the given corpus instead
            return retarget_supporting(questions, corpus, source), []
        return questions, documents
    if layout == "hotpotqa":
        return load_hotpotqa(source, corpus), []
    return {"flashrag": load_flashrag_questions, "asqa": loaders.load_asqa, "eli5": loaders.load_eli5}[layout](source), []


def retarget_supporting(questions: list[dict], corpus: list[dict], corpus_path) -> list[dict]:
    """2Wiki's supporting titles as documents of a corpus given with it (found by
    title); a title it lacks is kept in `supporting_missing`, as for HotpotQA."""
    title_to_id = {d["contents"].split("\n", 1)[0].strip(): d["id"] for d in corpus}
    for number, question in enumerate(questions):
        titles = [s["title"] for s in question["supporting"]]
        question["supporting"] = [{"doc_id": title_to_id[t], "title": t, "path": []} for t in titles if t in title_to_id]
        question["supporting_missing"] = [t for t in titles if t not in title_to_id]
        question["_where"] = f"question {question['id']}"
    report_missing_titles(questions, corpus_path)
    return strip_where(questions)
