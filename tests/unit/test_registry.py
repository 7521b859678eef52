"""The registry client: a real ``docker-registry`` on loopback, and an in-process fake.

The real registry (open, and with htpasswd basic auth) proves pull, push,
tags, catalog and login against the reference implementation; skopeo puts
images in and checks what we pushed.  The fake (twisted.web on 127.0.0.1:0)
covers what that registry cannot be made to do: bearer tokens, image
indexes, 429/5xx, connection resets, stalls, bad content and TLS.
"""

import base64
import datetime
import hashlib
import ipaddress
import json
import os
import re
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IOpenSSLContextFactory
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from podapi.errors import InvalidArgument, NotFound
from podapi.oci.process import ProcessRunner
from podapi.storage.blobs import BlobStore, DigestMismatch
from podapi.storage.reference import parse
from podapi.storage.registries import RegistriesConfig, load
from podapi.storage.registry import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    BlockedRegistry,
    Challenge,
    Credentials,
    Descriptor,
    ManifestUnknown,
    Platform,
    RegistryClient,
    RegistryError,
    RegistryUnauthorized,
    RegistryUnreachable,
    choose_platform,
    is_loopback,
    parse_challenges,
)
from podapi.testing.threads import InlineBlocking
from podapi.threads import ThreadPoolService
from tests.fixtures.images import BuiltImage, busybox_image, busybox_layer, layer_tar
from tests.fixtures.registry import Registry, free_port

ALICE = Credentials("alice", "s3cret")
#: The global reactor, untyped: tests use several of its interfaces.
REACTOR: Any = reactor


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def skopeo_copy(archive: Path, dest: str, creds: str | None = None) -> None:
    argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
    if creds:
        argv += ["--dest-creds", creds]
    argv += [f"docker-archive:{archive}", f"docker://{dest}"]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


# --- real registries -------------------------------------------------------------


@pytest.fixture(scope="module")
def image() -> BuiltImage:
    return busybox_image()


@pytest.fixture(scope="module")
def multi_image() -> BuiltImage:
    """Four layers, so parallel fetches have something to do."""
    return BuiltImage(
        layers=[
            busybox_layer(["sh"]),
            layer_tar({"a.txt": b"a" * 1000}),
            layer_tar({"b.bin": bytes(range(256)) * 4096}),
            layer_tar({"c.txt": b"c"}),
        ]
    )


@pytest.fixture(scope="module")
def open_registry(
    tmp_path_factory: pytest.TempPathFactory, image: BuiltImage, multi_image: BuiltImage
) -> Iterator[Registry]:
    """An open docker-registry holding ``busybox:1`` and ``multi:1``."""
    base = tmp_path_factory.mktemp("open-registry")
    registry = Registry(base / "registry").start()
    try:
        for name, img in (("busybox", image), ("multi", multi_image)):
            archive = base / f"{name}.tar"
            archive.write_bytes(img.docker_archive([f"{name}:1"]))
            skopeo_copy(archive, f"{registry.host}/{name}:1")
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def auth_registry(
    tmp_path_factory: pytest.TempPathFactory, image: BuiltImage
) -> Iterator[Registry]:
    """A docker-registry with basic auth for alice, holding ``private:1``."""
    base = tmp_path_factory.mktemp("auth-registry")
    registry = Registry(base / "registry", users={"alice": "s3cret"}).start()
    try:
        archive = base / "busybox.tar"
        archive.write_bytes(image.docker_archive(["private:1"]))
        skopeo_copy(archive, f"{registry.host}/private:1", creds="alice:s3cret")
        yield registry
    finally:
        registry.stop()


@pytest_twisted.async_yield_fixture
async def pool() -> AsyncIterator[ThreadPoolService]:
    service = ThreadPoolService(REACTOR, "registry-test", 4)
    service.startService()
    yield service
    service.stopService()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    blobs = BlobStore(str(tmp_path / "store"))
    blobs.create()
    return blobs


MakeClient = Callable[..., RegistryClient]


