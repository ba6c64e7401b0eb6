"""The refiner of one method, one question at a time: a student's trained
stages run its models, every other stage keeps the teacher's labels; then
LongRefiner's scoring under the token budget.

Methods that run no refiner model (baselines and ablations):
  full            the retrieved text, cut to the generator's window
  local_only      local (BM25) scores alone: no query analysis, no global selection
  selection_only  the teacher's global selection at full weight (alpha = 1), no query analysis
  teacher         the teacher's labels for every stage
Every other method is a student variant.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import measure, refine, stages
from .bm25 import BM25Params
from .errors import InputError
from .jsonl import load_jsonl, read_json
from .settings import BackendLimits, BackendSettings, Quantization

# DQA probabilities that switch global selection off (alpha = 0) or fully on (alpha = 1)
LOCAL_ONLY = {"Local": 1.0, "Global": 0.0}
SELECTION_ONLY = {"Local": 0.0, "Global": 1.0}


@dataclass(frozen=True)
class StudentModels:
    """A trained variant's models: one base with an adapter per trained stage,
    or (PTQ) one merged, quantized model per stage."""
    model_dir: str  # the student's base model
    adapters: dict = field(default_factory=dict)  # stage -> adapter folder
    stage_models: dict = field(default_factory=dict)  # stage -> merged, quantized model folder
    quantization: Quantization | None = None  # the base's bitsandbytes settings while serving (qlora: NF4)
    backend: BackendSettings = field(default_factory=BackendSettings)  # the engine and its precision
    batch_size: int = 8
    max_input_tokens: int = 1024
    max_new_tokens: dict = field(default_factory=dict)  # stage -> generation limit (doc structuring)

    def folder(self, stage: str) -> str:
        return self.stage_models.get(stage) or self.adapters[stage]

    def calibration(self, stage: str, name: str) -> dict:
        """A stage's calibration file, written beside its weights when it was trained (or quantized)."""
        path = Path(self.folder(stage)) / name
        if not path.exists():
            raise InputError(f"{path}: missing; a {stage} student is calibrated when it is trained "
                             "(rerun train_student, or quantize_student for a PTQ variant)")
        return read_json(path)

    def selection_threshold(self) -> float:
        return float(self.calibration("global_selection", stages.SELECTION_FILE)["threshold"])

    def alpha_calibration(self) -> dict:
        return self.calibration("query_analysis", stages.ANALYSIS_FILE)


@dataclass(frozen=True)
class RefinerSpec:
    """Everything that decides one method's refined contexts."""
    method: str
    retrieval: dict  # question id -> retrieved doc ids
    corpus: dict  # doc id -> {id, contents}
    teacher_labels: dict  # stage -> the teacher's eval labels file
    budget: int | None  # refined context size in generator tokens (None for `full`)
    max_context_tokens: int  # the generator's window, for `full`
    student: StudentModels | None = None
    local_scorer: BM25Params = BM25Params()  # BM25's constants for the paragraphs (config `retrieval`)


