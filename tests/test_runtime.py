"""A job's log: library messages repeated on every call appear once."""
import subprocess
import sys

from conftest import ROOT

STEP = """
import logging, sys
from refiner_lib.runtime import setup
setup(sys.argv[1], 1)
for _ in range(3):
    logging.getLogger("bitsandbytes.autograd._functions").warning("MatMul8bitLt: inputs will be cast from %s to float16", "bf16")
logging.getLogger("bitsandbytes.nn").warning("another message")
logging.getLogger("refiner_lib").info("progress 1")
logging.getLogger("refiner_lib").info("progress 1")
"""


def test_a_message_bitsandbytes_repeats_on_every_call_is_logged_once(tmp_path):
    log = tmp_path / "step.log"
    subprocess.run([sys.executable, "-c", STEP, str(log)], check=True, cwd=ROOT)
    text = log.read_text()
    assert text.count("MatMul8bitLt: inputs will be cast from bf16 to float16") == 1
    assert text.count("another message") == 1
    assert text.count("progress 1") == 2  # the project's own messages are all kept