@pytest_twisted.async_yield_fixture
async def make_client(store: BlobStore, pool: ThreadPoolService) -> AsyncIterator[MakeClient]:
    """Build clients (fast backoff, short timeout by default); all closed afterwards."""
    made: list[RegistryClient] = []

    def make(**kwargs: Any) -> RegistryClient:
        options: dict[str, Any] = {"backoff": 0.01, "timeout": 5.0, **kwargs}
        registries = options.pop("registries", RegistriesConfig)
        client = RegistryClient(
            reactor, blocking=pool, blobs=store, registries=registries, **options
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_resolve_and_fetch_a_skopeo_pushed_image(
    open_registry: Registry, image: BuiltImage, store: BlobStore, make_client: MakeClient
) -> None:
    """The config digest is the image ID and the stored layer hashes to its descriptor."""
    client = make_client()
    ref = parse(f"{open_registry.host}/busybox:1")
    resolved = await client.resolve(ref)
    manifest = resolved.manifest
    assert manifest.media_type == DOCKER_MANIFEST
    assert manifest.config.digest == image.id
    assert manifest.digest == sha256(manifest.raw)
    assert resolved.index_digest is None
    assert len(manifest.layers) == 1

    progress: list[tuple[str, int, int]] = []
    layer = manifest.layers[0]
    blob = await client.fetch_blob(ref, layer, progress=lambda *p: progress.append(p))
    assert blob.digest == layer.digest
    assert blob.size == layer.size
    assert sha256(store.read(layer.digest)) == layer.digest
    assert progress[-1] == (layer.digest, layer.size, layer.size)
    assert [p[1] for p in progress] == sorted(p[1] for p in progress)
    config = await client.fetch_blob(ref, manifest.config)
    assert store.read(config.digest) == image.config
    assert os.listdir(store.staging) == []


@pytest_twisted.ensureDeferred
async def test_resolve_by_digest(open_registry: Registry, make_client: MakeClient) -> None:
    client = make_client()
    resolved = await client.resolve(parse(f"{open_registry.host}/busybox:1"))
    by_digest = await client.resolve(
        parse(f"{open_registry.host}/busybox@{resolved.manifest.digest}")
    )
    assert by_digest.manifest.raw == resolved.manifest.raw


@pytest_twisted.ensureDeferred
async def test_fetch_blobs_keeps_order(
    open_registry: Registry, multi_image: BuiltImage, store: BlobStore, make_client: MakeClient
) -> None:
    """Several blobs at once, results in the order asked for, each verified."""
    client = make_client(max_parallel=2)
    ref = parse(f"{open_registry.host}/multi:1")
    manifest = (await client.resolve(ref)).manifest
    descs = [manifest.config, *manifest.layers]
    blobs = await client.fetch_blobs(ref, descs)
    assert [b.digest for b in blobs] == [d.digest for d in descs]
    for desc in descs:
        assert sha256(store.read(desc.digest)) == desc.digest
    # Already stored: nothing is downloaded again.
    assert await client.fetch_blobs(ref, descs) == blobs


@pytest_twisted.ensureDeferred
async def test_push_blobs_and_manifest_then_skopeo_agrees(
    open_registry: Registry, store: BlobStore, make_client: MakeClient
) -> None:
    client = make_client()
    source = parse(f"{open_registry.host}/busybox:1")
    manifest = (await client.resolve(source)).manifest
    descs = [manifest.config, *manifest.layers]
    await client.fetch_blobs(source, descs)

    target = parse(f"{open_registry.host}/pushed/busybox:v1")
    assert not await client.blob_exists(target, manifest.layers[0].digest)
    opened: list[str] = []
    progress: list[tuple[str, int, int]] = []

    def opener(digest: str) -> Callable[[], Any]:
        def open_blob() -> Any:
            opened.append(digest)
            return store.open(digest)

        return open_blob

    for desc in descs:
        await client.push_blob(
            target,
            desc.digest,
            desc.size,
            opener(desc.digest),
            progress=lambda *p: progress.append(p),
        )
    assert opened == [d.digest for d in descs]
    assert (manifest.layers[0].digest, manifest.layers[0].size, manifest.layers[0].size) in progress
    assert await client.blob_exists(target, manifest.layers[0].digest)
    digest = await client.push_manifest(target, manifest.raw, manifest.media_type)
    assert digest == manifest.digest

    # Pushing again skips blobs the registry already has.
    await client.push_blob(target, manifest.config.digest, manifest.config.size, opener("again"))
    assert "again" not in opened

    result = await ProcessRunner(reactor).run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{target}"], timeout=60
    )
    assert result.ok, result.describe()
    assert sha256(result.stdout) == digest
    pushed = json.loads(result.stdout)
    assert [layer["digest"] for layer in pushed["layers"]] == [d.digest for d in manifest.layers]
    assert pushed["config"]["digest"] == manifest.config.digest


@pytest_twisted.ensureDeferred
async def test_cross_repository_mount(open_registry: Registry, make_client: MakeClient) -> None:
    """Blobs are per repository; a mount links one without an upload."""
    client = make_client()
    source = parse(f"{open_registry.host}/busybox:1")
    layer = (await client.resolve(source)).manifest.layers[0]
    target = parse(f"{open_registry.host}/mounted/busybox:1")
    assert not await client.blob_exists(target, layer.digest)
    assert await client.mount_blob(target, layer.digest, source)
    assert await client.blob_exists(target, layer.digest)
    assert not await client.mount_blob(target, "sha256:" + "c" * 64, source)
    assert not await client.mount_blob(target, layer.digest, parse("elsewhere.test/busybox"))


@pytest_twisted.ensureDeferred
async def test_tags_and_catalog(open_registry: Registry, make_client: MakeClient) -> None:
    client = make_client()
    assert await client.tags(parse(f"{open_registry.host}/busybox")) == ["1"]
    repositories = await client.catalog(open_registry.host)
    assert {"busybox", "multi"} <= set(repositories)
    assert len(await client.catalog(open_registry.host, limit=1)) == 1


@pytest_twisted.ensureDeferred
async def test_unknown_reference_is_manifest_unknown(
    open_registry: Registry, make_client: MakeClient
) -> None:
    client = make_client()
    with pytest.raises(ManifestUnknown) as info:
        await client.resolve(parse(f"{open_registry.host}/busybox:nope"))
    assert isinstance(info.value, NotFound)
    assert f"{open_registry.host}/busybox" in info.value.message
    assert "manifest unknown" in info.value.message
    with pytest.raises(ManifestUnknown):
        await client.resolve(parse(f"{open_registry.host}/no/such/repo:1"))


