"""Packaging for podapi: Podman's REST API service on Twisted."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="podapi",
    version="0.1.0",
    description="Podman-compatible REST API service (Docker and Libpod APIs) on Twisted",
    long_description=Path("README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    python_requires=">=3.11",
    # twistd finds plugins in twisted/plugins directories on sys.path.  A plain or
    # wheel install copies the dropin into site-packages/twisted/plugins.  An
    # editable install (PEP 660) maps packages with an import hook instead, and the
    # dropin is on no path ("Unknown command: podapi"); with the root named as the
    # package directory, setuptools sees a simple layout and puts the checkout on
    # sys.path (a .pth), as editable_mode=compat does.
    package_dir={"": "."},
    packages=[*find_packages(exclude=["tests*", "bench*"]), "twisted.plugins"],
    package_data={"podapi.http": ["openapi.yaml"]},
    install_requires=[
        # The hijack recipe (podapi/http/hijack.py) touches private twisted.web
        # attributes: keep the range narrow and let CI catch upgrades.
        "twisted>=24.7,<27",
        "klein>=24.8",
        "treq>=24.9",
        "attrs>=23.1",
        # (Un)structuring the stored container configuration (nested attrs classes).
        "cattrs>=23.2",
        # WebSocket framing for GET /containers/{id}/attach/ws (sans-IO, on our socket).
        "wsproto>=1.2",
        # Kubernetes YAML (kube generate, kube play): safe_dump / safe_load only.
        "PyYAML>=6",
        # Dockerfile lines for POST /build (podapi/engine/imagebuild/dockerfile.py adds heredocs).
        "dockerfile-parse>=2.0",
        # JSON responses (podapi/http/responses.py): the same bytes as json.dumps, 8x faster.
        "orjson>=3.9",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            "hypothesis>=6",
            # tests/integration/test_openapi_fuzz.py: requests from our served OpenAPI document.
            "schemathesis>=4",
            "pyyaml>=6",
            "docker>=7.1",
            "podman>=5",
            # Offline Kubernetes schema validation of what kube generate writes.
            "kubernetes-validate>=1.30",
            # tests/integration/test_install_modes.py builds without isolation
            # (offline): bdist_wheel is part of setuptools from 70.1.
            "setuptools>=70.1",
            # tests/integration/test_cockpit.py drives Cockpit's Podman page in Chromium.
            "selenium>=4.11",
            # Certificates for the TLS listener tests, made in the test.
            "cryptography>=42",
        ],
        "dev": ["ruff", "mypy", "mypy-zope"],
    },
)
