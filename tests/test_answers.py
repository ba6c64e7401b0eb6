"""The short answer inside a generator's output, on outputs small instruction
models really give (SmolLM2-135M's among them)."""
import pytest

from refiner_lib.answers import extract_answer
from refiner_lib.metrics import exact_match

CASES = [
    ("The answer is Lindqvar.", "Lindqvar"),
    ("Lindqvar", "Lindqvar"),
    ("Lindqvar.", "Lindqvar"),
    ("Answer: 1843", "1843"),
    ("The final answer is: 12,000 people.", "12,000 people"),
    ("Lindqvar. He was born there in 1843 and later moved to the coast.", "Lindqvar"),
    ("**Kelvin River**", "Kelvin River"),
    ("\"Amber Quill\"", "Amber Quill"),
    ("Dr. J. R. Tolkien wrote it", "Dr. J. R. Tolkien wrote it"),
    ("3.5 meters", "3.5 meters"),
    ("\n\nNordvik\nExplanation: the second document says so.", "Nordvik"),
    ("", ""),
]


@pytest.mark.parametrize("generation, expected", CASES)
def test_the_answer_is_cut_from_its_wrapping(generation, expected):
    assert extract_answer(generation) == expected


def test_extraction_lets_exact_match_score_a_sentence_answer():
    generation = "The answer is Lindqvar. It is a town in the Kessa Valley."
    assert exact_match(generation, ["Lindqvar"]) == 0.0
    assert exact_match(extract_answer(generation), ["Lindqvar"]) == 1.0