@pytest_twisted.ensureDeferred
async def test_login_checks_credentials(auth_registry: Registry, make_client: MakeClient) -> None:
    client = make_client()
    assert await client.login(auth_registry.host, ALICE) == "Login Succeeded"
    assert await client.login(f"http://{auth_registry.host}/v2/", ALICE) == "Login Succeeded"
    with pytest.raises(RegistryUnauthorized, match=auth_registry.host):
        await client.login(auth_registry.host, Credentials("alice", "wrong"))


@pytest_twisted.ensureDeferred
async def test_basic_auth_pull(
    auth_registry: Registry, image: BuiltImage, make_client: MakeClient
) -> None:
    """Anonymous pulls are refused in Docker's words; alice's basic credentials work."""
    client = make_client()
    ref = parse(f"{auth_registry.host}/private:1")
    with pytest.raises(RegistryUnauthorized, match="unauthorized: authentication required"):
        await client.resolve(ref)
    resolved = await client.resolve(ref, creds=ALICE)
    assert resolved.manifest.config.digest == image.id
    blob = await client.fetch_blob(ref, resolved.manifest.config, creds=ALICE)
    assert blob.digest == image.id


@pytest_twisted.ensureDeferred
async def test_registry_that_is_down(make_client: MakeClient) -> None:
    host = f"127.0.0.1:{free_port()}"
    client = make_client()
    with pytest.raises(RegistryUnreachable, match=f"pinging container registry {host}"):
        await client.resolve(parse(f"{host}/busybox:1"))


@pytest_twisted.ensureDeferred
async def test_blocked_registry(tmp_path: Path, make_client: MakeClient) -> None:
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "blocked.test"\nblocked = true\n')
    config = load(str(conf))
    client = make_client(registries=lambda: config)
    with pytest.raises(
        BlockedRegistry, match=r"registry blocked\.test is blocked in .*registries.conf"
    ):
        await client.resolve(parse("blocked.test/x:1"))
    with pytest.raises(BlockedRegistry):
        await client.push_manifest(parse("blocked.test/x:1"), b"{}", OCI_MANIFEST)
    with pytest.raises(BlockedRegistry):
        await client.login("blocked.test", ALICE)


@pytest_twisted.ensureDeferred
async def test_location_rewrite_and_dead_mirror(
    tmp_path: Path, open_registry: Registry, image: BuiltImage, make_client: MakeClient
) -> None:
    """A mirror that is down is skipped; ``location`` sends the pull to the real host."""
    conf = tmp_path / "registries.conf"
    conf.write_text(
        '[[registry]]\nprefix = "example.test/bb"\n'
        f'location = "{open_registry.host}/busybox"\n'
        f'[[registry.mirror]]\nlocation = "127.0.0.1:{free_port()}/busybox"\n'
    )
    config = load(str(conf))
    client = make_client(registries=lambda: config)
    ref = parse("example.test/bb:1")
    resolved = await client.resolve(ref)
    assert resolved.manifest.config.digest == image.id
    assert (await client.fetch_blob(ref, resolved.manifest.config)).digest == image.id


# --- an in-process fake registry --------------------------------------------------


