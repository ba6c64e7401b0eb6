"""Load questions and corpora into one normalized layout, and split them.

Questions: FlashRAG {id, question, golden_answers} plus annotations
  label ("Local"/"Global" or None), type, supporting [{doc_id, title, path}]
  (path [] means the abstract). Corpus: FlashRAG {id, contents: "title\\ntext"}.
Trees: the true structure of each document where the source knows it.
"""
from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import loaders, synthetic
from .errors import ConfigError, InputError
from .jsonl import check_unique, require, require_text
from .sources import iter_records, read_records, strip_where

LOG = logging.getLogger(__name__)


def load_corpus(path: str | Path) -> list[dict]:
    """FlashRAG's {id, contents: "title\\ntext"}, every document at once (see corpus_documents)."""
    return list(corpus_documents(path))


def corpus_documents(path: str | Path) -> Iterator[dict]:
    """FlashRAG's {id, contents: "title\\ntext"}, checked and normalized one
    document at a time, so that a corpus of Wikipedia's size streams through
    (only the ids are kept, to refuse a duplicate). wiki18's titles come in
    quotes ('"Title"'): they are taken off, so that a title reads as every other one."""
    seen: set[str] = set()
    for where, record in iter_records(path):
        document = normalized_document(record, where)
        if document["id"] in seen:
            first = next(w for w, r in iter_records(path) if str(r.get("id")) == document["id"])
            raise InputError(f"{where}: duplicate id '{document['id']}' (first seen at {first})")
        seen.add(document["id"])
        yield document
    if not seen:
        raise InputError(f"{path}: the file has no records")


def normalized_document(record: dict, where: str) -> dict:
    doc_id = str(require(record, "id", (str, int), where))
    contents = unquoted_title(require_text(record, "contents", where))
    title, _, body = contents.partition("\n")
    if not title.strip():
        raise InputError(f"{where}: field 'contents' has an empty title line")
    if not body.strip():
        raise InputError(f"{where}: field 'contents' has no text after its title line (an empty document)")
    return {"id": doc_id, "contents": contents}


def title_ids(documents: Iterable[dict]) -> dict[str, str]:
    """Title -> document id (the last document of a title wins, as a dict does)."""
    return {d["contents"].split("\n", 1)[0].strip(): d["id"] for d in documents}


def corpus_name(dataset: str, block: dict) -> str:
    """The folder a dataset's corpus is prepared and indexed in (results/corpora/NAME):
    one per corpus file, whichever datasets share it (seven datasets over wiki18
    index it once); a corpus a dataset makes itself (synthetic, 2WikiMultihopQA's
    contexts) is the dataset's own."""
    if block.get("corpus"):
        stem = re.sub(r"[^A-Za-z0-9_-]", "_", Path(block["corpus"]).name.split(".")[0]) or "corpus"
        return f"{stem}-{hashlib.sha1(block['corpus'].encode('utf-8')).hexdigest()[:8]}"
    return dataset


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


def load_hotpotqa(path: str | Path, corpus: Iterable[dict] | dict[str, str]) -> list[dict]:
    """HF `hotpot_qa` layout; supporting titles are mapped to corpus ids by title
    (`corpus`: its documents, or title_ids of them). A title the corpus lacks is
    kept in the question's `supporting_missing` and counted in the log; if no
    title at all is found, the corpus is the wrong one and this is an error (the
    oracle would label every selection empty)."""
    title_to_id = corpus if isinstance(corpus, dict) else title_ids(corpus)
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
                         f"(first: '{missing[0][1]}' at {missing[0][0]}); is the dataset's `corpus` the right one?")
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
        if self.layout != "synthetic" and not self.questions:  # the corpus: checked where it is read (CorpusSettings.of)
            raise ConfigError(f"key 'datasets.{self.name}.questions': missing (layout {self.layout} reads it)")

    @classmethod
    def from_dict(cls, name: str, block: dict) -> "DatasetSettings":
        """From config `datasets.NAME` (the keys prepare_data reads)."""
        made = synthetic.SyntheticSettings(**block.get("synthetic", {})) if block["layout"] == "synthetic" else None
        return cls(name, block["layout"], block.get("questions"), block.get("corpus"), made,
                   block.get("eval_questions"))


def needed_files(layout: str) -> tuple[str, ...]:
    """The files a layout reads (2WikiMultihopQA makes its corpus from its own
    context paragraphs unless one is given; the synthetic set makes both)."""
    if layout == "synthetic":
        return ()
    return ("questions",) if layout == "2wikimultihopqa" else ("questions", "corpus")


def teacher_kind(block: dict, default: str) -> str:
    """A dataset's teacher: its own `teacher`, else `default` (config teacher.kind)
    where its layout carries annotations, else the LLM teacher."""
    return block.get("teacher") or (default if block["layout"] in ANNOTATED else "llm")


def answer_metrics(block: dict) -> list[str]:
    return list(block.get("metrics") or DEFAULT_METRICS.get(block["layout"], SHORT_FORM))


