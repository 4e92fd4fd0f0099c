"""The rooms of `service/` hold what they say: the web process never imports the worker engine, and job kinds
import neither the engine nor the web app."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_by(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {name for name in out.split() if name.startswith("service")}


def test_the_web_app_does_not_import_the_worker_engine() -> None:
    modules = imported_by("service.main")
    assert "service.web.app" in modules and "service.kinds.reports" in modules
    assert not {m for m in modules if m.startswith("service.engine")}


def test_job_kinds_import_neither_the_engine_nor_the_web_app() -> None:
    modules = imported_by("service.kinds.notifications")
    assert not {m for m in modules if m.startswith(("service.engine", "service.web"))}
