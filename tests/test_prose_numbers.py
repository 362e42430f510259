"""The prose of the chapters quotes no measured number by hand: such numbers are glued.

A number measured or computed in a cell and typed into the markdown drifts as soon as the code
changes. Quoted through myst-nb's ``{glue:text}`` role, it is the cell's own output. This test
reads every chapter's markdown and fails on a number that *looks measured* and is not glued:

- a decimal (``0.97``, ``6.3``), a power of ten (``1e-7``, ``10^{-7}``), a percentage;
- an integer of 100 or more (``384``, ``30,522``, ``1\\,048\\,576``).

Small integers (counts, indices, chapter numbers, ``d = 4``) pass: they are the text's own
constants. So do, after stripping: glue roles, inline code, citations, link targets, and numbers
inside names (``GPT-2``, ``SmolLM2-135M``, ``all-MiniLM-L6-v2``). A value assigned to a symbol
of :data:`PARAMETERS` (``$T = 0.01$``, ``$d_{\\text{model}} = 512$``) is a setting the text
chooses, not a measurement. Everything else is in the short, commented :data:`ALLOWED`.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

# Symbols whose value the text sets (a hyperparameter, a temperature, an offset): "$T = 0.01$".
PARAMETERS = {
    "T", "d", "d_k", "d_v", "d_{\\text{model}}", "d_{\\text{head}}", "h", "k", "n", "p", "s",
    "N", "\\beta", "max_len",
}  # fmt: skip

# Constants of the text, per chapter (number as typed, without thousands separators -> why).
ALLOWED: dict[str, dict[str, str]] = {
    "*": {"3.11": "the Python version of the install line in every chapter's first cell"},
    "01_tokens_and_embeddings.ipynb": {
        "50257": "GPT-2's vocabulary size, cited",
        "30000": "BERT's vocabulary, 'about 30,000', cited",
        "37000": "the original Transformer's vocabulary, 'about 37,000', cited",
        "256": "the 256 byte values of byte-level BPE",
    },
}

YEAR = re.compile(r"^(19[5-9]\d|20[0-3]\d)$")

# Stripped before looking for numbers: what is not prose the author typed as a number.
STRIP = [
    re.compile(r"\{glue(?::\w+)?\}`[^`]*`"),  # glued values
    re.compile(r"\{(?:cite|cite:\w+|term|doc|ref|numref|eq)\}`[^`]*`"),  # roles
    re.compile(r"```.*?```", re.S),  # fenced blocks' info strings and code
    re.compile(r"`[^`]*`"),  # inline code
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"<!--.*?-->", re.S),  # comments
    re.compile(r"^:\w+:.*$", re.M),  # directive options
]
ADMONITION = re.compile(r"```\{(?:admonition|note|warning|tip)\}[^\n]*\n(.*?)```", re.S)

NUMBER = re.compile(
    r"(?<![\w.^{])(?<!\w-)"  # not inside a name (GPT-2, L6-v2) or an exponent
    r"(\d{1,3}(?:(?:,|\{,\}|\\,)\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(\s*(?:e|E)[-+]?\d+|\s*\\?%)?"
    r"(?![\w\-^])"  # not followed by letters (135M, 7B), a hyphen or ^ (10000^{2i/d})
)
POWER_OF_TEN = re.compile(r"10\^\{?-\d+")
ASSIGNMENT = re.compile(r"([A-Za-z\\][\w\\{}]*?)\s*=\s*$")


def prose(cell_source: str) -> str:
    """The markdown of a cell with glue roles, code, citations and links removed; the text
    of admonitions (solutions) is kept."""
    text = ADMONITION.sub(lambda m: m.group(1), cell_source)
    for pattern in STRIP:
        text = pattern.sub(" ", text)
    return text


def measured_looking(text: str, allowed: dict[str, str]) -> list[str]:
    """The numbers of ``text`` that look measured and are neither glued nor allowed."""
    found = [m.group(0) for m in POWER_OF_TEN.finditer(text)]
    for m in NUMBER.finditer(text):
        digits, suffix = m.group(1), m.group(2) or ""
        plain = re.sub(r"\{,\}|\\,|,", "", digits)
        looks_measured = "." in plain or suffix or int(plain) >= 100
        if not looks_measured or YEAR.match(plain) and not suffix or plain in allowed:
            continue
        before = text[max(0, m.start() - 40) : m.start()]
        assigned = ASSIGNMENT.search(before.replace("$", ""))
        if assigned and assigned.group(1) in PARAMETERS:
            continue
        found.append(digits + suffix)
    return found


def test_the_checker_flags_what_it_should():
    allowed = ALLOWED["*"]
    assert measured_looking("the weight is about 0.97 here", allowed) == ["0.97"]
    assert measured_looking("gap ≈ 1e-7, and 30,522 pieces", allowed) == ["1e-7", "30,522"]
    assert measured_looking("$\\ln 12 \\approx 2.48$ and 3 %", allowed) == ["2.48", "3 %"]
    assert measured_looking("$4 \\times 512 = 1\\,048\\,576$", allowed) == ["512", "1\\,048\\,576"]
    assert measured_looking("a gap of $10^{-7}$", allowed) == ["10^{-7"]
    assert measured_looking("GPT-2, SmolLM2-135M, L6-v2, 12 heads, 2017", allowed) == []
    assert measured_looking("$T = 0.01$ and $d_{\\text{model}} = 512$", allowed) == []
    assert measured_looking("$10000^{2i/d}$, 10,000 pairs, x = 0.3", allowed) == ["10,000", "0.3"]
    glued = prose("about {glue:text}`w:.2f` of it, `d_model = 512`, {cite}`vaswani2017`")
    assert measured_looking(glued, allowed) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_prose_numbers_are_glued(path):
    allowed = ALLOWED["*"] | ALLOWED.get(path.name, {})
    notebook = nbformat.read(path, as_version=4)
    problems = [
        f"cell {i} ({cell.get('id')}): {numbers}"
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "markdown"
        and (numbers := measured_looking(prose(cell.source), allowed))
    ]
    assert not problems, (
        f"{path.name} types measured-looking numbers; glue them (myst_nb.glue) or, if they "
        "are constants of the text, add them to ALLOWED with a reason:\n" + "\n".join(problems)
    )


GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)(?::[^`]*)?`")
GLUE_CALL = re.compile(r"""\bglue\(\s*(f?)(["'])(.+?)\2""")
STRING = re.compile(r"""(["'])(\w+)\1""")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_glued_name_is_glued_by_a_cell(path):
    """A ``{glue:text}`name``` role needs a cell that calls ``glue("name", ...)`` (an f-string
    name matches by its pattern; a name glued from a loop over a dict is found as a literal)."""
    notebook = nbformat.read(path, as_version=4)
    cells = notebook.cells
    code = "\n".join(cell.source for cell in cells if cell.cell_type == "code")
    patterns = [
        re.compile(re.sub(r"\\\{.*?\\\}", ".+", re.escape(name)) if fstring else re.escape(name))
        for fstring, _, name in GLUE_CALL.findall(code)
    ]
    if re.search(r"\bglue\(", code):  # names glued in a loop: string literals
        patterns += [re.compile(re.escape(name)) for _, name in STRING.findall(code)]
    used = {name for cell in cells if cell.cell_type == "markdown"
            for name in GLUE_ROLE.findall(cell.source)}  # fmt: skip
    missing = sorted(name for name in used if not any(p.fullmatch(name) for p in patterns))
    assert not missing, f"{path.name} quotes glued names that no cell glues: {missing}"
