"""A real kustomize, v5 or later, for the manifest tests: kubectl's built-in one or the
standalone binary. `make unit` puts a pinned kubectl beside the virtualenv's Python; without
it, a kustomize or kubectl on PATH serves when its kustomize is v5 or later."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MIN_MAJOR = 5
TIMEOUT = 120  # seconds for one render: a bound on the test's own run, not a speed check


@dataclass(frozen=True)
class Kustomize:
    """One usable program: `kubectl kustomize DIR` or `kustomize build DIR`."""

    command: tuple[str, ...]
    version: str  # kustomize's, e.g. "v5.8.1"

    def build(self, directory: Path) -> str:
        done = subprocess.run(
            [*self.command, str(directory)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"`{' '.join(self.command)} {directory}` exited {done.returncode}:\n{done.stderr}"
            )
        return done.stdout

    def render(self, directory: Path) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all(self.build(directory)) if d]


def version_of(program: str) -> str:
    """The version of the kustomize a program holds: kubectl's built-in one (as `kubectl
    version --client` reports it) or a standalone kustomize's. Raises OSError, ValueError or
    subprocess errors when it cannot tell."""
    if Path(program).name.startswith("kubectl"):
        out = subprocess.run(
            [program, "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        found = str(json.loads(out).get("kustomizeVersion", ""))
    else:
        # v5 prints "v5.8.1"; v4 printed "{Version:kustomize/v4.5.4 GitCommit:...}".
        found = subprocess.run(
            [program, "version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    match = re.search(r"v(\d+)\.(\d+)\.(\d+)", found)
    if not match:
        raise ValueError(f"no kustomize version in {found.strip()[:80]!r}")
    return match.group(0)


def candidates(bin_dir: Path, path: str | None) -> list[str]:
    """Programs to try, best first: the pinned kubectl beside the virtualenv's Python, a
    kustomize there, then kustomize and kubectl on PATH."""
    found = [str(bin_dir / "kubectl"), str(bin_dir / "kustomize")]
    found += [p for name in ("kustomize", "kubectl") if (p := shutil.which(name, path=path))]
    unique: dict[str, str] = {}
    for program in found:
        if Path(program).is_file():
            unique.setdefault(os.path.realpath(program), program)
    return list(unique.values())


def find(
    bin_dir: Path | None = None, path: str | None = None
) -> tuple[Kustomize | None, list[str]]:
    """The first candidate whose kustomize is v5 or later, and why each one before it was
    passed over (for the skip message)."""
    bin_dir = Path(sys.executable).parent if bin_dir is None else bin_dir
    passed_over = []
    for program in candidates(bin_dir, path):
        try:
            version = version_of(program)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            passed_over.append(f"{program}: no kustomize version ({exc})")
            continue
        if int(version[1:].split(".")[0]) < MIN_MAJOR:
            passed_over.append(f"{program}: kustomize {version}, older than v{MIN_MAJOR}")
            continue
        kubectl = Path(program).name.startswith("kubectl")
        return Kustomize((program, "kustomize" if kubectl else "build"), version), passed_over
    return None, passed_over or [f"no kubectl or kustomize in {bin_dir} or on PATH"]
