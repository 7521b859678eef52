"""One stage of a build: its FROM, then each instruction as a cached step."""

import contextlib
import json
import os
import posixpath
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from functools import partial
from typing import Any

from attrs import define, field

from podapi.engine.distribution import Distribution
from podapi.engine.imagebuild import config, context, words
from podapi.engine.imagebuild.cache import BuildCache
from podapi.engine.imagebuild.dockerfile import Instruction, Stage, parse_instruction
from podapi.engine.imagebuild.options import BuildFailed, BuildOptions, BuildOutput
from podapi.engine.imagebuild.steps import WorkingContainers
from podapi.engine.images import ImageService
from podapi.engine.state.images import ImageRecord
from podapi.engine.times import rfc3339_nano
from podapi.errors import InvalidArgument
from podapi.oci.host import go_arch
from podapi.storage import reference
from podapi.storage.registry import Credentials, UrlDownloader
from podapi.threads import Blocking

_COPY_FLAGS = {"COPY": {"from", "chown", "chmod", "link"}, "ADD": {"chown", "chmod", "link"}}
#: Docker Hub's key in ``X-Registry-Config`` (the docker CLI's ``IndexServer``).
_HUB_KEYS = ("https://index.docker.io/v1/", "docker.io", "index.docker.io")


def arg_pairs(value: str) -> list[tuple[str, str | None]]:
    """``ARG A=1 B``: the names and their raw defaults (None: no default)."""
    pairs: list[tuple[str, str | None]] = []
    for word in value.split():
        name, sep, default = word.partition("=")
        if not name:
            raise InvalidArgument("ARG requires a name")
        pairs.append((name, default if sep else None))
    if not pairs:
        raise InvalidArgument("ARG requires exactly one argument")
    return pairs


def check_platform(platform: str) -> None:
    """Only the host's platform is built (``--platform`` of another is refused)."""
    if not platform:
        return
    parts = platform.lower().split("/")
    if parts[0] != "linux" or (len(parts) > 1 and parts[1] != go_arch()):
        raise InvalidArgument(
            f"platform {platform} is not supported: this server builds linux/{go_arch()} only"
        )


@define
class StageContext:
    """What the stages of one build share."""

    images: ImageService
    distribution: Distribution
    working: WorkingContainers
    cache: BuildCache
    downloader: UrlDownloader
    io: Blocking
    now_ns: Callable[[], int]
    #: The unpacked context, and where ADD puts its downloads.
    root: str
    downloads: str
    options: BuildOptions
    out: BuildOutput
    total: int
    meta_args: dict[str, str | None]
    proxy_args: frozenset[str]
    built: dict[int, ImageRecord] = field(factory=dict)
    built_names: dict[str, ImageRecord] = field(factory=dict)
    used_args: set[str] = field(factory=set)
    step: int = 0

    def header(self, text: str) -> None:
        """``Step N/M : <instruction>``."""
        self.step += 1
        self.out.stream(f"Step {self.step}/{self.total} : {text}\n")

    def credentials(self, name: str) -> Credentials | None:
        """The ``X-Registry-Config`` entry for the registry of image ``name``."""
        auth = self.options.registry_auth
        if not auth:
            return None
        try:
            domain = reference.parse(name).domain
        except InvalidArgument:
            return None
        keys = _HUB_KEYS if domain == reference.DEFAULT_DOMAIN else (domain,)
        for key in auth:
            if (
                key.removeprefix("https://").removeprefix("http://").rstrip("/") in keys
                or key in keys
            ):
                return auth[key]
        return None


