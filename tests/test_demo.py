"""The demo app (refiner_lib.demo) on the tiny run's results, in a real browser:
Debian's chromium, headless, driven by Selenium through Debian's chromedriver
(nothing downloads a browser). What the page shows is checked against the
workflow's own outputs for the same question."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from refiner_lib import manifest, study
from refiner_lib.errors import InputError
from refiner_lib.jsonl import load_jsonl
from workflow_helpers import source_env

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ANSWER_WAIT_SECONDS = 300


def need_browser() -> None:
    if CHROMIUM and CHROMEDRIVER:
        return
    message = "Debian's chromium and chromium-driver are needed (make test installs them as root)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_page(url: str, process: subprocess.Popen, log: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"the app did not answer at {url} within {seconds} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def app(synthetic_run, tmp_path_factory):
    need_browser()
    results = synthetic_run["workdir"] / "results"
    url, log = f"http://127.0.0.1:{free_port()}", tmp_path_factory.mktemp("app") / "app.log"
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "refiner_lib.demo", str(results), "--port", url.rsplit(":", 1)[1]],
                                   stdout=output, stderr=subprocess.STDOUT, env=source_env(synthetic_run["source"]),
                                   cwd=synthetic_run["workdir"])
    try:
        wait_for_page(url, process, log)
        yield {"url": url, "results": results, "folder": study.dataset_folder(results), "log": log}
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # no network but loopback here: without these chromium keeps trying to reach its services
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1500,1800", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def ask(browser, app, question_id: str | None = None, typed: str | None = None) -> dict[str, dict]:
    """Ask through the page; method -> what its card shows."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(app["url"])
    # the dropdown re-renders its options as the typed id filters them: an option read mid-render is stale
    wait = WebDriverWait(browser, 60, ignored_exceptions=(StaleElementReferenceException,))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#ask"))
    if question_id:
        field = browser.find_element(By.CSS_SELECTOR, "#pick input")
        field.click()
        field.send_keys(question_id)

        def click_option(driver) -> bool:
            for option in driver.find_elements(By.CSS_SELECTOR, "[role=option]"):
                if question_id in option.text:
                    option.click()
                    return True
            return False

        wait.until(click_option)
    if typed:
        field = browser.find_element(By.CSS_SELECTOR, "#typed textarea")
        field.send_keys(typed)
        field.send_keys(Keys.TAB)
    browser.find_element(By.CSS_SELECTOR, "#ask").click()
    methods = study.run_methods(app["folder"])

    def shown(driver):
        cards = driver.find_elements(By.CSS_SELECTOR, "#cards .method-card")
        done = [c for c in cards if c.find_elements(By.CSS_SELECTOR, ".answer, .unavailable-reason")]
        return len(done) == len(methods) and done

    cards = WebDriverWait(browser, ANSWER_WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,)).until(shown)
    return {card.get_attribute("data-method"): read_card(card) for card in cards}


def read_card(card) -> dict:
    from selenium.webdriver.common.by import By

    def text(selector: str) -> str | None:
        found = card.find_elements(By.CSS_SELECTOR, selector)
        return found[0].text if found else None

    return {"label": text(".label"), "answer": text(".answer"), "unavailable": text(".unavailable-reason"),
            "selections": {doc.get_attribute("data-doc"): sorted(li.get_attribute("data-title")
                                                                for li in doc.find_elements(By.CSS_SELECTOR, "li.chosen"))
                           for doc in card.find_elements(By.CSS_SELECTOR, ".doc")}}


def not_blank(png: Path) -> bool:
    from PIL import Image

    image = Image.open(png).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    background = max(colours)[1] if colours else None
    drawn = sum(count for count, colour in colours if colour != background)
    return len(colours) > 50 and drawn > 0.005 * image.width * image.height


def test_the_app_shows_every_method_as_the_workflow_ran_it(app, browser, tmp_path):
    results = app["folder"]
    question = load_jsonl(results / "data" / "eval.jsonl")[1]
    shown = ask(browser, app, question_id=question["id"])
    assert sorted(shown) == sorted(study.run_methods(results))
    for method, card in shown.items():
        refined = {r["id"]: r for r in load_jsonl(results / "refined" / f"{method}.jsonl")}[question["id"]]
        answer = {r["id"]: r for r in load_jsonl(results / "answers" / f"{method}.jsonl")}[question["id"]]
        assert card["unavailable"] is None, (method, card)
        assert card["answer"] == answer["prediction"], method
        assert card["label"] == refined.get("label"), method
        expected = {doc: sorted(titles) for doc, titles in (refined.get("selections") or {}).items()}
        if method == "full":
            assert card["selections"] == {}
        elif method == "local_only":
            assert not any(card["selections"].values())
        else:
            assert card["selections"] == expected, method
    screenshot = tmp_path / "ask.png"
    browser.save_screenshot(str(screenshot))
    assert not_blank(screenshot)
    keep_screenshot(screenshot)


def test_a_typed_question_runs_the_students_and_the_oracle_says_what_it_needs(app, browser, tmp_path):
    shown = ask(browser, app, typed="Which valley is the oldest city in?")
    assert "teacher" in shown["teacher"]["unavailable"] and "annotations" in shown["teacher"]["unavailable"]
    for method in ("lora", "qlora", "lora_ptq_int8", "lora_ptq_int4", "full", "local_only"):
        assert shown[method]["unavailable"] is None and shown[method]["answer"] is not None, method
    screenshot = tmp_path / "typed.png"
    browser.save_screenshot(str(screenshot))
    assert not_blank(screenshot)
    keep_screenshot(screenshot)


