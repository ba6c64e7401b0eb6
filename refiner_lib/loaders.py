"""Question sets in their own published layouts (not FlashRAG's), loaded into
data.py's normalized question layout: 2WikiMultihopQA, ASQA and ALCE's ELI5.

These sets ship as one JSON array; sources.read_records takes an array, JSONL,
Parquet or a Hub dataset. Every error names the file, the record (`file:
record N`, N counted from 0, in an array; `file:line` in JSONL) and the field. A record is loaded or it is an error; the
one thing merged is a 2Wiki title seen in several questions' contexts.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from .errors import InputError
from .jsonl import check_unique, require, require_text
from .sources import read_records, strip_where

LOG = logging.getLogger(__name__)


def load_2wikimultihopqa(path: str | Path) -> tuple[list[dict], list[dict]]:
    """Questions and their corpus. 2Wiki ships no corpus: each question's ten
    `context` paragraphs (gold and distractors) are the retrieval pool, one
    document per distinct title, in first-seen order. A document's id is
    "2wiki-" + the first 16 hex digits of its title's SHA-1, so a title has the
    same id in any sample of the set. A title met again with another text keeps
    its first text; one warning counts these. Extra field: `evidences`, the
    [subject, relation, object] triples of the reasoning path."""
    documents: dict[str, dict] = {}
    conflicts: list[str] = []
    questions = []
    for where, record in read_records(path):
        context = context_paragraphs(record, where)
        for title, text in context:
            contents = f"{title}\n{text}"
            first = documents.setdefault(title, {"id": document_id(title), "contents": contents, "_where": where})
            if first["contents"] != contents:
                conflicts.append(f"'{title}' at {where}, first at {first['_where']}")
        supporting = supporting_titles(record, {title for title, _ in context}, where)
        questions.append({"id": record_id(record, "_id", where), "question": require_text(record, "question", where),
                          "golden_answers": [require_text(record, "answer", where)], "label": "Local",
                          "type": require_text(record, "type", where),
                          "supporting": [{"doc_id": documents[t]["id"], "title": t, "path": []} for t in supporting],
                          "evidences": evidence_triples(record, where), "_where": where})
    if conflicts:
        LOG.warning("%s: %d context paragraphs repeat an earlier title with another text; each title keeps its "
                    "first text (first: %s)", path, len(conflicts), conflicts[0])
    check_unique(((q["id"], q["_where"]) for q in questions), path)
    check_unique(((d["id"], d["_where"]) for d in documents.values()), path, "document id")  # a SHA-1 prefix clash
    return strip_where(questions), strip_where(list(documents.values()))


def load_asqa(path: str | Path) -> list[dict]:
    """ASQA: an ambiguous `question` whose disambiguated readings (`qa_pairs`)
    each have short answers. `readings` keeps them apart, one list per qa_pair,
    since STR-EM scores how many readings a prediction answers;
    `golden_answers` is their union (unique, in order) for one-list metrics;
    `long_answers` are the annotators' long answers (ROUGE-L). Not kept: the
    readings' questions, wikipages, knowledge, nq_answer."""
    questions = []
    for where, record in read_records(path):
        readings = [text_list(pair, "short_answers", place) for place, pair in objects(record, "qa_pairs", where)]
        questions.append({"id": record_id(record, "id", where), "question": require_text(record, "question", where),
                          "golden_answers": list(dict.fromkeys(a for reading in readings for a in reading)),
                          "label": None, "type": None, "supporting": [], "readings": readings,
                          "long_answers": [require_text(annotation, "long_answer", place)
                                           for place, annotation in objects(record, "annotations", where)],
                          "_where": where})
    check_unique(((q["id"], q["_where"]) for q in questions), path)
    return strip_where(questions)


