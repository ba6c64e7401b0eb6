"""LongRefiner's task prompts (Jin et al. 2025) and the generator's prompt.

Stage records use the Alpaca layout {instruction, input, output}: instruction
is the system prompt, input the user turn, output the assistant turn.
"""
from __future__ import annotations

import ast
import json
import re

from .structure import abstract_text, outline_text

STAGES = ("query_analysis", "doc_structuring", "global_selection")

QUERY_ANALYSIS_SYSTEM = "\nYou are an assistant that performs step-by-step analysis of user queries.\n"
DOC_STRUCTURING_SYSTEM = "Divide the following long text into well-structured, appropriately sized chapters."
GLOBAL_SELECTION_SYSTEM = (
    "You will be provided with three inputs:\n"
    "1. An user question that may need a long-form detail answer.\n"
    "2. The abstract of a document\n"
    "3. Outline of the document, contains titles of section and subsections in the document.\n\n"
    "Your task is to understand the article based on its abstract and outline, and select all the parts that "
    "are helpful for answering questions (provide corresponding titles, or `abstract`).\n"
)
GENERATOR_SYSTEM = (
    "Answer the question based on the given documents. Only give me the answer and do not output any other words."
)
QUERY_LABELS = ("Local", "Global")


def query_analysis_record(question: str, label: str | None = None) -> dict:
    return {"instruction": QUERY_ANALYSIS_SYSTEM, "input": question, "output": f"[{label}]" if label else ""}


def doc_structuring_record(body: str, outline: str | None = None) -> dict:
    return {"instruction": DOC_STRUCTURING_SYSTEM, "input": body, "output": outline or ""}


def global_selection_record(question: str, tree: dict, selected: list[str] | None = None) -> dict:
    user = (f"**Document abstract**: {abstract_text(tree)}\n**Document outline**: {outline_text(tree)}\n\n"
            f"{QUESTION_HEADER}{question}\nOutput:")
    return {"instruction": GLOBAL_SELECTION_SYSTEM, "input": user, "output": repr(list(selected)) if selected is not None else ""}


# Worked examples shown before each question: small generators copy their form
# (a short span of the documents, no sentence), which is what EM and F1 score.
GENERATOR_EXAMPLES = (
    ("Orvel Danstrom\nOrvel Danstrom is a painter from the Kessa Valley. He was born in 1843 in the town of "
     "Lindqvar, where his father kept a mill.", "Where was Orvel Danstrom born?", "Lindqvar"),
    ("Hasse Brun\nHasse Brun was born in 1790.\n\nMira Tolv\nMira Tolv was born in 1802.",
     "Who was born first, Mira Tolv or Hasse Brun?", "Hasse Brun"),
)
ANSWER_STOP = "\n"  # an answer is one line: generation stops at the first line break
# The generator's turn starts with this lead-in and the model continues it: a
# 135M model asked for "a few words" still writes sentences, but after "The
# answer is" it names the answer, which the extractor then cuts out.
ANSWER_LEAD_IN = "The answer is"


DOCUMENTS_HEADER = "Documents:\n"  # what precedes the context in the generator's question turn
QUESTION_HEADER = "**Question**:"  # what follows a document in a global-selection prompt


def generator_user_turn(question: str, context: str) -> str:
    return f"{DOCUMENTS_HEADER}{context}\n\nQuestion: {question}\nAnswer with a few words only."


def generator_messages(question: str, context: str) -> list[dict]:
    """The generator's chat: instruction, worked examples, the question, and the
    start of its answer (ANSWER_LEAD_IN) for the model to continue."""
    messages = [{"role": "system", "content": GENERATOR_SYSTEM}]
    for example_context, example_question, example_answer in GENERATOR_EXAMPLES:
        messages += [{"role": "user", "content": generator_user_turn(example_question, example_context)},
                     {"role": "assistant", "content": f"{ANSWER_LEAD_IN} {example_answer}."}]
    return messages + [{"role": "user", "content": generator_user_turn(question, context)},
                       {"role": "assistant", "content": ANSWER_LEAD_IN}]


def chat_prompt(tokenizer, messages: list[dict]) -> str:
    """The chat template's text: a final assistant message is continued, not closed."""
    if messages[-1]["role"] == "assistant":
        return tokenizer.apply_chat_template(messages, continue_final_message=True, tokenize=False)
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def record_messages(record: dict, with_output: bool = False) -> list[dict]:
    messages = [{"role": "system", "content": record["instruction"]}, {"role": "user", "content": record["input"]}]
    if with_output:
        messages.append({"role": "assistant", "content": record["output"]})
    return messages


def parse_selection(text: str, titles: list[str]) -> list[str]:
    """Titles named in a model's answer, kept only if the document has them.
    Accepts a Python/JSON list, a {'selected_titles': [...]} object, or quoted names."""
    text = text.strip()
    candidates: list = []
    for loader in (ast.literal_eval, json.loads):
        try:
            value = loader(text)
        except (ValueError, SyntaxError, json.JSONDecodeError):
            continue
        if isinstance(value, dict):
            value = value.get("selected_titles", [])
        if isinstance(value, (list, tuple)):
            candidates = [str(v) for v in value]
            break
    if not candidates:
        candidates = re.findall(r"['\"]([^'\"]+)['\"]", text)
    known = {t.lower(): t for t in titles}
    chosen = []
    for candidate in candidates:
        title = known.get(candidate.strip().lower())
        if title and title not in chosen:
            chosen.append(title)
    return chosen