def test_the_study_browser_lists_every_question_and_the_disagreements(app, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(app["url"])
    wait = WebDriverWait(browser, 60)
    tab = wait.until(lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "button[role=tab]") if "Study" in b.text])
    tab[0].click()
    grid = wait.until(lambda d: [g for g in d.find_elements(By.CSS_SELECTOR, "#grid") if g.is_displayed()])[0]
    questions = [q["id"] for q in load_jsonl(app["folder"] / "data" / "eval.jsonl")]
    wait.until(lambda d: all(q in grid.text for q in questions))
    # the tiny run's answers are all wrong alike; whether the context holds the answer differs
    table = study.question_table(app["folder"])
    disagreeing = set(study.disagreements(table, "context_answer_recall")["id"])
    assert 0 < len(disagreeing) < len(questions)
    next(label for label in browser.find_elements(By.CSS_SELECTOR, "#metric label")
         if "context_answer_recall" in label.text).click()
    browser.find_element(By.CSS_SELECTOR, "#disagree input").click()
    wait.until(lambda d: all((q in grid.text) == (q in disagreeing) for q in questions))
    assert browser.find_element(By.CSS_SELECTOR, "#count").text.startswith(f"{len(disagreeing)} of {len(questions)}")
    screenshot = tmp_path / "study.png"
    browser.save_screenshot(str(screenshot))
    assert not_blank(screenshot)
    keep_screenshot(screenshot)


def keep_screenshot(path: Path) -> None:
    """DEMO_SCREENSHOTS=folder keeps the screenshots (the closing note describes them)."""
    folder = os.environ.get("DEMO_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


@pytest.fixture
def threads_of_the_refine_jobs():
    """The run's refine and generate jobs had one thread each; a matmul's float
    sums depend on how many threads split them (two put a probability 5e-7 off)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_live_answers_equal_the_workflow_and_a_missing_variant_shows_as_missing(synthetic_run, tmp_path,
                                                                               threads_of_the_refine_jobs):
    """In a copy of the run's results (so its manifests' relative paths must
    still resolve): every eval question through every method gives the labels,
    selections, contexts and answers the workflow wrote; then, with one
    variant's adapter gone, that variant is unavailable and the rest answer."""
    from refiner_lib.live import LiveStudy

    results = tmp_path / "results"
    shutil.copytree(synthetic_run["workdir"] / "results", results)
    live = LiveStudy(results)
    folder = study.dataset_folder(results)
    assert live.unavailable == {} and live.methods == study.run_methods(folder)
    for question in load_jsonl(folder / "data" / "eval.jsonl"):
        for answer in live.ask(live.question(question["id"])):
            refined = {r["id"]: r for r in load_jsonl(folder / "refined" / f"{answer.method}.jsonl")}[question["id"]]
            written = {r["id"]: r for r in load_jsonl(folder / "answers" / f"{answer.method}.jsonl")}[question["id"]]
            for key in ("context", "label", "probabilities", "selections", "selection_scores"):
                assert answer.refined.get(key) == refined.get(key), (answer.method, key)
            assert (answer.prediction, answer.context_tokens) == (written["prediction"], refined["context_tokens"])
            assert answer.refine_cost.seconds > 0 and answer.generate_cost.seconds > 0
    shutil.rmtree(results / "students" / "global_selection" / "qlora" / "adapter")
    live = LiveStudy(results)
    assert "adapter" in live.unavailable["qlora"] and list(live.unavailable) == ["qlora"]
    answers = {a.method: a for a in live.ask(live.question(text="Which valley is the oldest city in?"))}
    assert answers["qlora"].unavailable and answers["lora"].prediction == answers["lora"].prediction.strip()
    assert answers["lora"].unavailable is None and answers["teacher"].unavailable


def test_a_manifest_resolves_from_where_it_lies_and_names_a_bad_file(tmp_path):
    (tmp_path / "run" / "models" / "m").mkdir(parents=True)
    path = tmp_path / "run" / "refined" / "lora.settings.json"
    path.parent.mkdir()
    manifest.write(path, {"method": "lora"}, {"generator": str(tmp_path / "run" / "models" / "m"), "student": []})
    moved = tmp_path / "elsewhere"
    (tmp_path / "run").rename(moved)
    settings, files = manifest.read(moved / "refined" / "lora.settings.json")
    assert settings == {"method": "lora"} and Path(files["generator"]).resolve() == (moved / "models" / "m").resolve()
    assert files["student"] == []
    (moved / "refined" / "bad.settings.json").write_text('{"settings": 1}')
    with pytest.raises(InputError, match="bad.settings.json"):
        manifest.read(moved / "refined" / "bad.settings.json")


def test_disagreements_keep_the_questions_where_methods_differ():
    import pandas as pd

    table = pd.DataFrame({"id": ["a", "a", "b", "b", "c", "c"], "method": ["lora", "qlora"] * 3,
                          "em": [1.0, 0.0, 1.0, 1.0, 0.0, 0.0], "prediction": ["x", "y", "z", "z", "w", "v"],
                          "question": ["?"] * 6, "golden_answers": ["x", "x", "z", "z", "u", "u"]})
    assert sorted(study.disagreements(table, "em")["id"].unique()) == ["a"]
    assert study.disagreements(table, "em", ["lora"]).empty
    wide = study.answers_side_by_side(table)
    assert list(wide.columns) == ["id", "question", "golden_answers", "lora", "qlora"]
    assert wide.set_index("id").loc["a", "qlora"] == "✗ y" and wide.set_index("id").loc["a", "lora"] == "✓ x"
