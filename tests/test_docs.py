"""Docs the code keeps true: every docstring example in minigan runs as a doctest, and every
fenced Python block of README.md and docs/*.md runs (the blocks of one page in order, sharing
one namespace, as a reader would type them)."""
import doctest
import glob
import importlib
import os
import re

import pytest

import minigan

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
PACKAGE = os.path.dirname(minigan.__file__)


def _module_names():
    names = []
    for path in sorted(glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True)):
        parts = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].split(os.sep)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


@pytest.mark.parametrize("name", _module_names())
def test_docstring_examples_run(name, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs={"minigan": minigan, **vars(module)}):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (see above)"


def _pages():
    return [os.path.join(TOP, "README.md")] + sorted(glob.glob(os.path.join(TOP, "docs", "**", "*.md"),
                                                                recursive=True))


FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("page", _pages(), ids=lambda p: os.path.relpath(p, TOP))
def test_python_blocks_of_the_docs_run(page, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with open(page) as f:
        blocks = FENCE.findall(f.read())
    namespace = {"__name__": "__docs__"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{os.path.basename(page)} block {i + 1}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{os.path.relpath(page, TOP)}: python block {i + 1} fails: "
                                 f"{type(exc).__name__}: {exc}\n{block}") from exc


@pytest.mark.parametrize("page", _pages(), ids=lambda p: os.path.relpath(p, TOP))
def test_pages_hold_no_unfinished_text(page):
    with open(page, encoding="utf-8") as f:
        text = f.read()
    left = re.findall(r"\b\w*(?:PLACEHOLDER|TODO|TBD|FIXME)\w*\b", text)
    assert not left, f"{os.path.relpath(page, TOP)} still holds {left}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: os.path.relpath(p, TOP))
def test_pictures_and_links_of_the_pages_exist(page):
    with open(page, encoding="utf-8") as f:
        text = f.read()
    here = os.path.dirname(page)
    missing = [target for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
               if "://" not in target and not os.path.exists(os.path.normpath(os.path.join(here, target)))]
    assert not missing, f"{os.path.relpath(page, TOP)} points at files that do not exist: {missing}"
