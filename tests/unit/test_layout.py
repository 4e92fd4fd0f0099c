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


def test_the_web_room_sends_no_redis_command_itself() -> None:
    """Every read and write of a job, a queue or a counter goes through `service/core`: no module of `service/web`
    calls a method of a Redis client, a pipeline or a subscription (app.py only makes and closes the pool)."""
    import ast

    # What only a Redis client does (method names that dicts, lists, loggers and headers share are left out).
    commands = {
        "pipeline", "pubsub", "register_script", "execute_command", "eval", "evalsha", "script_load", "publish",
        "psubscribe", "subscribe", "mget", "mset", "incr", "incrby", "expire", "pexpire", "psetex", "setex", "exists",
        "hget", "hset", "hgetall", "hincrby", "hdel", "zadd", "zrem", "zcard", "zcount", "zscore", "zrange",
        "zrangebyscore", "zrevrangebyscore", "zrangebylex", "zincrby", "lpush", "rpush", "llen", "flushdb",
    }  # fmt: skip
    calls = []
    for path in (ROOT / "service" / "web").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                receiver = node.func.value
                owner = receiver.id if isinstance(receiver, ast.Name) else ""
                if node.func.attr in commands or owner in {"arq", "redis", "pipe", "tr", "pubsub"}:
                    calls.append(f"{path.relative_to(ROOT)}:{node.lineno} {owner}.{node.func.attr}")
    allowed = {c for c in calls if c.startswith("service/web/app.py")}
    assert set(calls) - allowed == set()
