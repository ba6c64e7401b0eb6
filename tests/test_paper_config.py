"""config/paper.yaml, the paper-scale setting, is valid and plans the whole
study: checked by a dry run (nothing is downloaded or trained)."""
import yaml

from conftest import HOTPOTQA, ROOT, need_shared
from workflow_helpers import dry_run_jobs


def test_paper_config_plans_the_whole_study(tmp_path):
    need_shared(HOTPOTQA / "dev_distractor.jsonl")
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    assert config["roles"]["student"] == "qwen2.5-0.5b-instruct"
    assert config["models"][config["roles"]["teacher"]]["source"] == "hf:Qwen/Qwen2.5-3B-Instruct"
    assert config["teacher"]["adapters"]["global_selection"] == "hf:jinjiajie/Global-Selection-Qwen2.5-3B-Instruct"
    assert config["datasets"]["hotpotqa"]["split"] == {"num_train": 10000, "num_eval": 1000}
    assert config["inference"]["backends"] == ["hf", "vllm"]
    # the dry run needs the data files to exist: stand the shared HotpotQA dev files in for them
    data = tmp_path / "data" / "hotpotqa"
    data.mkdir(parents=True)
    (data / "train_distractor.jsonl").symlink_to(HOTPOTQA / "dev_distractor.jsonl")
    (data / "corpus.jsonl").symlink_to(HOTPOTQA / "corpus.jsonl")
    jobs = dry_run_jobs(tmp_path, config)
    assert jobs == {"materialize_model": 3, "prepare_corpus": 1, "prepare_data": 1, "split_questions": 2, "build_bm25_index": 1,
                    "retrieve": 2, "query_analysis": 2, "doc_structuring": 2, "global_selection": 2,
                    "merge_training_records": 2, "train_student": 4, "quantize_student": 4, "refine": 14, "time_refine": 2, "generate": 14,
                    "time_generate": 2, "evaluate": 14, "summarize": 1, "plot_results": 1}
