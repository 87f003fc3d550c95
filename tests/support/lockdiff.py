"""Name what pyproject.toml asks for that uv.lock was not made from (exit 1), before any install.

`uv lock --check` is the authority but only says that the lock is stale; this says which
requirement changed, so `make test` fails in its first second with a useful message.
Standard library only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

Requirement = tuple[str, str, str, str]  # name, extras, specifier, group ("" for the core)
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9._-]+)\s*(?:\[([^\]]*)\])?\s*([^;]*?)\s*(?:;.*)?$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(pyproject: dict[str, object]) -> set[Requirement]:
    """The requirements pyproject.toml declares, by group."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    groups: dict[str, list[str]] = {"": list(project.get("dependencies", []))}
    groups.update(project.get("optional-dependencies", {}))
    found: set[Requirement] = set()
    for group, lines in groups.items():
        for line in lines:
            match = REQUIREMENT.match(line)
            if match is None:
                raise SystemExit(f"lock check: cannot read requirement {line!r}")
            name, extras, spec = match.groups()
            extras = ",".join(sorted(_norm(e) for e in (extras or "").split(",") if e.strip()))
            found.add((_norm(name), extras, spec.replace(" ", ""), group))
    return found


def locked(lock: dict[str, object], project_name: str) -> set[Requirement]:
    """The requirements uv.lock was resolved from, by group."""
    packages = lock.get("package", [])
    assert isinstance(packages, list)
    for package in packages:
        if _norm(package["name"]) == _norm(project_name):
            break
    else:
        raise SystemExit(f"lock check: uv.lock has no entry for {project_name}")
    found: set[Requirement] = set()
    for entry in package.get("metadata", {}).get("requires-dist", []):
        extra = re.search(r"extra == '([^']+)'", entry.get("marker", ""))
        extras = ",".join(sorted(_norm(e) for e in entry.get("extras", [])))
        spec = entry.get("specifier", "").replace(" ", "")
        found.add((_norm(entry["name"]), extras, spec, extra.group(1) if extra else ""))
    return found


def _show(req: Requirement) -> str:
    name, extras, spec, group = req
    where = f" (extra '{group}')" if group else ""
    return f"{name}{f'[{extras}]' if extras else ''}{spec}{where}"


def main(root: Path) -> int:
    """Compare and report; 0 when the lock matches pyproject.toml."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    lock_path = root / "uv.lock"
    if not lock_path.exists():
        print("lock check: uv.lock is missing; run `make lock`", file=sys.stderr)
        return 1
    want = declared(pyproject)
    have = locked(tomllib.loads(lock_path.read_text()), pyproject["project"]["name"])
    if want == have:
        return 0
    print("lock check: pyproject.toml and uv.lock disagree:", file=sys.stderr)
    for req in sorted(want - have):
        print(f"  pyproject.toml asks for {_show(req)}", file=sys.stderr)
    for req in sorted(have - want):
        print(f"  uv.lock was made from  {_show(req)}", file=sys.stderr)
    print("run `make lock` to update the lock deliberately, then commit it", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