class FakeRegistry(Resource):
    """Just enough of the distribution API, with knobs for misbehaviour.

    :ivar bearer: demand tokens from ``/token`` (else open).
    :ivar users: basic credentials the token endpoint accepts (empty: anonymous tokens).
    :ivar manifest_failures: statuses for the next manifest GETs, one each.
    :ivar reset_manifest: abort this many manifest GETs' connections.
    :ivar stall_blobs: digests to send half of, then nothing.
    :ivar delay: seconds to hold each blob response (counts concurrency).
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.base = ""
        self.bearer = False
        self.users: dict[str, str] = {}
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.manifest_failures: list[int] = []
        self.reset_manifest = 0
        self.stall_blobs: set[str] = set()
        self.redirect_blobs_to = ""
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.log: list[tuple[str, str, str | None]] = []
        self.token_requests: list[tuple[dict[str, list[str]], str | None]] = []
        self.issued: dict[str, str] = {}
        self.stalled: list[Request] = []
        self.secure_requests = 0

    def add_blob(self, data: bytes) -> Descriptor:
        digest = sha256(data)
        self.blobs[digest] = data
        return Descriptor("application/octet-stream", digest, len(data))

    def add_manifest(self, repo: str, body: dict[str, Any], *tags: str) -> str:
        raw = json.dumps(body).encode()
        media_type = str(body.get("mediaType", OCI_MANIFEST))
        digest = sha256(raw)
        for ref in (digest, *tags):
            self.manifests[(repo, ref)] = (raw, media_type)
        return digest

    def add_image(self, repo: str, *tags: str, arch: str = "amd64") -> str:
        config = self.add_blob(json.dumps({"architecture": arch, "os": "linux"}).encode())
        layer = self.add_blob(f"layer for {arch}".encode())
        return self.add_manifest(
            repo,
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config.digest,
                    "size": config.size,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer.digest,
                        "size": layer.size,
                    }
                ],
            },
            *tags,
        )

    def render(self, request: Request) -> bytes | int:
        path = request.path.decode()
        method = request.method.decode()
        auth = request.getHeader("authorization")
        if request.isSecure():
            self.secure_requests += 1
        if path == "/token":
            return self._token(request, auth)
        if path.startswith("/storage/"):
            self.log.append((method, path, auth))
            return self.blobs[path.removeprefix("/storage/")]
        self.log.append((method, path, auth))
        match = re.match(r"^/v2/(.+)/(manifests|blobs)/([^/]+)$", path)
        repo = match.group(1) if match else ""
        if self.bearer and (not auth or auth.removeprefix("Bearer ") not in self.issued):
            challenge = f'Bearer realm="{self.base}/token",service="fake.test"'
            if repo:
                challenge += f',scope="repository:{repo}:pull"'
            request.setHeader("WWW-Authenticate", challenge)
            return self._error(request, 401, "UNAUTHORIZED", "authentication required")
        if path == "/v2/":
            return b"{}"
        if match is None:
            return self._error(request, 404, "NOT_FOUND", "no route")
        kind, ref = match.group(2), match.group(3)
        if kind == "manifests":
            return self._manifest(request, method, repo, ref)
        return self._blob(request, ref)

    def _manifest(self, request: Request, method: str, repo: str, ref: str) -> bytes:
        if method == "PUT":
            raw = request.content.read()  # type: ignore[union-attr]
            media_type = request.getHeader("content-type") or ""
            digest = sha256(raw)
            self.manifests[(repo, ref)] = self.manifests[(repo, digest)] = (raw, media_type)
            request.setResponseCode(201)
            request.setHeader("Docker-Content-Digest", digest)
            return b""
        if self.reset_manifest:
            self.reset_manifest -= 1
            request.transport.abortConnection()  # type: ignore[union-attr]
            return b""
        if self.manifest_failures:
            code = self.manifest_failures.pop(0)
            return self._error(request, code, "UNAVAILABLE", f"try again ({code})")
        if (repo, ref) not in self.manifests:
            return self._error(request, 404, "MANIFEST_UNKNOWN", "manifest unknown")
        raw, media_type = self.manifests[(repo, ref)]
        request.setHeader("Content-Type", media_type)
        request.setHeader("Docker-Content-Digest", sha256(raw))
        return raw

    def _blob(self, request: Request, digest: str) -> bytes | int:
        if digest not in self.blobs:
            return self._error(request, 404, "BLOB_UNKNOWN", "blob unknown to registry")
        data = self.blobs[digest]
        if self.redirect_blobs_to:
            request.redirect(f"{self.redirect_blobs_to}/storage/{digest}".encode())
            request.setResponseCode(307)
            return b""
        request.setHeader("Content-Length", str(len(data)))
        if digest in self.stall_blobs:
            request.write(data[: len(data) // 2])
            self.stalled.append(request)
            return NOT_DONE_YET
        if not self.delay:
            return data
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

        def finish() -> None:
            self.in_flight -= 1
            request.write(data)
            request.finish()

        REACTOR.callLater(self.delay, finish)
        return NOT_DONE_YET

    def _token(self, request: Request, auth: str | None) -> bytes:
        args = {k.decode(): [v.decode() for v in vs] for k, vs in request.args.items()}
        self.token_requests.append((args, auth))
        if self.users:
            expected = {
                "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()
                for u, p in self.users.items()
            }
            if auth not in expected:
                return self._error(request, 401, "UNAUTHORIZED", "bad credentials")
        token = f"tok-{len(self.issued)}"
        self.issued[token] = " ".join(args.get("scope", []))
        # Alternate the two field names the token spec allows.
        key = "token" if len(self.issued) % 2 else "access_token"
        return json.dumps({key: token, "expires_in": 300}).encode()

    def _error(self, request: Request, code: int, error: str, message: str) -> bytes:
        request.setResponseCode(code)
        request.setHeader("Content-Type", "application/json")
        return json.dumps({"errors": [{"code": error, "message": message}]}).encode()

    def manifest_gets(self) -> int:
        return sum(1 for m, p, _ in self.log if m == "GET" and "/manifests/" in p)


@implementer(IOpenSSLContextFactory)
class SelfSigned:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""

    def __init__(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake registry")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        self._context = SSL.Context(SSL.TLS_SERVER_METHOD)
        self._context.use_certificate(cert)
        self._context.use_privatekey(key)

    def getContext(self) -> SSL.Context:
        return self._context


class _Channel(HTTPChannel):
    """Answers a TLS ClientHello on the plain port by hanging up, as Go's server does.

    twisted.web would otherwise wait for a request line that never comes, and
    the client's https attempt would only end at its timeout.
    """

    _first = True

    def dataReceived(self, data: bytes) -> None:
        if self._first and data[:1] == b"\x16":
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        self._first = False
        super().dataReceived(data)


class _PlainSite(Site):
    protocol = _Channel  # type: ignore[assignment]


async def _serve(fake: FakeRegistry, tls: bool) -> AsyncIterator[FakeRegistry]:
    if tls:
        port = REACTOR.listenSSL(0, Site(fake), SelfSigned(), interface="127.0.0.1")
    else:
        port = REACTOR.listenTCP(0, _PlainSite(fake), interface="127.0.0.1")
    host = f"127.0.0.1:{port.getHost().port}"
    fake.base = f"{'https' if tls else 'http'}://{host}"
    yield fake
    for request in fake.stalled:
        if request.channel is not None:
            request.channel.transport.abortConnection()  # type: ignore[union-attr]
    await port.stopListening()


@pytest_twisted.async_yield_fixture
async def fake() -> AsyncIterator[FakeRegistry]:
    async for served in _serve(FakeRegistry(), tls=False):
        yield served


@pytest_twisted.async_yield_fixture
async def tls_fake() -> AsyncIterator[FakeRegistry]:
    async for served in _serve(FakeRegistry(), tls=True):
        yield served


def host_of(fake: FakeRegistry) -> str:
    return fake.base.split("://", 1)[1]


@pytest_twisted.ensureDeferred
async def test_bearer_token_flow(fake: FakeRegistry, make_client: MakeClient) -> None:
    """Token from the realm with service, scope, account and basic auth; cached per scope."""
    fake.bearer = True
    fake.users = {"alice": "s3cret"}
    fake.add_image("team/app", "1")
    client = make_client()
    ref = parse(f"{host_of(fake)}/team/app:1")
    resolved = await client.resolve(ref, creds=ALICE)
    assert len(fake.token_requests) == 1
    args, auth = fake.token_requests[0]
    assert args["service"] == ["fake.test"]
    assert args["scope"] == ["repository:team/app:pull"]
    assert args["account"] == ["alice"]
    assert auth == ALICE.basic_authorization()
    # The cached token serves the blob fetch and a second resolve.
    await client.fetch_blob(ref, resolved.manifest.config, creds=ALICE)
    await client.resolve(ref, creds=ALICE)
    assert len(fake.token_requests) == 1
    # Pushing asks for pull,push.
    await client.push_manifest(ref.with_tag("2"), resolved.manifest.raw, OCI_MANIFEST, creds=ALICE)
    assert fake.token_requests[-1][0]["scope"] == ["repository:team/app:pull,push"]
    assert fake.manifests[("team/app", "2")][0] == resolved.manifest.raw


@pytest_twisted.ensureDeferred
async def test_bearer_tokens_are_kept_per_credentials(
    fake: FakeRegistry, make_client: MakeClient
) -> None:
    """Anonymous tokens work; one user's token is never reused for another."""
    fake.bearer = True
    fake.add_image("app", "1")
    client = make_client()
    ref = parse(f"{host_of(fake)}/app:1")
    await client.resolve(ref)
    assert fake.token_requests[-1][1] is None
    await client.resolve(ref, creds=ALICE)
    assert len(fake.token_requests) == 2


