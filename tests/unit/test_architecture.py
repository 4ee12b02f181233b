"""The package's layout: folders show the parts, imports flow one way, no cycles, one copy of each helper."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "lm_eval_medreason"
HELPERS = {"errors", "tokens", "prompts", "locks", "resources"}  # top-level modules every part may use
# part -> the parts it may import (data <- evaluation <- reporting; data <- distillation <- finetuning;
# distillation reads answers with evaluation's extraction, as the tasks do)
ALLOWED = {
    "helpers": {"helpers"},
    "data": {"helpers", "data"},
    "evaluation": {"helpers", "data", "evaluation"},
    "reporting": {"helpers", "data", "evaluation", "reporting"},
    "distillation": {"helpers", "data", "evaluation", "distillation"},
    "finetuning": {"helpers", "data", "distillation", "finetuning"},
}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports() -> dict[str, set[tuple[str, str]]]:
    """Module -> every (module, name) it imports from the package, function-level imports included."""
    known = modules()
    graph = {}
    for name, path in known.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {(alias.name, "") for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    edges.add((full, "") if full in known else (node.module, alias.name))
        graph[name] = {(m, n) for m, n in edges if m.startswith("lm_eval_medreason") and m != name}
    return graph


def part(module: str) -> str:
    rest = module.split(".")[1:]
    if not rest or rest[0] not in ALLOWED and rest[0] not in HELPERS:
        return "top"  # the package itself, cli, autoload: may use anything
    return "helpers" if rest[0] in HELPERS else rest[0]


def test_at_most_eight_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} == set(ALLOWED) - {"helpers"}


def test_imports_flow_one_way():
    wrong = [f"{a} imports {b}" for a, edges in imports().items() for b, _ in edges
             if part(a) in ALLOWED and b != "lm_eval_medreason" and part(b) not in ALLOWED[part(a)]]
    assert not wrong, wrong


def test_no_import_cycles():
    graph = {a: {b for b, _ in edges if b != "lm_eval_medreason"} for a, edges in imports().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, cycles


def test_no_private_names_across_modules():
    private = [f"{a} imports {m}.{n}" for a, edges in imports().items() for m, n in edges
               if n.startswith("_") and not n.startswith("__")]
    assert not private, private


def test_one_copy_of_the_reasoning_split_and_the_accent_folding():
    sources = {name: path.read_text(encoding="utf-8") for name, path in modules().items()}
    assert [n for n, s in sources.items() if 'rfind("</think>")' in s] == ["lm_eval_medreason.evaluation.answers"]
    assert [n for n, s in sources.items() if "unicodedata.normalize(" in s] == ["lm_eval_medreason.evaluation.answers"]
    assert [n for n, s in sources.items() if "def one_line(" in s or "def _one_line(" in s] == ["lm_eval_medreason.errors"]
    assert [n for n, s in sources.items() if "_KEY_LIKE = " in s] == ["lm_eval_medreason.errors"]
    assert [n for n, s in sources.items() if "def dataset_hook(" in s or "def _dataset(" in s] == [
        "lm_eval_medreason.evaluation.hooks"]
