"""The code in README.md and docs/*.md runs, so the documentation cannot rot (issue 6).

The convention, documented in docs/index.md: a ```python block is a *complete program* when it
defines ``app`` at top level, defines a top-level ``test_...`` function that takes no
parameters, or has an ``if __name__ == "__main__":`` block. Every other block is a *fragment*.

- Each complete program is run as a module, on both backends, in a fresh working directory.
  One that defines ``app`` is the module ``app`` (what the docs call "save it as app.py"), so a
  later program on the same page can ``from app import app``. Its app is started in memory with
  ``TestClient`` (lifespan included) and asked for ``/``, which must not fail with a 5xx. Its
  ``test_...`` functions (which must be coroutines) are then awaited. The ``__main__`` part
  is not run: it starts a server.
- Each fragment must be valid Python (top-level ``await`` allowed), and that is all.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from shallot.testing import TestClient

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
#: Pages that must hold at least this many complete programs: a check on the check itself.
EXPECTED_PROGRAMS = {
    "README.md": 2,
    "docs/concepts.md": 1,
    "docs/routing.md": 1,
    "docs/testing.md": 2,
    "docs/deployment.md": 2,
    "docs/websockets.md": 1,
    "docs/migration.md": 1,
    "docs/uploads.md": 2,
}

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """One ```python block of a page."""

    page: Path
    line: int  # of the block's first line of code
    source: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(REPO_ROOT)}:{self.line}"

    def tree(self) -> ast.Module:
        return ast.parse(self.source, str(self.page))

    @property
    def defines_app(self) -> bool:
        for node in self.tree().body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            if any(isinstance(target, ast.Name) and target.id == "app" for target in targets):
                return True
        return False

    @property
    def test_names(self) -> list[str]:
        """Top-level ``test_...`` functions without parameters: those that need fixtures
        are shown for pytest and make no program by themselves."""
        return [
            node.name
            for node in self.tree().body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name.startswith("test_")
            and not (node.args.args or node.args.posonlyargs or node.args.kwonlyargs)
        ]

    @property
    def has_main(self) -> bool:
        return any(
            isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
            for node in self.tree().body
        )

    @property
    def is_program(self) -> bool:
        try:
            return self.defines_app or bool(self.test_names) or self.has_main
        except SyntaxError:  # top-level await: a fragment
            return False


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(page, text.count("\n", 0, match.start(1)) + 1, match.group(1))
        for match in _FENCE.finditer(text)
    ]


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]
PROGRAMS = [block for block in ALL_BLOCKS if block.is_program]
FRAGMENTS = [block for block in ALL_BLOCKS if not block.is_program]


def app_before(block: Block) -> Block | None:
    """The last program defining ``app`` above ``block`` on its page: the ``app`` module."""
    earlier = [
        other
        for other in PROGRAMS
        if other.page == block.page and other.line < block.line and other.defines_app
    ]
    return earlier[-1] if earlier else None


def load(block: Block, module_name: str) -> types.ModuleType:
    """Runs ``block`` as the module ``module_name``; tracebacks point into the page."""
    module = types.ModuleType(module_name)
    module.__file__ = str(block.page)
    sys.modules[module_name] = module
    code = compile("\n" * (block.line - 1) + block.source, str(block.page), "exec")
    exec(code, module.__dict__)
    return module


@contextmanager
def isolated_modules(*names: str) -> Iterator[None]:
    saved = {name: sys.modules.get(name) for name in names}
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


@pytest.mark.parametrize("block", PROGRAMS, ids=lambda block: block.name)
async def test_program_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a program that writes files writes them here
    with isolated_modules("app", "doc_program"), anyio.fail_after(10):
        provider = app_before(block)
        if provider is not None and not block.defines_app:
            load(provider, "app")
        module = load(block, "app" if block.defines_app else "doc_program")
        if block.defines_app:
            async with TestClient(module.app) as client:
                response = await client.get("/")
                assert response.status_code < 500, response.text
        for name in block.test_names:
            test = getattr(module, name)
            assert inspect.iscoroutinefunction(test), f"{name} must be an async function"
            await test()


@pytest.mark.parametrize("block", FRAGMENTS, ids=lambda block: block.name)
def test_fragment_is_valid_python(block: Block) -> None:
    compile(
        block.source,
        block.name,
        "exec",
        flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,
    )


def test_each_page_has_the_programs_it_should() -> None:
    found = {name: 0 for name in EXPECTED_PROGRAMS}
    for block in PROGRAMS:
        page = str(block.page.relative_to(REPO_ROOT))
        if page in found:
            found[page] += 1
    missing = {page: n for page, n in found.items() if n < EXPECTED_PROGRAMS[page]}
    assert not missing, f"pages with fewer complete programs than expected: {missing}"


_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings: lower case, punctuation dropped."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return {
        re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        for heading in _HEADING.findall(text)
    }


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO_ROOT)))
def test_relative_links_lead_somewhere(page: Path) -> None:
    broken = []
    for target in _LINK.findall(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    assert not broken, f"links that lead nowhere: {broken}"


def test_testing_page_runs_every_client_method() -> None:
    """docs/testing.md shows each public method of the test client and of its websocket
    session in a program the docs test runs (issue 16)."""
    from shallot.testing import WebSocketSession

    page = REPO_ROOT / "docs" / "testing.md"
    programs = "\n".join(block.source for block in PROGRAMS if block.page == page)
    methods = {
        f"{owner.__name__}.{name}"
        for owner in (TestClient, WebSocketSession)
        for name, value in vars(owner).items()
        if callable(value) and not name.startswith("_")
    }
    missing = sorted(name for name in methods if f".{name.partition('.')[2]}(" not in programs)
    assert missing == []
