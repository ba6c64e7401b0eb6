"""One question through every method of a finished run, live: the run's own
refiners and generator, rebuilt from the settings each refine and generate job
wrote beside its output (refiner_lib.manifest), loaded once and kept loaded.

A question of the eval set is refined on the run's own retrieval and checked
against its golden answers; a typed question is retrieved with the run's BM25
index. A method that cannot answer (its files are missing, or it needs the
teacher's labels for a question the teacher never saw) says why instead of
failing the others.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import bm25, manifest, metrics
from .errors import InputError
from .jsonl import load_jsonl
from .refiner import Refiner
from .settings import BackendSettings, GenerationSettings, MethodSettings
from .structure import node_titles
from .study import dataset_folder, ordered
from .tasks import answer_rows, by_id, generator_backend, refiner_spec, retrieval_map

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallCost:
    """One call's wall time and the memory it took beyond what was held before it."""
    seconds: float
    peak_mb: float  # peak during the call minus the level at its start
    kind: str  # cuda_max_allocated, or rss_sampled on the CPU


def cost_of(run, *args):
    """(run(*args), CallCost). On a GPU: torch's peak allocation during the call.
    On the CPU, where the process' peak RSS only ever grows (so it cannot tell
    one call in a long-lived process from another), the RSS is sampled every
    2 ms on a thread for the length of the call."""
    import psutil
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start_bytes, started = torch.cuda.memory_allocated(), time.perf_counter()
        result = run(*args)
        torch.cuda.synchronize()
        return result, CallCost(time.perf_counter() - started,
                                (torch.cuda.max_memory_allocated() - start_bytes) / 2**20, "cuda_max_allocated")
    process, done, peak = psutil.Process(), threading.Event(), []
    start_bytes = process.memory_info().rss

    def sample():
        highest = start_bytes
        while not done.wait(0.002):
            highest = max(highest, process.memory_info().rss)
        peak.append(max(highest, process.memory_info().rss))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        result = run(*args)
    finally:
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
    return result, CallCost(seconds, (peak[0] - start_bytes) / 2**20, "rss_sampled")


@dataclass
class MethodAnswer:
    """What one method did with one question."""
    method: str
    unavailable: str | None = None  # why this method gives no answer
    refined: dict = field(default_factory=dict)  # the refiner's row: context, label, probabilities, selections, scores
    outlines: dict = field(default_factory=dict)  # doc id -> (document title, its section titles)
    context_tokens: int = 0
    retrieved_tokens: int = 0
    prediction: str = ""
    generation: str = ""
    scores: dict = field(default_factory=dict)  # em, f1, accuracy against the golden answers (eval questions)
    step_costs: dict = field(default_factory=dict)  # refinement step -> CallCost (refiner.Refiner.step)
    refine_cost: CallCost | None = None
    generate_cost: CallCost | None = None

    @property
    def compression(self) -> float | None:
        return self.context_tokens / self.retrieved_tokens if self.retrieved_tokens else None


def refine_manifests(results: Path) -> dict[str, Path]:
    """method -> the settings its refine job wrote (Hugging Face methods; a
    vLLM repeat of a method gives the same refinement)."""
    paths = {p.name.removesuffix(".settings.json"): p for p in (results / "refined").glob("*.settings.json")}
    return {method: paths[method] for method in ordered(paths) if "@" not in method}


