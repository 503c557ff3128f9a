"""The private Ray and MLflow APIs unisweep uses are tied to version ranges in pyproject.toml: outside them, or
when one of those APIs stops importing, this fails loudly, naming the module that gathers them."""

import importlib.metadata
import re

import pytest
from packaging.requirements import Requirement

from analysis import mlflow_internals
from sweeps import ray_internals


def _requirement(name: str) -> Requirement:
    """The range the installed unisweep declares (pyproject.toml's dependencies, as `make install` put them)."""
    deps = importlib.metadata.requires("unisweep") or []
    (req,) = [Requirement(d) for d in deps if re.match(rf"{name}\b", d) and "extra ==" not in d]
    return req


@pytest.mark.parametrize("package, internals", [("ray", ray_internals), ("mlflow", mlflow_internals)])
def test_installed_version_is_in_the_tested_range_and_the_private_apis_import(package, internals):
    req = _requirement(package)
    assert any(s.operator == "<" for s in req.specifier), f"{package}: pyproject.toml gives no upper bound"
    installed = importlib.metadata.version(package)
    assert req.specifier.contains(installed, prereleases=True), (
        f"{package} {installed} is outside the range unisweep was tested on ({req.specifier}): the private APIs "
        f"in {internals.__name__} may have moved; test them and widen the range in pyproject.toml")
    internals.check()
