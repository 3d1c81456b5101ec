from __future__ import annotations

import pytest

from ladder_testing.apiserver.fixture import running_apiserver


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    with running_apiserver(tmp_path_factory.mktemp("apiserver")) as api:
        yield api
