"""NOTIFLOW_BUILD_ID: the worker's version in Worker Deployment `notiflow`; its default never fails."""

from __future__ import annotations

import subprocess
from importlib.metadata import version

import pytest

from notiflow.settings import Settings, SettingsError, default_build_id, load_settings


def test_default_is_the_package_version_and_git_revision():
    package = version("notiflow")
    assert Settings().build_id == default_build_id()
    assert default_build_id() == package or default_build_id().startswith(f"{package}+")


def test_without_git_the_default_is_the_package_version(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert default_build_id.__wrapped__() == version("notiflow")


def test_outside_a_checkout_the_default_is_the_package_version(monkeypatch):
    def not_a_repository(*args, **kwargs):
        raise subprocess.CalledProcessError(128, args[0], stderr="fatal: not a git repository")

    monkeypatch.setattr(subprocess, "run", not_a_repository)
    assert default_build_id.__wrapped__() == version("notiflow")


def test_an_explicit_build_id_wins_and_an_empty_one_means_the_default(monkeypatch):
    monkeypatch.setenv("NOTIFLOW_BUILD_ID", "2025.07.1")
    assert load_settings().build_id == "2025.07.1"
    monkeypatch.setenv("NOTIFLOW_BUILD_ID", "")
    assert load_settings().build_id == default_build_id()
    monkeypatch.setenv("NOTIFLOW_BUILD_ID", "v 2")
    with pytest.raises(SettingsError, match="NOTIFLOW_BUILD_ID"):
        load_settings()
