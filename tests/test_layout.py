"""The tree keeps its shape: shared/ holds packages only, and no module reaches into another's private names."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUR_PACKAGES = ("shared", "services")
CHECKED = ("shared", "services", "scripts")
# The local stack's own machinery shares its helpers; everything else uses its public API.
EXEMPT = ("shared/ops/",)
NOT_EXEMPT = ("shared/ops/tools.py",)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_our_module(dotted: str) -> bool:
    """A module or package of ours (not a name defined in one)."""
    if dotted.split(".")[0] not in OUR_PACKAGES:
        return False
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def dotted(node: ast.expr) -> str | None:
    """`a.b.c` for a chain of attributes on a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def private_uses(path: Path, source: str) -> list[str]:
    """Each place the module at `path` uses a private name of another of our modules, as 'file:line: what'."""
    this = module_name(path)
    tree = ast.parse(source, str(path))
    modules: dict[str, str] = {}  # local name -> our module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_our_module(alias.name):
                    if alias.asname:
                        modules[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        modules[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and is_our_module(node.module):
            for alias in node.names:
                if is_our_module(f"{node.module}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                elif is_private(alias.name) and node.module != this:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            chain = dotted(node.value) or ""
            head, _, rest = chain.partition(".")
            if head not in modules:
                continue
            owner = ".".join(filter(None, (modules[head], rest)))
            if is_our_module(owner) and owner != this:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {chain}.{node.attr}")
    return found


def checked_files() -> list[Path]:
    files = [p for top in CHECKED for p in sorted((ROOT / top).rglob("*.py"))]
    return [p for p in files
            if not str(p.relative_to(ROOT)).startswith(EXEMPT) or str(p.relative_to(ROOT)) in NOT_EXEMPT]


def test_shared_holds_packages_only():
    assert [p.name for p in (ROOT / "shared").glob("*.py")] == ["__init__.py"]


def test_no_module_uses_another_modules_private_names():
    assert [use for path in checked_files() for use in private_uses(path, path.read_text())] == []


def test_the_check_sees_both_kinds_of_private_use():
    """The checker itself: an import of a private name and an attribute access through an imported module; public
    names, a module's own privates and names not imported from us pass."""
    module = ROOT / "shared" / "cli" / "tools.py"
    source = ("from shared.ops.stack import _check_alive\nfrom shared.ops import stack\nimport shared.ops.cluster as c\n"
              "stack._hidden()\nc._gpus(None)\nstack.SERVICES\nother._x\nfrom shared.cli.tools import _print_summary\n")
    assert private_uses(module, source) == ["shared/cli/tools.py:1: from shared.ops.stack import _check_alive",
                                            "shared/cli/tools.py:4: stack._hidden",
                                            "shared/cli/tools.py:5: c._gpus"]



def test_no_model_schema_bounds_a_string_past_what_llama_cpp_compiles():
    """A JSON-schema string bound becomes one grammar rule per character in llama.cpp: 1200 made its grammar compiler
    refuse the schema and the local server die mid-run, 800 works."""
    import re

    too_long = []
    for path in [*ROOT.glob("services/**/*.py"), *ROOT.glob("shared/**/*.py")]:
        for n in re.findall(r'"maxLength":\s*(\d+)', path.read_text()):
            if int(n) > 800:
                too_long.append(f"{path.relative_to(ROOT)}: maxLength {n}")
    assert too_long == []
