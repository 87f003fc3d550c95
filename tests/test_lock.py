"""What installs is what uv.lock holds: the checks `make test` relies on for reproducible builds."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker

from tests.support import lockdiff

ROOT = Path(__file__).resolve().parent.parent
UV = ROOT / ".uv" / "bin" / "uv"


def _pins(text: str) -> tuple[str, set[str]]:
    version = re.search(r"uv==([0-9.]+)|UV_VERSION := ([0-9.]+)", text)
    assert version is not None
    return version.group(1) or version.group(2), set(re.findall(r"sha256:([0-9a-f]{64})", text))


def test_the_lock_matches_pyproject() -> None:
    assert lockdiff.main(ROOT) == 0


def test_a_requirement_bumped_without_make_lock_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(ROOT / "uv.lock", tmp_path / "uv.lock")
    pyproject = (ROOT / "pyproject.toml").read_text()
    bumped = re.sub(r'"orjson>=[^"]+"', '"orjson>=99.0"', pyproject)
    assert bumped != pyproject
    (tmp_path / "pyproject.toml").write_text(bumped)
    assert lockdiff.main(tmp_path) == 1
    err = capsys.readouterr().err
    assert "orjson>=99.0" in err and "make lock" in err


def test_the_makefile_fails_on_a_stale_lock_before_installing(tmp_path: Path) -> None:
    for name in ("Makefile", "uv.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "tests" / "support").mkdir(parents=True)
    shutil.copy(ROOT / "tests/support/lockdiff.py", tmp_path / "tests/support/lockdiff.py")
    pyproject = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(pyproject.replace('"limits>=', '"limits>=99,>='))
    done = subprocess.run(
        ["make", "-C", str(tmp_path), "install-test", f"PYTHON={sys.executable}"],
        capture_output=True,
        text=True,
        timeout=60,  # bounds the test's own run time
        check=False,
    )
    assert done.returncode != 0
    assert "limits>=99,>=" in done.stderr
    assert not (tmp_path / ".venv").exists()  # refused before anything was installed


def test_the_image_pins_the_same_installer_as_the_makefile() -> None:
    make_version, make_hashes = _pins((ROOT / "Makefile").read_text())
    image_version, image_hashes = _pins((ROOT / "deploy/Dockerfile").read_text())
    assert image_version == make_version
    assert image_hashes and image_hashes <= make_hashes
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    assert "uv sync --locked" in dockerfile and "uv.lock" in dockerfile


@pytest.mark.skipif(not UV.exists(), reason="uv is installed by `make test` (.uv/bin/uv)")
def test_the_environment_holds_exactly_the_locked_versions() -> None:
    def pins(args: list[str]) -> set[str]:
        out = subprocess.run(
            [str(UV), *args], capture_output=True, text=True, cwd=ROOT, check=True, timeout=60
        ).stdout
        found = set()
        for line in out.splitlines():
            if "==" not in line or line.startswith(("#", " ")):
                continue
            pin, _, marker = line.partition(";")
            if marker.strip() and not Marker(marker.strip()).evaluate():
                continue  # locked for another Python or platform than this one
            name, _, version = pin.strip().partition("==")
            found.add(f"{re.sub(r'[-_.]+', '-', name.lower())}=={version}")
        return found

    locked = pins(["export", "--frozen", "--no-hashes", "--no-emit-project", "--all-extras", "-q"])
    installed = pins(["pip", "freeze", "--exclude-editable", "--python", sys.executable])
    # make test installs the run and test extras; the bench extra adds only what bench uses.
    assert installed <= locked, sorted(installed - locked)
    bench_only = {p for p in locked - installed if p.startswith("py-spy")}
    assert locked - installed == bench_only, sorted(locked - installed - bench_only)