@pytest_twisted.ensureDeferred
async def test_bad_credentials_at_the_token_server(
    fake: FakeRegistry, make_client: MakeClient
) -> None:
    fake.bearer = True
    fake.users = {"alice": "s3cret"}
    fake.add_image("app", "1")
    client = make_client()
    ref = parse(f"{host_of(fake)}/app:1")
    with pytest.raises(RegistryUnauthorized, match="unable to retrieve auth token"):
        await client.resolve(ref, creds=Credentials("alice", "nope"))
    with pytest.raises(RegistryUnauthorized):
        await client.login(host_of(fake), Credentials("alice", "nope"))
    assert await client.login(host_of(fake), ALICE) == "Login Succeeded"


@pytest_twisted.ensureDeferred
async def test_registry_token_is_sent_as_is(fake: FakeRegistry, make_client: MakeClient) -> None:
    fake.bearer = True
    fake.issued["given-token"] = ""
    fake.add_image("app", "1")
    client = make_client()
    await client.resolve(
        parse(f"{host_of(fake)}/app:1"), creds=Credentials(registry_token="given-token")
    )
    assert fake.token_requests == []
    assert fake.log[-1][2] == "Bearer given-token"


@pytest_twisted.ensureDeferred
async def test_index_platform_choice(fake: FakeRegistry, make_client: MakeClient) -> None:
    """The matching entry is fetched; the index digest is kept; no match is a 404."""
    amd64 = fake.add_image("multi", arch="amd64")
    arm64 = fake.add_image("multi", arch="arm64")
    armv6 = fake.add_image("multi", arch="arm-v6")
    armv7 = fake.add_image("multi", arch="arm-v7")

    def entry(digest: str, arch: str, variant: str = "", os_: str = "linux") -> dict[str, Any]:
        platform = {"os": os_, "architecture": arch, **({"variant": variant} if variant else {})}
        raw = fake.manifests[("multi", digest)][0]
        return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw), "platform": platform}

    index = fake.add_manifest(
        "multi",
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                entry(amd64, "unknown", os_="unknown"),  # an attestation, as BuildKit adds
                entry(amd64, "amd64"),
                entry(armv6, "arm", "v6"),
                entry(armv7, "arm", "v7"),
                entry(arm64, "arm64", "v8"),
            ],
        },
        "latest",
    )
    client = make_client()
    ref = parse(f"{host_of(fake)}/multi")
    for platform, expected in [
        (Platform(architecture="amd64"), amd64),
        (Platform(architecture="arm64"), arm64),
        (Platform(architecture="arm64", variant="v8"), arm64),
        (Platform(architecture="arm"), armv7),
        (Platform(architecture="arm", variant="6"), armv6),
    ]:
        resolved = await client.resolve(ref, platform=platform)
        assert resolved.manifest.digest == expected, platform
        assert resolved.index_digest == index
    by_digest = await client.resolve(parse(f"{host_of(fake)}/multi@{index}"))
    assert by_digest.index_digest == index
    with pytest.raises(ManifestUnknown, match="no matching manifest for windows/amd64"):
        await client.resolve(ref, platform=Platform(os="windows", architecture="amd64"))