class StageRun:
    """Runs one stage; :meth:`run` returns its last image."""

    def __init__(self, shared: StageContext, stage: Stage, *, labels: Mapping[str, str]) -> None:
        self._shared = shared
        self._stage = stage
        self._labels = labels
        self._args: dict[str, str | None] = {}
        self._cmd_set = False
        self._image: ImageRecord | None = None
        self._config: dict[str, Any] = {}

    @property
    def _section(self) -> dict[str, Any]:
        return dict(self._config.get("config") or {})

    @property
    def _env(self) -> dict[str, str]:
        """What ``$VAR`` expands to: the stage's ARGs, overridden by ENV."""
        args = {k: v for k, v in self._args.items() if v is not None}
        return {**args, **config.env_map(self._section)}

    async def run(self) -> ImageRecord:
        """FROM, the ONBUILD triggers of the base, then each instruction."""
        shared = self._shared
        shared.header(self._stage.start.text)
        check_platform(self._stage.start.flags.get("platform", ""))
        known = {k: v for k, v in shared.meta_args.items() if v is not None}
        base = words.expand(self._stage.base, known)
        shared.used_args.update(
            k
            for k in shared.meta_args
            if f"${k}" in self._stage.base or "${" + k in self._stage.base
        )
        self._image = await self._base(base)
        self._config = json.loads(json.dumps(await shared.images.config(self._image)))
        shared.out.stream(f" ---> {self._image.id[:12]}\n")
        triggers = self._section.get("OnBuild") or []
        if triggers:
            # The image built does not inherit the triggers it ran (Docker).
            self._config["config"] = {k: v for k, v in self._section.items() if k != "OnBuild"}
            plural = "s" if len(triggers) > 1 else ""
            shared.out.stream(f"# Executing {len(triggers)} build trigger{plural}\n")
            for text in triggers:
                await self._dispatch(parse_instruction(text))
        for ins in self._stage.instructions:
            shared.header(ins.text)
            await self._dispatch(ins)
        if self._labels:
            section = self._section
            section["Labels"] = {**(section.get("Labels") or {}), **self._labels}
            text = "LABEL " + " ".join(f'"{k}"="{v}"' for k, v in sorted(self._labels.items()))
            await self._commit_meta(config.nop(text), section)
        assert self._image is not None
        return self._image

    # --- FROM ------------------------------------------------------------------------

    async def _base(self, name: str) -> ImageRecord:
        shared = self._shared
        if name.lower() in shared.built_names:
            return shared.built_names[name.lower()]
        if name.isdigit() and int(name) in shared.built:
            return shared.built[int(name)]
        if name.lower() == "scratch":
            return await self._scratch()
        options = shared.options
        result = await shared.distribution.pull(
            name,
            short_names=options.short_names,
            creds=shared.credentials(name),
            policy="always" if options.pull else "missing",
        )
        return result.image

    async def _scratch(self) -> ImageRecord:
        """An empty image to build on (the same one every time: no timestamp in it)."""
        empty = {
            "architecture": go_arch(),
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        }
        image = await self._shared.images.commit(json.dumps(empty).encode(), [])
        await self._shared.cache.record(image, "", "FROM scratch")
        return image

    # --- the steps -------------------------------------------------------------------

    async def _dispatch(self, ins: Instruction) -> None:
        command = ins.command
        if command == "RUN":
            await self._run(ins)
        elif command in ("COPY", "ADD"):
            await self._copy(ins)
        elif command == "ARG":
            await self._arg(ins)
        else:
            section = config.apply(self._section, ins, self._env, self._cmd_set)
            if command == "CMD":
                self._cmd_set = True
            author = words.expand(ins.value, self._env) if command == "MAINTAINER" else None
            await self._commit_meta(config.nop(ins.text), section, author)

    async def _arg(self, ins: Instruction) -> None:
        shared = self._shared
        build_args = shared.options.build_args
        shown = []
        for name, default in arg_pairs(ins.value):
            if name in build_args:
                value: str | None = build_args[name]
                shared.used_args.add(name)
            elif default is not None:
                value = words.expand(default, self._env)
            else:
                value = shared.meta_args.get(name)
            self._args[name] = value
            shown.append(name if default is None else f"{name}={default}")
        await self._commit_meta(config.nop("ARG " + " ".join(shown)), self._section)

    def _next_config(
        self, section: Mapping[str, Any], created_by: str, diff_id: str | None, author: str | None
    ) -> dict[str, Any]:
        base = self._config
        created = rfc3339_nano(self._shared.now_ns())
        entry: dict[str, Any] = {"created": created, "created_by": created_by}
        if diff_id is None:
            entry["empty_layer"] = True
        diff_ids = list((base.get("rootfs") or {}).get("diff_ids") or [])
        author = author if author is not None else base.get("author")
        return {
            "created": created,
            **({"author": author} if author else {}),
            "architecture": base.get("architecture") or go_arch(),
            "os": base.get("os") or "linux",
            "config": dict(section),
            "rootfs": {"type": "layers", "diff_ids": [*diff_ids, *([diff_id] if diff_id else [])]},
            "history": [*(base.get("history") or []), entry],
        }

    async def _cached(self, key: str) -> bool:
        """Take the step's image from the cache if it is there."""
        shared = self._shared
        assert self._image is not None
        if shared.options.nocache:
            return False
        hit = await shared.cache.find(self._image.id, key)
        if hit is None:
            return False
        shared.out.stream(" ---> Using cache\n")
        await self._advance(hit)
        return True

    async def _advance(self, image: ImageRecord) -> None:
        self._image = image
        self._config = json.loads(json.dumps(await self._shared.images.config(image)))
        self._shared.out.stream(f" ---> {image.id[:12]}\n")

    async def _store(self, image: ImageRecord, parent: ImageRecord, key: str) -> None:
        await self._shared.cache.record(image, parent.id, key)
        await self._advance(image)

    async def _commit_meta(
        self, created_by: str, section: Mapping[str, Any], author: str | None = None
    ) -> None:
        """A step that changes the config only: an image with the same layers."""
        key = created_by + "\n" + json.dumps(section, sort_keys=True)
        if await self._cached(key):
            return
        parent = self._image
        assert parent is not None
        new = self._next_config(section, created_by, None, author)
        raw = json.dumps(new, separators=(",", ":")).encode()
        image = await self._shared.images.commit(raw, parent.layers, parent=parent.id)
        await self._store(image, parent, key)

    # --- RUN -------------------------------------------------------------------------

    async def _run(self, ins: Instruction) -> None:
        shared = self._shared
        section = self._section
        argv = config.command_line(section, ins.value)
        if ins.heredocs and ins.value.strip().startswith("<<"):
            shell = section.get("Shell") or config.DEFAULT_SHELL
            argv = [*shell, ins.heredocs[0].content]
        declared = sorted((k, v) for k, v in self._args.items() if v is not None)
        created_by = config.declared_args(declared) + " ".join(argv)
        if await self._cached(created_by):
            return
        env = list(section.get("Env") or [])
        named = {e.partition("=")[0] for e in env}
        env += [f"{k}={v}" for k, v in declared if k not in named]
        env += [
            f"{k}={v}"
            for k, v in shared.options.build_args.items()
            if k in shared.proxy_args and k not in named and k not in self._args
        ]
        parent = self._image
        assert parent is not None
        working = shared.working
        record = await working.create(parent, section, argv, env, shared.options.run)
        shared.out.stream(f" ---> Running in {record.id[:12]}\n")
        try:
            code = await working.run(
                record, lambda data: shared.out.stream(data.decode(errors="replace"))
            )
            if code != 0:
                raise BuildFailed(
                    f"The command '{' '.join(argv)}' returned a non-zero code: {code}", code
                )
            image = await working.commit(
                record, parent, lambda diff: self._next_config(section, created_by, diff, None)
            )
        finally:
            if shared.options.remove:
                await working.remove(record)
        if shared.options.remove:
            shared.out.stream(f"Removing intermediate container {record.id[:12]}\n")
        await self._store(image, parent, created_by)

    # --- COPY / ADD ------------------------------------------------------------------

    async def _copy(self, ins: Instruction) -> None:
        shared = self._shared
        unknown = set(ins.flags) - _COPY_FLAGS[ins.command]
        if unknown:
            raise InvalidArgument(f"Unknown flag: {sorted(unknown)[0]}")
        env = self._env
        args = config.json_words(ins.value) or words.split(ins.value, env)
        if len(args) < 2:
            raise InvalidArgument(f"{ins.command} requires at least two arguments")
        *patterns, dest = args
        heredocs = {f"<<{d.name}": d for d in ins.heredocs}
        workdir = self._section.get("WorkingDir") or "/"
        dest_path = posixpath.join(workdir, dest) + (
            "/" if dest.endswith("/") and dest != "/" else ""
        )
        chown = words.expand(ins.flags.get("chown", ""), env)
        chmod = ins.flags.get("chmod", "")
        try:
            mode = int(chmod, 8) if chmod else None
        except ValueError:
            raise InvalidArgument(f"invalid chmod {chmod!r}: use octal digits") from None
        async with self._source_root(ins.flags.get("from", "")) as root:
            locals_ = [p for p in patterns if p not in heredocs and not _is_url(p, ins.command)]
            sources = await shared.io(context.find_sources, root, locals_)
            for url in (p for p in patterns if _is_url(p, ins.command)):
                sources.append(await self._download(url))
            docs = [heredocs[p] for p in patterns if p in heredocs]
            many = len(patterns) > 1 or any(set("*?[") & set(p) for p in locals_)
            if many and not dest.endswith("/"):
                raise InvalidArgument(
                    f"When using {ins.command} with more than one source file, the destination "
                    "must be a directory and end with a /"
                )
            digest = await shared.io(context.source_digest, sources)
            digest += "".join(":" + d.content for d in docs)
            flags = "".join(f"--{k}={v} " for k, v in sorted(ins.flags.items()) if k != "from")
            created_by = config.nop(f"{ins.command} {flags}{digest} in {dest_path} ")
            if await self._cached(created_by):
                return
            parent = self._image
            assert parent is not None
            section = self._section
            working = shared.working
            record = await working.create(
                parent,
                section,
                ["/bin/sh", "-c", created_by.split(" -c ", 1)[1]],
                [],
                shared.options.run,
            )
            try:
                async with working.root(record) as rootfs:
                    copy = partial(
                        _copy_all,
                        rootfs,
                        sources,
                        docs=docs,
                        dest=dest_path,
                        chown=chown,
                        mode=mode,
                        extract=ins.command == "ADD",
                    )
                    await shared.io(copy)
                image = await working.commit(
                    record, parent, lambda diff: self._next_config(section, created_by, diff, None)
                )
            finally:
                await working.remove(record)
        await self._store(image, parent, created_by)

    @contextlib.asynccontextmanager
    async def _source_root(self, source: str) -> AsyncIterator[str]:
        """The context, or with ``--from`` the root of a stage's or an image's filesystem."""
        shared = self._shared
        if not source:
            yield shared.root
            return
        image = shared.built_names.get(source.lower())
        if image is None and source.isdigit():
            image = shared.built.get(int(source))
        if image is None:
            image = await self._base(source)
        record = await shared.working.create(image, {}, ["/bin/sh"], [], shared.options.run)
        try:
            async with shared.working.root(record) as root:
                yield root
        finally:
            await shared.working.remove(record)

    async def _download(self, url: str) -> context.Source:
        """ADD of a URL: fetched (treq), kept as a file named after the URL's last part."""
        shared = self._shared
        name = posixpath.basename(url.split("?", 1)[0].rstrip("/")) or "download"
        folder = await shared.io(_fresh_dir, shared.downloads)
        body = await shared.downloader.fetch(url)
        try:
            await shared.io(_save, body, os.path.join(folder, name))
        finally:
            body.close()
        return context.Source(folder, name, False)


