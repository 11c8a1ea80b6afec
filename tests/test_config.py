"""Configuration by environment: production refuses to start with development secrets."""
import pytest

from config import DEV_SECRET_KEY, ProductionConfig


def test_production_refuses_the_default_secret_key(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("GONGJIAN_DATA_KEY", "x" * 40)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        ProductionConfig.check()
    monkeypatch.setenv("SECRET_KEY", DEV_SECRET_KEY)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        ProductionConfig.check()


def test_production_requires_a_data_key(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "a-real-secret-from-the-environment-0123456789")
    monkeypatch.delenv("GONGJIAN_DATA_KEY", raising=False)
    with pytest.raises(RuntimeError, match="GONGJIAN_DATA_KEY"):
        ProductionConfig.check()
    monkeypatch.setenv("GONGJIAN_DATA_KEY", "k" * 40)
    ProductionConfig.check()