def test_choose_platform_prefers_the_default_variant() -> None:
    entries = [
        Descriptor(
            OCI_MANIFEST,
            "sha256:" + "1" * 64,
            1,
            {"os": "linux", "architecture": "arm64", "variant": "v9"},
        ),
        Descriptor(OCI_MANIFEST, "sha256:" + "2" * 64, 1, {"os": "linux", "architecture": "arm64"}),
    ]
    chosen = choose_platform(entries, Platform(architecture="arm64"))
    assert chosen is not None
    assert chosen.digest.endswith("2" * 64)
    assert choose_platform(entries, Platform(architecture="arm64", variant="v7")) is None


@pytest_twisted.ensureDeferred
async def test_5xx_and_429_are_retried(fake: FakeRegistry, make_client: MakeClient) -> None:
    fake.add_image("app", "1")
    fake.manifest_failures = [503, 429, 500]
    client = make_client(retries=3)
    await client.resolve(parse(f"{host_of(fake)}/app:1"))
    assert fake.manifest_gets() == 4


@pytest_twisted.ensureDeferred
async def test_retries_run_out(fake: FakeRegistry, make_client: MakeClient) -> None:
    fake.add_image("app", "1")
    fake.manifest_failures = [502] * 10
    client = make_client(retries=2)
    with pytest.raises(
        RegistryError, match=r"reading manifest 1 in .*/app: unavailable: try again \(502\)"
    ):
        await client.resolve(parse(f"{host_of(fake)}/app:1"))
    assert fake.manifest_gets() == 3


@pytest_twisted.ensureDeferred
async def test_client_errors_are_not_retried(fake: FakeRegistry, make_client: MakeClient) -> None:
    fake.manifest_failures = [400]
    client = make_client(retries=3)
    with pytest.raises(RegistryError, match=r"400|unavailable"):
        await client.resolve(parse(f"{host_of(fake)}/app:1"))
    with pytest.raises(ManifestUnknown):
        await client.resolve(parse(f"{host_of(fake)}/app:1"))
    assert fake.manifest_gets() == 2


@pytest_twisted.ensureDeferred
async def test_connection_reset_is_retried(fake: FakeRegistry, make_client: MakeClient) -> None:
    fake.add_image("app", "1")
    fake.reset_manifest = 1
    client = make_client(retries=2)
    await client.resolve(parse(f"{host_of(fake)}/app:1"))
    assert fake.manifest_gets() >= 2


@pytest_twisted.ensureDeferred
async def test_schema1_is_refused(fake: FakeRegistry, make_client: MakeClient) -> None:
    fake.manifests[("old", "1")] = (
        json.dumps({"schemaVersion": 1, "name": "old", "fsLayers": []}).encode(),
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    )
    client = make_client()
    with pytest.raises(RegistryError, match="unsupported manifest schema 1"):
        await client.resolve(parse(f"{host_of(fake)}/old:1"))


@pytest_twisted.ensureDeferred
async def test_manifest_digest_is_verified(fake: FakeRegistry, make_client: MakeClient) -> None:
    digest = fake.add_image("app", "1")
    wrong = "sha256:" + "0" * 64
    fake.manifests[("app", wrong)] = fake.manifests[("app", digest)]
    client = make_client()
    with pytest.raises(RegistryError, match="does not match"):
        await client.resolve(parse(f"{host_of(fake)}/app@{wrong}"))


@pytest_twisted.ensureDeferred
async def test_bad_blob_content_is_thrown_away(
    fake: FakeRegistry, store: BlobStore, make_client: MakeClient
) -> None:
    desc = fake.add_blob(b"the real content")
    fake.blobs[desc.digest] = b"the fake content"
    client = make_client()
    with pytest.raises(DigestMismatch):
        await client.fetch_blob(parse(f"{host_of(fake)}/app:1"), desc)
    assert not store.has(desc.digest)
    assert os.listdir(store.staging) == []
    # Longer than the descriptor says: refused too.
    short = Descriptor(desc.media_type, desc.digest, 4)
    with pytest.raises(DigestMismatch):
        await client.fetch_blob(parse(f"{host_of(fake)}/app:1"), short)
    assert os.listdir(store.staging) == []


