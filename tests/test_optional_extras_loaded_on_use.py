"""The heavy optional extras (botocore's signer, google-auth, the OpenTelemetry exporter) are
loaded by a process that uses them, not by every process: they cost tens of MB and a good part
of a second of start-up, on every replica whose catalog calls no Bedrock or Vertex provider and
which exports no traces."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "botocore.auth",
    "botocore.session",
    "google.auth",
    "google.oauth2",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
)


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint('\\n'.join(sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return set(out.split())


def test_building_the_app_loads_none_of_the_heavy_extras() -> None:
    loaded = _loaded_after("import edge.app, edge.cli")
    assert "edge.upstream.signing" in loaded  # the module that would load them is there
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_the_first_bedrock_and_vertex_signers_load_their_extras() -> None:
    loaded = _loaded_after(
        "from edge.upstream.signing import ProviderCredentials\n"
        "from policies.catalog import Provider\n"
        "creds = ProviderCredentials()\n"
        "creds.signer_for(Provider('b', 'bedrock', ('converse',), 'https://b', None, region='x'))\n"
        "creds.signer_for(Provider('v', 'vertex', ('gemini',), 'https://v', None))\n"
    )
    assert {"botocore.auth", "google.auth"} <= loaded


def test_exporting_traces_loads_the_exporter() -> None:
    loaded = _loaded_after(
        "from edge.tracing import tracing_from_env\n"
        "tracing_from_env({'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://127.0.0.1:9'}).shutdown()\n"
    )
    assert "opentelemetry.exporter.otlp.proto.http.trace_exporter" in loaded