class Refiner:
    def __init__(self, spec: RefinerSpec, tokenizer):
        self.spec, self.tokenizer = spec, tokenizer
        self.backends = student_backends(spec.student) if spec.student else {}
        labels = {stage: load_jsonl(path) for stage, path in spec.teacher_labels.items()}
        self.analysis = {r["id"]: r for r in labels.get("query_analysis", [])}
        self.trees = {r["id"]: r for r in labels.get("doc_structuring", [])}
        self.selection = {(r["id"], r["doc_id"]): r["selected"] for r in labels.get("global_selection", [])}
        self.structured: dict[str, dict] = {}  # documents a trained HDS student has structured
        self.threshold = spec.student.selection_threshold() if "global_selection" in self.backends else None
        self.alpha_calibration = spec.student.alpha_calibration() if "query_analysis" in self.backends else None
        # step name -> its cost, filled by `measure_step` when a caller sets it (the demo app: live.cost_of)
        self.step_costs: dict = {}
        self.measure_step = None

    def flops(self) -> int:
        return sum(b.flops for b in self.distinct_backends())

    def distinct_backends(self) -> list:
        return list({id(b): b for b in self.backends.values()}.values())

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def retrieved_text(self, question_id: str) -> str:
        return "\n\n".join(self.spec.corpus[d]["contents"] for d in self.spec.retrieval[question_id])

    def refine(self, q: dict) -> dict:
        """The refined context and the stages' outputs for one question."""
        doc_ids = self.spec.retrieval[q["id"]]
        if self.spec.method == "full":
            return {"id": q["id"], "context": refine.full_context([self.spec.corpus[d] for d in doc_ids],
                                                                  self.spec.max_context_tokens, self.tokenizer)}
        trees = self.step("doc_structuring", lambda: {d: self.tree(d) for d in doc_ids})
        analysis = self.step("query_analysis", self.query_analysis, q)
        chosen, scores = self.step("global_selection", self.global_selection, q, doc_ids, trees)
        probabilities = {"local_only": LOCAL_ONLY, "selection_only": SELECTION_ONLY}.get(
            self.spec.method, analysis["probabilities"] if analysis else None)
        refined = self.step("scoring", refine.refine_question, q["question"], [trees[d] for d in doc_ids],
                            probabilities, [chosen.get(d, []) for d in doc_ids], self.spec.budget, self.count_tokens,
                            self.spec.local_scorer)
        row = {"id": q["id"], "context": refined["context"]}
        if refined.get("over_budget"):
            row["over_budget"] = True
        if analysis and self.spec.method not in ("local_only", "selection_only"):
            row.update(label=analysis["label"], probabilities=analysis["probabilities"])
        if self.spec.method != "local_only":
            row["selections"] = chosen
            if scores:
                row["selection_scores"] = scores
        return row

    def step(self, name: str, run, *args):
        """One step of refine(); measured into `step_costs` when the caller set
        `measure_step` (a function returning (result, cost))."""
        if self.measure_step is None:
            return run(*args)
        result, self.step_costs[name] = self.measure_step(run, *args)
        return result

    def teacher_stages(self) -> list[str]:
        """The stages whose output for a question this method reads from the
        teacher's labels (which exist for the run's own questions only)."""
        if self.spec.method in ("full", "local_only"):
            return []
        stages = ["global_selection"] if self.spec.method == "selection_only" else ["query_analysis", "global_selection"]
        return [stage for stage in stages if stage not in self.backends]

    def has_tree(self, doc_id: str) -> bool:
        """Whether this method can structure the document (its own student, or the teacher's tree)."""
        return self.spec.method == "full" or "doc_structuring" in self.backends or doc_id in self.trees

    def query_analysis(self, q: dict) -> dict | None:
        if "query_analysis" in self.backends:
            return stages.model_query_analysis(self.backends["query_analysis"], [q], self.alpha_calibration)[0]
        return self.analysis.get(q["id"])

    def global_selection(self, q: dict, doc_ids: list[str], trees: dict) -> tuple[dict, dict]:
        """doc id -> chosen titles, and (a student) doc id -> each title's probability."""
        if self.spec.method == "local_only":
            return {}, {}
        if "global_selection" in self.backends:
            picked = stages.scored_selection(self.backends["global_selection"], [q], self.spec.retrieval, trees,
                                             self.threshold)
            return {r["doc_id"]: r["selected"] for r in picked}, {r["doc_id"]: r["scores"] for r in picked}
        return {d: self.selection[(q["id"], d)] for d in doc_ids}, {}

    def tree(self, doc_id: str) -> dict:
        if "doc_structuring" not in self.backends:
            return self.trees[doc_id]
        if doc_id not in self.structured:  # a document is structured once, as LongRefiner caches it
            self.structured[doc_id] = stages.model_trees(
                self.backends["doc_structuring"], [self.spec.corpus[doc_id]],
                self.spec.student.max_new_tokens["doc_structuring"])[0]
        return self.structured[doc_id]

    def cost(self) -> dict:
        """Parameters and weights of the refiner's models, and their sizes on disk."""
        loaded = [b.weights() for b in self.distinct_backends()]
        student = self.spec.student
        adapters = list(student.adapters.values()) if student else []
        stage_models = list(student.stage_models.values()) if student else []
        disk = sum(measure.weight_bytes(folder) for folder in stage_models)
        if adapters:
            disk += measure.weight_bytes(student.model_dir)
        return {"method": self.spec.method, "refiner_parameters": sum(w["parameters"] for w in loaded),
                "refiner_memory_bytes": sum(w["memory_bytes"] for w in loaded),
                "adapter_bytes": sum(measure.folder_bytes(a) for a in adapters),
                "refiner_disk_bytes": disk + sum(measure.folder_bytes(a) for a in adapters)}


def make_backend(settings: BackendSettings, model_dir, limits: BackendLimits, adapters: dict | None = None,
                 quantization: Quantization | None = None):
    """Hugging Face transformers or vLLM, as `settings.kind` says: the same
    interface. vLLM loads the 16-bit base: `quantization` is for HF only."""
    if settings.kind == "vllm":
        from .vllm_backend import VLLMBackend

        return VLLMBackend(model_dir, limits, adapters=adapters, dtype=settings.dtype,
                           kv_cache_gb=settings.kv_cache_gb)
    from .backend import HFBackend

    return HFBackend(model_dir, adapters=adapters, quantization=quantization, batch_size=limits.batch_size,
                     max_input_tokens=limits.max_input_tokens, precision=settings.precision)


def student_backends(student: StudentModels) -> dict:
    """stage -> backend: one base model with every stage's adapter, or (PTQ)
    one merged, quantized model per stage."""
    limits = BackendLimits(student.batch_size, student.max_input_tokens,
                           max(student.max_new_tokens.values(), default=16))
    if student.stage_models:
        return {stage: make_backend(student.backend, folder, limits) for stage, folder in student.stage_models.items()}
    if not student.adapters:
        return {}
    shared = make_backend(student.backend, student.model_dir, limits, adapters=student.adapters,
                          quantization=student.quantization)
    return {stage: shared for stage in student.adapters}