@pytest_twisted.ensureDeferred
async def test_blob_redirects_are_followed_without_credentials(
    fake: FakeRegistry, make_client: MakeClient
) -> None:
    """Like S3-backed registries; the registry's Authorization stays with the registry."""
    fake.bearer = True
    fake.add_image("app", "1")
    fake.redirect_blobs_to = fake.base.replace("127.0.0.1", "localhost")
    client = make_client()
    ref = parse(f"{host_of(fake)}/app:1")
    resolved = await client.resolve(ref)
    blob = await client.fetch_blob(ref, resolved.manifest.layers[0])
    assert blob.digest == resolved.manifest.layers[0].digest
    storage = [entry for entry in fake.log if entry[1].startswith("/storage/")]
    assert storage == [("GET", f"/storage/{blob.digest}", None)]


@pytest_twisted.ensureDeferred
async def test_fetch_blobs_bounds_parallelism(fake: FakeRegistry, make_client: MakeClient) -> None:
    fake.delay = 0.05
    descs = [fake.add_blob(f"blob {i}".encode() * 100) for i in range(7)]
    client = make_client(max_parallel=3)
    blobs = await client.fetch_blobs(parse(f"{host_of(fake)}/app:1"), descs)
    assert [b.digest for b in blobs] == [d.digest for d in descs]
    assert fake.max_in_flight == 3


@pytest_twisted.ensureDeferred
async def test_stalled_download_times_out(
    fake: FakeRegistry, store: BlobStore, make_client: MakeClient
) -> None:
    desc = fake.add_blob(os.urandom(256 * 1024))
    fake.stall_blobs = {desc.digest}
    client = make_client(timeout=0.3, retries=1)
    with pytest.raises(RegistryUnreachable, match="i/o timeout"):
        await client.fetch_blob(parse(f"{host_of(fake)}/app:1"), desc)
    assert len(fake.stalled) == 2
    assert os.listdir(store.staging) == []


@pytest_twisted.ensureDeferred
async def test_cancelled_download_leaves_nothing(
    fake: FakeRegistry, store: BlobStore, make_client: MakeClient
) -> None:
    desc = fake.add_blob(os.urandom(3 * 1024 * 1024))
    fake.stall_blobs = {desc.digest}
    client = make_client()
    started: Deferred[None] = Deferred()

    def progress(digest: str, done: int, total: int) -> None:
        if not started.called:
            started.callback(None)

    d = Deferred.fromCoroutine(
        client.fetch_blob(parse(f"{host_of(fake)}/app:1"), desc, progress=progress)
    )
    await started
    d.cancel()
    with pytest.raises(CancelledError):
        await d
    assert os.listdir(store.staging) == []
    assert not store.has(desc.digest)


@pytest_twisted.ensureDeferred
async def test_failed_fetch_blobs_cancels_the_rest(
    fake: FakeRegistry, store: BlobStore, make_client: MakeClient
) -> None:
    """One bad blob fails the batch; the stalled downloads are cancelled and cleaned up."""
    good = [fake.add_blob(os.urandom(512 * 1024)) for _ in range(2)]
    fake.stall_blobs = {d.digest for d in good}
    bad = fake.add_blob(b"the real content")
    fake.blobs[bad.digest] = b"the fake content"
    client = make_client(max_parallel=3)
    with pytest.raises(DigestMismatch):
        await client.fetch_blobs(parse(f"{host_of(fake)}/app:1"), [*good, bad])
    assert os.listdir(store.staging) == []


@pytest_twisted.ensureDeferred
async def test_insecure_tls(tls_fake: FakeRegistry, make_client: MakeClient) -> None:
    """Unverified https for insecure registries; verified https refuses a self-signed cert."""
    tls_fake.add_image("app", "1")
    client = make_client()
    ref = parse(f"{host_of(tls_fake)}/app:1")
    await client.resolve(ref, tls_verify=False)
    await client.resolve(ref)  # loopback counts as insecure
    assert tls_fake.secure_requests >= 2
    with pytest.raises(RegistryUnreachable, match=r"tls: .*certificate verify failed"):
        await client.resolve(ref, tls_verify=True)


@pytest_twisted.ensureDeferred
async def test_plain_http_fallback_is_remembered(
    fake: FakeRegistry, make_client: MakeClient
) -> None:
    fake.add_image("app", "1")
    client = make_client()
    ref = parse(f"{host_of(fake)}/app:1")
    await client.resolve(ref)
    await client.resolve(ref)
    assert [entry[1] for entry in fake.log].count("/v2/") == 1
    # Verified https only, when asked: the plain server hangs up on the handshake.
    with pytest.raises(RegistryUnreachable, match="pinging container registry"):
        await client.resolve(ref, tls_verify=True)


# --- values without a network -----------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize(
    "header",
    [
        _b64url(b'{"username":"alice","password":"s3cret?>>"}'),
        base64.b64encode(b'{"username":"alice","password":"s3cret?>>"}').decode(),
        '{"username":"alice","password":"s3cret?>>"}',
        _b64url(json.dumps({"auth": base64.b64encode(b"alice:s3cret?>>").decode()}).encode()),
    ],
)
def test_credentials_from_header(header: str) -> None:
    assert Credentials.from_header(header) == Credentials("alice", "s3cret?>>")


@pytest.mark.parametrize("header", [None, "", "  ", "{}", "e30", "e30=", "bnVsbA"])
def test_credentials_from_empty_headers(header: str | None) -> None:
    assert Credentials.from_header(header) is None