class LiveStudy:
    def __init__(self, results: str | Path, methods: list[str] | None = None, dataset: str | None = None):
        self.results = dataset_folder(results, dataset)  # one dataset's part of the run
        self.questions = by_id(load_jsonl(self.results / "data" / "eval.jsonl"))
        # one retrieval map for every refiner: a typed question's documents are added to it
        self.retrieval = retrieval_map(self.results / "retrieval" / "eval.jsonl")
        self.top_k = max(len(doc_ids) for doc_ids in self.retrieval.values())
        self.generator, self.generation = self._generator()
        self.tokenizer = self.generator.tokenizer
        manifests = refine_manifests(self.results)
        if not manifests:
            raise InputError(f"{self.results / 'refined'}: no *.settings.json, which the refine jobs write beside "
                             "their outputs; for a run made before they did, run the workflow again "
                             "(make run): it reruns its refine and generate jobs, which write them")
        # the dataset's corpus and its index (results/corpora/NAME), which every method refines from:
        # the whole corpus, as a typed question may retrieve any of its documents
        corpus_path = Path(manifest.read(next(iter(manifests.values())))[1]["corpus"])
        self.corpus = by_id(load_jsonl(corpus_path))
        self.index = bm25.BM25Index.load(corpus_path.parent / "bm25")
        self.methods = list(methods or manifests)
        self.refiners: dict[str, Refiner] = {}
        self.unavailable: dict[str, str] = {}
        for method in self.methods:
            if method not in manifests:
                self.unavailable[method] = f"the run has no refinement for '{method}' ({self.results / 'refined'})"
            else:
                self._load(method, manifests[method])
        self.typed = 0
        self.lock = threading.Lock()  # one question at a time through the models: a step's memory is its own

    def warm_up(self) -> None:
        """One eval question through every method, untimed: a model's first
        call pays lazy initialization, which is not the latency the app shows.
        The app runs it on a thread once it serves the page."""
        self.ask(next(iter(self.questions.values())))

    def _generator(self):
        paths = sorted(p for p in (self.results / "answers").glob("*.settings.json") if "@" not in p.name)
        if not paths:
            raise InputError(f"{self.results / 'answers'}: no *.settings.json, which the generate jobs write beside "
                             "their outputs (is this a finished run's results folder?)")
        settings, files = manifest.read(paths[0])
        generation = GenerationSettings(**settings["generation"])
        return generator_backend(files["generator"], generation, BackendSettings(**settings["backend"])), generation

    def _load(self, method: str, path: Path) -> None:
        settings, files = manifest.read(path)
        absent = sorted(name for name, value in files.items() if isinstance(value, str) and not Path(value).exists())
        if absent:
            self.unavailable[method] = "missing: " + ", ".join(f"{files[name]} ({name})" for name in absent)
            return
        settings = {key: value for key, value in settings.items() if key != "method"}
        spec = refiner_spec(method, MethodSettings.from_dict(settings), files, self.corpus)
        try:
            refiner = Refiner(dataclasses.replace(spec, retrieval=self.retrieval), self.tokenizer)
        except Exception as error:  # one broken variant must not take the app down
            LOG.exception("%s: could not load", method)
            self.unavailable[method] = f"could not load: {error}"
            return
        # the teacher's trees of the training split too: more documents a typed question may retrieve
        eval_trees = files.get("doc_structuring_labels")
        train_trees = Path(eval_trees).with_name("train_labels.jsonl") if eval_trees else None
        if train_trees and train_trees.is_file():
            refiner.trees = {**by_id(load_jsonl(train_trees)), **refiner.trees}
        self.refiners[method] = refiner

    def question(self, question_id: str | None = None, text: str | None = None) -> dict:
        """An eval question by id, or a typed one (retrieved now)."""
        if question_id:
            if question_id not in self.questions:
                raise InputError(f"question '{question_id}' is not in {self.results / 'data' / 'eval.jsonl'}")
            return self.questions[question_id]
        if not text or not text.strip():
            raise InputError("type a question or pick one of the eval set")
        self.typed += 1
        question = {"id": f"typed-{self.typed}", "question": text.strip(), "golden_answers": []}
        self.retrieval[question["id"]] = [doc for doc, _ in self.index.top_k(question["question"], self.top_k)]
        return question

    def documents(self, question: dict) -> list[str]:
        return self.retrieval[question["id"]]

    def ask(self, question: dict) -> list[MethodAnswer]:
        return [self.answer(method, question) for method in self.methods]

    def answer(self, method: str, question: dict) -> MethodAnswer:
        with self.lock:
            return self._answer(method, question)

    def _answer(self, method: str, question: dict) -> MethodAnswer:
        if method in self.unavailable:
            return MethodAnswer(method, unavailable=self.unavailable[method])
        refiner = self.refiners[method]
        reason = self._why_not(refiner, question)
        if reason:
            return MethodAnswer(method, unavailable=reason)
        refiner.step_costs, refiner.measure_step = {}, cost_of
        try:
            refined, refine_cost = cost_of(refiner.refine, question)
            steps = refiner.step_costs
        finally:
            refiner.measure_step = None
        rows, generate_cost = cost_of(answer_rows, self.generator, self.generation, [refined],
                                      {question["id"]: question})
        result = MethodAnswer(method, refined=refined, step_costs=steps, refine_cost=refine_cost,
                              generate_cost=generate_cost,
                              context_tokens=refiner.count_tokens(refined["context"]),
                              retrieved_tokens=refiner.count_tokens(refiner.retrieved_text(question["id"])),
                              prediction=rows[0]["prediction"], generation=rows[0]["generation"])
        if method != "full":
            result.outlines = {d: outline(refiner.tree(d)) for d in self.documents(question)}
        if question.get("golden_answers"):
            result.scores = metrics.answer_metrics(result.prediction, question)
        return result

    def _why_not(self, refiner: Refiner, question: dict) -> str | None:
        needed = refiner.teacher_stages()
        if question["id"] not in self.questions and needed:
            stages = " and ".join(s.replace("_", " ") for s in needed)
            return (f"needs the teacher's {stages} labels, which exist for the run's own questions only "
                    "(the oracle teacher reads them from the data set's annotations)")
        absent = [d for d in self.documents(question) if not refiner.has_tree(d)]
        if absent:
            return f"no document structure for {', '.join(absent)} in this run (the teacher structured its questions' documents)"
        return None


def outline(tree: dict) -> tuple[str, list[str]]:
    return tree.get("title", tree["id"]), node_titles(tree)
