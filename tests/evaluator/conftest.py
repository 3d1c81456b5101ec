"""Shared fixtures: the digits classifier is trained once per session into a temp cache."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def classifier_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("evaluator-cache")


@pytest.fixture(scope="session")
def digits_extractor(classifier_cache):
    from ladder_evaluator.metrics import digits_classifier

    return digits_classifier.extractor(classifier_cache)