def load_eli5(path: str | Path) -> list[dict]:
    """ALCE's ELI5 evaluation file. Its records have no ids, so a question's id
    is "eli5-" + its record's position in the file, from 0 (the N of `record N`
    in errors): stable for one file, not across re-orderings or subsets of it,
    and unique by construction. `answer` is the one reference (golden_answers
    and long_answers); `claims` its sub-claims (claim recall). Not kept:
    question_ctx (mostly empty, "[removed]" or "[deleted]")."""
    questions = []
    for index, (where, record) in enumerate(read_records(path)):
        answer = require_text(record, "answer", where)
        questions.append({"id": f"eli5-{index}", "question": require_text(record, "question", where),
                          "golden_answers": [answer], "label": None, "type": None, "supporting": [],
                          "long_answers": [answer], "claims": text_list(record, "claims", where)})
    return questions


def record_id(record: dict, field: str, where: str) -> str:
    """A string or integer id, as a non-empty string."""
    value = require(record, field, (str, int), where)
    if isinstance(value, str) and not value.strip():
        raise InputError(f"{where}: field '{field}' is empty")
    return str(value)


def text_list(record: dict, field: str, where: str) -> list[str]:
    """A non-empty list of non-blank strings (answers, claims)."""
    values = require(record, field, list, where)
    if not values:
        raise InputError(f"{where}: field '{field}' is empty")
    for number, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where}: field '{field}' item {number} must be a non-empty string, got {brief(value)}")
    return values


def objects(record: dict, field: str, where: str) -> list[tuple[str, dict]]:
    """(where, item) for a non-empty list of JSON objects, each `where` naming the item."""
    items = require(record, field, list, where)
    if not items:
        raise InputError(f"{where}: field '{field}' is empty")
    for number, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(f"{where}: field '{field}' item {number} must be an object, got {brief(item)}")
    return [(f"{where}: field '{field}' item {number}", item) for number, item in enumerate(items)]


def context_paragraphs(record: dict, where: str) -> list[tuple[str, str]]:
    """(title, sentences joined by a space) of 2Wiki's `context`, [[title, [sentences]], ...].
    A title must be one line: a corpus document's first line is its title."""
    paragraphs = []
    for number, item in enumerate(require(record, "context", list, where)):
        place = f"{where}: field 'context' item {number}"
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], list)
                and all(isinstance(sentence, str) for sentence in item[1])):
            raise InputError(f"{place} must be [title, [sentences]], got {brief(item)}")
        title, text = item[0], " ".join(item[1])
        if not title.strip() or "\n" in title or "\r" in title:
            raise InputError(f"{place}: the title must be one non-empty line, got {title!r}")
        if not text.strip():
            raise InputError(f"{place} ('{title}') has no text")
        paragraphs.append((title, text))
    if not paragraphs:
        raise InputError(f"{where}: field 'context' is empty")
    return paragraphs


def supporting_titles(record: dict, context_titles: set[str], where: str) -> list[str]:
    """The distinct titles of 2Wiki's `supporting_facts`, [[title, sentence number], ...];
    each must be a title of the record's own context (its corpus documents)."""
    titles = []
    for number, fact in enumerate(require(record, "supporting_facts", list, where)):
        place = f"{where}: field 'supporting_facts' item {number}"
        if not (isinstance(fact, list) and len(fact) == 2 and isinstance(fact[0], str)
                and isinstance(fact[1], int) and not isinstance(fact[1], bool)):
            raise InputError(f"{place} must be [title, sentence number], got {brief(fact)}")
        if fact[0] not in context_titles:
            raise InputError(f"{place}: title '{fact[0]}' is not a title of the record's 'context'")
        titles.append(fact[0])
    if not titles:
        raise InputError(f"{where}: field 'supporting_facts' is empty")
    return list(dict.fromkeys(titles))


def evidence_triples(record: dict, where: str) -> list[list[str]]:
    """2Wiki's `evidences`, [[subject, relation, object], ...]."""
    triples = require(record, "evidences", list, where)
    for number, triple in enumerate(triples):
        if not (isinstance(triple, list) and len(triple) == 3 and all(isinstance(part, str) for part in triple)):
            raise InputError(f"{where}: field 'evidences' item {number} must be [subject, relation, object], "
                             f"got {brief(triple)}")
    return triples


def document_id(title: str) -> str:
    return "2wiki-" + hashlib.sha1(title.encode("utf-8")).hexdigest()[:16]


def brief(value: Any) -> str:
    """A bad value as JSON, cut short for an error message."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
