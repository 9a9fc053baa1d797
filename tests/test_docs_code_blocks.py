"""Every Python code block of the documentation (docs/ and the README) runs.

The blocks of one page run in order in one namespace, as a reader would paste
them, in a temporary working directory, with a non-interactive matplotlib
backend. A block may be preceded by a comment line
``.. the next block is run as: <file name under tests/docs_stand_ins/>``
when it needs something a test machine does not have (a Dask scheduler
address, a network download): the stand-in file then runs instead, and must do
the same thing against what the machine has.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted(p for p in (ROOT / "docs").rglob("*.rst") if "_build" not in p.parts)
STAND_INS = Path(__file__).parent / "docs_stand_ins"
_DIRECTIVE = re.compile(r"^(\s*)\.\. code-block:: python\s*$")
_STAND_IN = re.compile(r"^\s*\.\. the next block is run as: (\S+)\s*$")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of every ``.. code-block:: python`` in an rst text."""
    lines = text.splitlines()
    blocks, stand_in = [], None
    i = 0
    while i < len(lines):
        m_stand = _STAND_IN.match(lines[i])
        if m_stand:
            stand_in = m_stand.group(1)
        m = _DIRECTIVE.match(lines[i])
        if not m:
            i += 1
            continue
        indent = len(m.group(1))
        body = []
        j = i + 1
        while j < len(lines):
            line = lines[j]
            if line.strip() and (len(line) - len(line.lstrip())) <= indent:
                break
            if not re.match(r"^\s*:\w+:", line):  # directive options such as :caption:
                body.append(line)
            j += 1
        width = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=0)
        code = "\n".join(b[width:] for b in body).strip("\n")
        start = i + 1
        if stand_in is not None:
            code = (STAND_INS / stand_in).read_text()
            stand_in = None
        blocks.append((start, code))
        i = j
    return blocks


def markdown_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of every fenced ```python block of a Markdown text."""
    blocks = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M):
        blocks.append((text[: m.start()].count("\n") + 2, m.group(1).rstrip("\n")))
    return blocks


def page_blocks(page: Path) -> list[tuple[int, str]]:
    text = page.read_text()
    return markdown_blocks(text) if page.suffix == ".md" else python_blocks(text)


PAGES = [p for p in [ROOT / "README.md", *DOCS] if page_blocks(p)]


def test_the_parser_finds_blocks():
    text = "Intro\n\n.. code-block:: python\n\n   x = 1\n\n   y = x + 1\n\nAfter.\n\n.. code-block:: bash\n\n   ls\n"
    assert python_blocks(text) == [(3, "x = 1\n\ny = x + 1")]
    assert markdown_blocks("# t\n\n```python\na = 2\n```\n\n```bash\nls\n```\n") == [(4, "a = 2")]
    assert len(PAGES) >= 10


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs(page, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    namespace = {"__name__": "__main__"}
    for line, code in page_blocks(page):
        try:
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - re-raised with the block's place
            raise AssertionError(f"{page.relative_to(ROOT)} block at line {line} failed: {exc!r}") from exc
    import matplotlib.pyplot as plt

    plt.close("all")
