"""The tests are laid out like the code: test modules in unit/ or e2e/, shared code in support/ imported as
`tests.support.*`; no test module imports another, and benchmarks/ reach support code without `sys.path`."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


def imported_modules(path: Path) -> list[str]:
    """Every module an `import` or `from ... import` in the file names, nested ones included, resolved to
    dotted names (relative imports against the file's own package under the repository root)."""
    package = path.relative_to(REPO).parent.parts
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names += [module] if node.module else [f"{module}.{alias.name}" for alias in node.names]
    return names


def import_offenders(root: Path) -> list[str]:
    """(path, module) pairs where code under tests/ imports a test module, or a tests/ file by its bare name
    (which only works through sys.path)."""
    local = {p.stem for p in root.rglob("*.py")} - {"__init__"}
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for module in imported_modules(path):
            top, *rest = module.split(".")
            leaf = module.rsplit(".", 1)[-1]
            if top in local or leaf.startswith("test_") or leaf == "conftest":
                offenders.append(f"{path.relative_to(root.parent)}: {module}")
            elif top == "tests" and rest[:1] != ["support"]:
                offenders.append(f"{path.relative_to(root.parent)}: {module}")
    return offenders


def sys_path_offenders(root: Path) -> list[str]:
    """Files under root that touch sys.path (insert, append, assignment) or add a site directory."""
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                (node.value.id, node.attr) in {("sys", "path"), ("site", "addsitedir")}
            ):
                offenders.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return offenders


def test_test_modules_live_in_unit_or_e2e():
    stray = [str(p.relative_to(TESTS)) for p in TESTS.rglob("test_*.py") if p.parent.name not in ("unit", "e2e")]
    assert stray == []
    for folder in ("unit", "e2e", "support"):
        assert (TESTS / folder / "__init__.py").is_file(), folder  # importable as tests.<folder>, no sys.path
    assert (TESTS / "__init__.py").is_file()


def test_no_test_module_imports_another():
    assert import_offenders(TESTS) == []


def test_benchmarks_import_support_code_without_sys_path():
    assert sys_path_offenders(REPO / "benchmarks") == []
    assert sys_path_offenders(TESTS) == []
    for path in sorted((REPO / "benchmarks").glob("*.py")):
        for module in imported_modules(path):
            if module.startswith("tests."):
                assert (REPO / (module.replace(".", "/") + ".py")).is_file(), f"{path.name}: {module}"
