"""The architecture's rules, enforced (docs/architecture.md; issue 11).

- the import contracts in pyproject.toml ([tool.importlinter]) hold;
- the TUI imports only the light public API of the engine: kronos_train.control,
  .config, .checks and .advisor, public names only;
- importing the control plane or the TUI loads no torch;
- no dead code (vulture, with the reviewed tests/vulture_allowlist.py).
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TUI_MAY_IMPORT = ("kronos_train.control", "kronos_train.config", "kronos_train.checks", "kronos_train.advisor")
# Textual and torch call these by name or through a decorator; vulture cannot see that.
FRAMEWORK_NAMES = ("on_*", "_on_*", "action_*", "watch_*", "compose", "check_action", "can_replace", "discover",
                   "startup", "BINDINGS", "DEFAULT_CSS", "CSS_PATH", "TITLE", "MODES", "DEFAULT_MODE",
                   "border_subtitle", "disabled", "forward")
FRAMEWORK_DECORATORS = ("@on", "@work", "@property", "@dataclass")


def run_tool(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_import_contracts_hold():
    pytest.importorskip("importlinter")
    proc = run_tool("-c", "import sys; from importlinter.cli import lint_imports; "
                          "sys.exit(lint_imports(no_cache=True, no_logo=True))")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def engine_imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, name) of every kronos_train import in one file; name '' for `import kronos_train.x`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("kronos_train"):
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, "") for alias in node.names if alias.name.startswith("kronos_train")]
    return found


def test_the_tui_imports_only_the_engines_light_public_api():
    wrong = []
    for path in sorted((REPO / "kronos_tui").rglob("*.py")):
        for line, module, name in engine_imports(path):
            allowed = any(module == m or module.startswith(m + ".") for m in TUI_MAY_IMPORT)
            private = name.startswith("_") or any(part.startswith("_") for part in module.split("."))
            if not allowed or private:
                wrong.append(f"{path.relative_to(REPO)}:{line}: from {module} import {name}")
    assert not wrong, "the TUI may import only public names of " + ", ".join(TUI_MAY_IMPORT) + ":\n" + "\n".join(wrong)


def test_importing_the_control_plane_loads_no_torch():
    modules = sorted(f"kronos_train.control.{p.stem}" for p in (REPO / "kronos_train" / "control").glob("*.py")
                     if p.stem != "__init__")
    assert modules, "kronos_train/control/ holds no modules"
    proc = run_tool("-c", f"import sys, {', '.join(modules)}; "
                          "sys.exit('torch loaded' if 'torch' in sys.modules else 0)")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_dead_code():
    pytest.importorskip("vulture")
    proc = run_tool("-m", "vulture", "kronos_train", "kronos_tui", "tests/vulture_allowlist.py",
                    "--min-confidence", "60", "--ignore-names", ",".join(FRAMEWORK_NAMES),
                    "--ignore-decorators", ",".join(FRAMEWORK_DECORATORS))
    assert proc.returncode == 0, ("unused code (delete it, or add it to tests/vulture_allowlist.py with the "
                                  "reason it is used):\n" + proc.stdout + proc.stderr)
