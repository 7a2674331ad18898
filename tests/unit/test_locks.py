"""The locks `make install` installs from agree with what the repository asks for: every pin of
requirements.txt at its version in requirements-dev.lock, every runtime dependency of
pyproject.toml in requirements.lock, every locked package with its hashes. After a change of
either file, `make lock` brings the locks along."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    return {canonical(name): version for name, version in PIN.findall(text)}


def locked(name: str) -> tuple[dict[str, str], str]:
    text = (ROOT / name).read_text()
    return pins(text), text


def test_every_pin_of_requirements_txt_is_locked_at_its_version():
    wanted = pins((ROOT / "requirements.txt").read_text())
    dev, _ = locked("requirements-dev.lock")
    assert {n: v for n, v in wanted.items() if dev.get(n) != v} == {}, "run `make lock`"


def test_every_runtime_dependency_is_in_the_runtime_lock_and_no_dev_tool_is():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, _ = locked("requirements.lock")
    names = {canonical(re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0]) for d in project["dependencies"]}
    assert names - set(runtime) == set(), "run `make lock`"
    dev_only = {
        canonical(re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0])
        for d in project["optional-dependencies"]["dev"]
    }
    assert dev_only & set(runtime) == set()


def test_every_locked_package_has_hashes():
    for name in ("requirements.lock", "requirements-dev.lock"):
        packages, text = locked(name)
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
        unhashed = [b.split()[0] for b in blocks if PIN.match(b) and "--hash=sha256:" not in b]
        assert packages and unhashed == [], name
