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

    def locked(extras: list[str]) -> set[str]:
        flags = [arg for extra in extras for arg in ("--extra", extra)]
        return pins(["export", "--frozen", "--no-hashes", "--no-emit-project", *flags, "-q"])

    # The extras make install-test syncs (the Makefile's SYNC line and its test extra):
    # the environment is exactly those, or those plus the bench extra after make bench.
    makefile = (ROOT / "Makefile").read_text()
    sync = makefile[makefile.index("SYNC :=") :].split("\n\n", 1)[0]
    extras = [*re.findall(r"--extra (\w+)", sync), "test"]
    installed = pins(["pip", "freeze", "--exclude-editable", "--python", sys.executable])
    for_tests, for_bench = locked(extras), locked([*extras, "bench"])
    assert installed in (for_tests, for_bench), (
        sorted(installed ^ for_tests),
        sorted(installed ^ for_bench),
    )
