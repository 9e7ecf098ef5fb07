"""pyproject.toml installs without setuptools' deprecation warnings: the licence is an SPDX expression
(PEP 639), which needs setuptools >= 77 in the build requirements; a TOML table
(``license = {text = ...}``) warns on every install."""

from __future__ import annotations

import re
import tomllib

from packaging.licenses import canonicalize_license_expression
from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_licence_is_an_spdx_expression_and_the_build_backend_accepts_it():
    project = PYPROJECT["project"]
    assert isinstance(project["license"], str), "a TOML table is deprecated: use an SPDX expression"
    assert canonicalize_license_expression(project["license"]) == project["license"]
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))  # PEP 639 forbids both
    (setuptools,) = [Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    lowest = min(Version(s.version) for s in setuptools.specifier if s.operator in (">=", "=="))
    assert lowest >= Version("77"), "setuptools reads project.license as SPDX from 77.0 on"


def test_files_served_at_run_time_are_package_data():
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert "redoc/*" in data["beatsync.http"]  # /redoc's bundle and licences
    assert re.search(r"models/\*\.npz", " ".join(data["beatsync.analysis"]))
