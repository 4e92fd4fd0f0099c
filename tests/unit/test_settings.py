"""Settings: the contract's environment variables, validated."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import DEV_REDIS_URL, Settings


def test_defaults_never_point_at_the_machines_redis() -> None:
    settings = Settings(_env_file=None)
    assert settings.redis_url == DEV_REDIS_URL
    assert ":6379" not in settings.redis_url
    assert settings.data_dir == Path("data")
    assert settings.sleep_scale == 1.0
    assert settings.max_active_jobs_per_user == 100


def test_reads_the_contracts_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://example:1234/2")
    monkeypatch.setenv("DATA_DIR", "/srv/jobs")
    monkeypatch.setenv("SLEEP_SCALE", "0.5")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("MAX_ACTIVE_JOBS_PER_USER", "7")
    settings = Settings()
    assert (settings.redis_url, settings.data_dir, settings.sleep_scale) == (
        "redis://example:1234/2",
        Path("/srv/jobs"),
        0.5,
    )
    assert (settings.secret_key, settings.max_active_jobs_per_user) == ("s" * 40, 7)


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "fast"])
def test_sleep_scale_must_be_a_finite_non_negative_number(value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(sleep_scale=value)


def test_the_development_key_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    Settings()
    assert "SECRET_KEY is not set" in caplog.text
    caplog.clear()
    Settings(secret_key="x" * 40)
    assert "SECRET_KEY" not in caplog.text


def test_worker_queues_and_job_kinds_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_QUEUES", "reports, default")
    monkeypatch.setenv("JOB_KINDS", "team.kinds.invoices,team.tasks:send_mail")
    settings = Settings()
    assert settings.worker_queues == ["reports", "default"]
    assert settings.job_kinds == ["team.kinds.invoices", "team.tasks:send_mail"]