@dataclass(frozen=True)
class CorpusSettings:
    """Where a corpus comes from: a FlashRAG file (shared by every dataset that
    names it), or the one dataset that makes its own."""

    file: str | None = None  # a FlashRAG {id, contents} file (JSONL, JSON, Parquet or hf:)
    synthetic: synthetic.SyntheticSettings | None = None  # the embedded encyclopedia's articles
    contexts: str | None = None  # 2WikiMultihopQA questions whose context paragraphs are the corpus

    @classmethod
    def of(cls, settings: DatasetSettings) -> "CorpusSettings":
        if settings.corpus:
            return cls(file=settings.corpus)
        if settings.layout == "synthetic":
            return cls(synthetic=settings.synthetic)
        if "corpus" in needed_files(settings.layout):
            raise ConfigError(f"key 'datasets.{settings.name}.corpus': missing (layout {settings.layout} reads it)")
        return cls(contexts=settings.questions)

    @classmethod
    def from_dict(cls, block: dict) -> "CorpusSettings":
        """From corpus_keys' part of a dataset block."""
        if block.get("corpus"):
            return cls(file=block["corpus"])
        if block["layout"] == "synthetic":
            return cls(synthetic=synthetic.SyntheticSettings(**block.get("synthetic", {})))
        return cls(contexts=block["questions"])


def corpus_owner(datasets: dict, corpus: str) -> str:
    """The first dataset (in the config's order) whose corpus this is: its block
    says where the corpus comes from."""
    return next(name for name, block in datasets.items() if corpus_name(name, block) == corpus)


def corpus_keys(block: dict) -> tuple[str, ...]:
    """The keys of a dataset block its corpus is made from."""
    if block.get("corpus"):
        return ("corpus",)
    return ("layout", "synthetic") if block["layout"] == "synthetic" else ("layout", "questions")


def prepare(settings: DatasetSettings) -> dict:
    """A dataset's questions, corpus and true trees as lists (what prepare_corpus
    and prepare_data write, for library use)."""
    corpus, trees = prepare_corpus(CorpusSettings.of(settings))
    corpus = list(corpus)
    return {"questions": prepare_questions(settings, title_ids(corpus)), "corpus": corpus, "trees": trees}


def prepare_corpus(settings: CorpusSettings) -> tuple[Iterable[dict], list[dict]]:
    """The corpus (streamed from a file, or made by the dataset itself) and the
    true trees known for it: the synthetic articles' sections. A document
    without a tree (a Wikipedia paragraph) is one abstract to the oracle."""
    if settings.synthetic:
        _, corpus, trees = synthetic_dataset(settings.synthetic)
        return corpus, trees
    if settings.file:
        return corpus_documents(settings.file), []
    return loaders.load_2wikimultihopqa(settings.contexts)[1], []  # 2Wiki's own context paragraphs


def prepare_questions(settings: DatasetSettings, title_to_id: dict[str, str] | None = None) -> list[dict]:
    """The normalized questions. With `eval_questions`, each carries its `pool`
    (train or eval), from which split_questions draws that part. `title_to_id`:
    the corpus' titles, where supporting titles are mapped to its documents
    (HotpotQA, 2WikiMultihopQA with a corpus given)."""
    if settings.layout == "synthetic":
        return synthetic_dataset(settings.synthetic)[0]
    pools = [("train", settings.questions), ("eval", settings.eval_questions)] if settings.eval_questions else \
        [(None, settings.questions)]
    questions = []
    for pool, source in pools:
        loaded = load_question_set(settings.layout, source, title_to_id if settings.corpus else None)
        questions += [{**q, "pool": pool, "_where": f"{source}, question {q['id']}"} if pool else q for q in loaded]
    if settings.eval_questions:
        check_unique(((q["id"], q["_where"]) for q in questions), f"{settings.questions} and {settings.eval_questions}")
        questions = strip_where(questions)
    return questions


def load_question_set(layout: str, source: str, title_to_id: dict[str, str] | None) -> list[dict]:
    """A layout's questions; supporting titles name documents of the corpus
    given (`title_to_id`), or 2WikiMultihopQA's own context paragraphs."""
    if layout == "2wikimultihopqa":
        questions, _ = loaders.load_2wikimultihopqa(source)
        return retarget_supporting(questions, title_to_id, source) if title_to_id is not None else questions
    if layout == "hotpotqa":
        return load_hotpotqa(source, title_to_id)
    return {"flashrag": load_flashrag_questions, "asqa": loaders.load_asqa, "eli5": loaders.load_eli5}[layout](source)


def reads_titles(layout: str) -> bool:
    """Whether a layout's questions name their supporting documents by title, so
    that preparing them reads the corpus."""
    return layout in ("hotpotqa", "2wikimultihopqa")


def retarget_supporting(questions: list[dict], title_to_id: dict[str, str], corpus_path) -> list[dict]:
    """2Wiki's supporting titles as documents of a corpus given with it (found by
    title); a title it lacks is kept in `supporting_missing`, as for HotpotQA."""
    for number, question in enumerate(questions):
        titles = [s["title"] for s in question["supporting"]]
        question["supporting"] = [{"doc_id": title_to_id[t], "title": t, "path": []} for t in titles if t in title_to_id]
        question["supporting_missing"] = [t for t in titles if t not in title_to_id]
        question["_where"] = f"question {question['id']}"
    report_missing_titles(questions, corpus_path)
    return strip_where(questions)