def _is_url(text: str, command: str) -> bool:
    return command == "ADD" and text.startswith(("http://", "https://"))


def _fresh_dir(parent: str) -> str:
    return tempfile.mkdtemp(prefix="add-", dir=parent)


def _save(body: Any, path: str) -> None:
    with open(path, "wb") as f:
        while chunk := body.read(1 << 20):
            f.write(chunk)
    os.chmod(path, 0o600)


def _copy_all(
    rootfs: str,
    sources: list[context.Source],
    *,
    docs: list[Any],
    dest: str,
    chown: str,
    mode: int | None,
    extract: bool,
) -> None:
    """Write the sources into ``rootfs`` at ``dest`` as Docker's COPY/ADD do (blocking)."""
    owner = None
    if chown:
        user, _, group = chown.partition(":")
        owner = context.lookup_ids(rootfs, user, group)
    into_dir = dest.endswith("/") or context.is_dir_in(rootfs, dest)
    for source in sources:
        if extract and context.is_archive(source):
            context.extract_archive(source, rootfs, dest, owner=owner)
        elif source.is_dir:
            context.copy_source(source, rootfs, dest, owner=owner, mode=mode)
        else:
            base = posixpath.basename(source.path)
            target = posixpath.join(dest, base) if into_dir else dest
            context.copy_source(source, rootfs, target, owner=owner, mode=mode)
    for doc in docs:
        target = posixpath.join(dest, doc.name) if into_dir else dest
        context.write_file(rootfs, target, doc.content.encode(), owner=owner, mode=mode)
