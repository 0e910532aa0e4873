import sys

import pytest

from titan.app import create_app
from titan.config import Config

# Belt and braces with PYTHONDONTWRITEBYTECODE=1: modules imported from here
# on leave no __pycache__ in the tree.
sys.dont_write_bytecode = True


@pytest.fixture
def make_app(tmp_path):
    """create_app with log/data dirs under tmp_path; no latency, no failures unless overridden."""

    def make(**overrides):
        settings = dict(log_dir=str(tmp_path / "log"), data_dir=str(tmp_path / "data"),
                        failure_rate=0.0, latency_min_ms=0, latency_max_ms=0)
        settings.update(overrides)
        return create_app(Config(**settings))

    return make


@pytest.fixture
def client(make_app):
    return make_app().test_client()
