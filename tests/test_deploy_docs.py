"""The README's Deployment section says only what is true: its commands name real flags, files and
kustomizations, its variables are ones edge reads, its series and log fields exist."""

from __future__ import annotations

import inspect
import re
import shlex
from pathlib import Path

from edge.cli import build_parser
from edge.logs import request_fields, why
from tests.test_deploy import BASE, KUSTOMIZATIONS, env_of, gateway, rendered
from tests.test_deploy_dashboard import exported

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "README.md").read_text().split("\n## Deployment\n", 1)[1].split("\n## ", 1)[0]
SETTINGS = (ROOT / "edge" / "settings.py").read_text()


def shell_commands() -> list[list[str]]:
    """Every command of the doc's sh blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", DOC, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                commands.append(shlex.split(line))
    return commands


def test_every_command_is_one_the_project_backs() -> None:
    serve = build_parser()
    seen = set()
    for argv in shell_commands():
        program = argv[0]
        seen.add(program)
        if program == "edge":
            args = serve.parse_args(argv[1:])  # the flags exist and parse
            assert args.command == "serve"
        elif program == "kubectl" and "-k" in argv:
            target = ROOT / argv[argv.index("-k") + 1]
            assert (target / "kustomization.yaml").exists()
        elif program == "kubectl" and argv[1] == "kustomize":
            assert ROOT / argv[2] in KUSTOMIZATIONS.values(), argv
        elif program == "kubectl" and ("secret" in argv or argv[1:3] == ["create", "namespace"]):
            pass  # checked against the rendered production overlay below
        elif program == "docker":
            assert argv[1:4] == ["build", "-f", "deploy/Dockerfile"]
            assert (ROOT / argv[3]).exists()
        elif program == "pip":
            assert argv[1:] == ["install", "."]
        elif program == "export":
            name = argv[1].split("=", 1)[0]
            assert f'"{name}"' in SETTINGS
        else:
            raise AssertionError(f"unchecked command: {argv}")
    assert {"edge", "kubectl", "docker"} <= seen


def test_secret_and_namespace_commands_fit_the_production_overlay() -> None:
    """The out-of-band Secret holds every key the gateway requires and none it ignores; the
    namespace created is the overlay's."""
    commands = [a for a in shell_commands() if a[0] == "kubectl"]
    secrets = [a for a in commands if "secret" in a]
    namespaces = [a for a in commands if a[1:3] == ["create", "namespace"]]
    assert secrets and namespaces
    production = rendered("production")
    refs = {
        e["valueFrom"]["secretKeyRef"]["key"]: e["valueFrom"]["secretKeyRef"]
        for e in env_of(gateway(production)).values()
        if "valueFrom" in e
    }
    required = {k for k, ref in refs.items() if not ref.get("optional")}
    for argv in secrets:
        literals = [a.removeprefix("--from-literal=") for a in argv if "=" in a]
        keys = {a.split("=", 1)[0] for a in literals if not a.startswith("-")}
        assert required <= keys <= set(refs)
    (ns,) = [d for d in production if d["kind"] == "Namespace"]
    for argv in namespaces:
        assert argv[3] == ns["metadata"]["name"]


def test_variables_series_files_and_fields_exist() -> None:
    for name in set(re.findall(r"`(EDGE_[A-Z_]+)`", DOC)):
        assert f'"{name}"' in SETTINGS, name
    series = exported()
    for name in set(re.findall(r"`(edge_[a-z_]+)`", DOC)):
        assert name in series or f"{name}_bucket" in series, name
    for path in set(re.findall(r"`(deploy/[^`\s]+)`", DOC)):
        assert (ROOT / path).exists(), path
    assert (BASE / "redis.yaml").exists()
    listed = re.search(r"one `request` line(.*?)No line", DOC, re.S)
    assert listed is not None
    doc_fields = set(listed.group(1).split("`")[1::2])
    source = inspect.getsource(request_fields) + inspect.getsource(why) + '"pid"'
    for field in doc_fields - {"x-request-id"}:
        assert f'"{field}"' in source, field