def test_credentials_tokens_and_server() -> None:
    header = _b64url(
        json.dumps(
            {"identitytoken": "idt", "serveraddress": "https://index.docker.io/v1/"}
        ).encode()
    )
    creds = Credentials.from_header(header)
    assert creds == Credentials(identity_token="idt", server_address="https://index.docker.io/v1/")


@pytest.mark.parametrize("header", ["!!!", _b64url(b"not json"), _b64url(b"[1]")])
def test_credentials_garbage_is_invalid(header: str) -> None:
    with pytest.raises(InvalidArgument, match="X-Registry-Auth"):
        Credentials.from_header(header)


def test_credentials_hide_secrets() -> None:
    text = repr(Credentials("alice", "s3cret", identity_token="idt", registry_token="rt"))
    assert "alice" in text
    assert "s3cret" not in text
    assert "idt" not in text


def test_parse_challenges() -> None:
    header = (
        b'Bearer realm="https://auth.example/token",service="registry.example",'
        b'scope="repository:a/b:pull,push", Basic realm="say \\"hi\\", please"'
    )
    assert parse_challenges([header]) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.example/token",
                "service": "registry.example",
                "scope": "repository:a/b:pull,push",
            },
        ),
        Challenge("basic", {"realm": 'say "hi", please'}),
    ]
    assert parse_challenges([b"Negotiate abc==, Basic realm=x"]) == [
        Challenge("negotiate"),
        Challenge("basic", {"realm": "x"}),
    ]
    assert parse_challenges([b""]) == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1", True),
        ("127.1.2.3:443", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("registry.example:5000", False),
        ("10.0.0.1:5000", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_pull_sources_order_and_rewrites(tmp_path: Path, store: BlobStore) -> None:
    """Mirrors first (honouring pull-from-mirror), then the relocated registry; docker.io's host."""
    conf = tmp_path / "registries.conf"
    conf.write_text(
        '[[registry]]\nprefix = "docker.io/library"\nlocation = "hub.example/lib"\n'
        '[[registry.mirror]]\nlocation = "cache.example/hub"\ninsecure = true\n'
        '[[registry.mirror]]\nlocation = "pinned.example/hub"\npull-from-mirror = "digest-only"\n'
    )
    config = load(str(conf))
    client = RegistryClient(
        REACTOR, blocking=InlineBlocking(), blobs=store, registries=lambda: config
    )
    by_tag = client._pull_sources(parse("busybox"), None)
    assert [(e.host, e.path, e.insecure) for e in by_tag] == [
        ("cache.example", "hub/busybox", True),
        ("hub.example", "lib/busybox", False),
    ]
    by_digest = client._pull_sources(parse("busybox@sha256:" + "a" * 64), None)
    assert [e.host for e in by_digest] == ["cache.example", "pinned.example", "hub.example"]
    assert [e.insecure for e in client._pull_sources(parse("busybox"), False)] == [True, True]
    hub = client._pull_sources(parse("someone/app"), None)
    assert [(e.domain, e.host, e.path) for e in hub] == [
        ("docker.io", "registry-1.docker.io", "someone/app")
    ]


@pytest_twisted.ensureDeferred
async def test_push_reports_an_unreadable_blob(
    open_registry: Registry, tmp_path: Path, make_client: MakeClient
) -> None:
    client = make_client()

    def missing() -> Any:
        return open(tmp_path / "gone", "rb")

    with pytest.raises(FileNotFoundError):
        await client.push_blob(
            parse(f"{open_registry.host}/broken:1"), "sha256:" + "b" * 64, 10, missing
        )


@pytest_twisted.ensureDeferred
async def test_docker_manifest_list_is_read_like_an_oci_index(
    fake: FakeRegistry, make_client: MakeClient
) -> None:
    """A Docker manifest list v2 resolves by platform and inspects with its entries."""
    amd64 = fake.add_image("dlist", arch="amd64")
    arm64 = fake.add_image("dlist", arch="arm64")
    entries = [
        {
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": len(fake.manifests[("dlist", digest)][0]),
            "platform": {"os": "linux", "architecture": arch},
        }
        for digest, arch in ((amd64, "amd64"), (arm64, "arm64"))
    ]
    list_type = "application/vnd.docker.distribution.manifest.list.v2+json"
    index = fake.add_manifest(
        "dlist", {"schemaVersion": 2, "mediaType": list_type, "manifests": entries}, "1"
    )
    client = make_client()
    ref = parse(f"{host_of(fake)}/dlist:1")
    resolved = await client.resolve(ref, platform=Platform(architecture="arm64"))
    assert (resolved.manifest.digest, resolved.index_digest) == (arm64, index)
    inspected = await client.inspect(ref)
    assert (inspected.media_type, inspected.digest) == (list_type, index)
    assert [e.digest for e in inspected.entries] == [amd64, arm64]
    assert [p["architecture"] for p in inspected.platforms] == ["amd64", "arm64"]
    single = await client.inspect(parse(f"{host_of(fake)}/dlist@{amd64}"))
    assert single.entries == () and single.platforms[0]["architecture"] == "amd64"
