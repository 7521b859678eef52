"""``docker build``: a Dockerfile's stages run step by step, with the layer cache.

Docker's classic builder (moby ``builder/dockerfile``) is the model: every
instruction is one step and makes one image whose parent is the image before
(a config-only image, ``empty_layer`` in its history, for the metadata
instructions); a step first looks for the image it made before on the same
parent with the same key (:mod:`.cache`) and, found, says ``Using cache``
and makes nothing.  RUN runs in a working container (:mod:`.steps`), COPY and
ADD write into one; its upper directory is the step's layer.  The output is
Docker's: ``Step N/M : ...``, `` ---> Running in ...``, the RUN's output as it
comes, `` ---> <id>``, ``Successfully built``/``tagged``.
"""

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import BinaryIO

from attrs import frozen

from podapi.engine.distribution import Distribution
from podapi.engine.imagebuild import context, dockerfile, words
from podapi.engine.imagebuild.cache import BuildCache
from podapi.engine.imagebuild.dockerfile import Dockerfile, Stage
from podapi.engine.imagebuild.options import BuildFailed, BuildOptions, BuildOutput
from podapi.engine.imagebuild.stage import StageContext, StageRun, arg_pairs
from podapi.engine.imagebuild.steps import WorkingContainers
from podapi.engine.images import ImageService
from podapi.engine.state.images import ImageRecord
from podapi.errors import InvalidArgument
from podapi.storage.registry import UrlDownloader
from podapi.threads import Blocking

#: Build args every build knows without an ``ARG`` (moby ``builtinAllowedBuildArgs``).
PROXY_ARGS = frozenset(
    {
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    }
)


@frozen
class BuildResult:
    """The image built and the names it was given."""

    image: ImageRecord
    tags: tuple[str, ...]


def _selected(parsed: Dockerfile, target: str) -> tuple[Stage, ...]:
    if not target:
        return parsed.stages
    for stage in parsed.stages:
        if stage.name == target.lower():
            return parsed.stages[: stage.index + 1]
    raise InvalidArgument(f"failed to reach build target {target} in Dockerfile")


class Builder:
    """Builds images from a context tar.

    :param work_dir: where contexts are unpacked (one private directory per build).
    """

    def __init__(
        self,
        *,
        images: ImageService,
        distribution: Distribution,
        working: WorkingContainers,
        cache: BuildCache,
        downloader: UrlDownloader,
        io: Blocking,
        work_dir: str,
        now_ns: Callable[[], int],
    ) -> None:
        self._images = images
        self._distribution = distribution
        self._working = working
        self._cache = cache
        self._downloader = downloader
        self._io = io
        self._work_dir = work_dir
        self._now_ns = now_ns

    async def build(
        self, context_tar: BinaryIO, options: BuildOptions, out: BuildOutput
    ) -> BuildResult:
        """Unpack the context, run the Dockerfile's stages, tag the last image.

        :raises InvalidArgument: a bad context tar or Dockerfile (before any step).
        :raises BuildFailed: a step failed (``code``: a RUN's exit status).
        """
        top = await self._io(tempfile.mkdtemp, prefix="build-", dir=self._work_dir)
        try:
            root = os.path.join(top, "context")
            await self._io(os.mkdir, root)
            await self._io(context.extract_context, context_tar, root)
            _, text = await self._io(context.read_dockerfile, root, options.dockerfile)
            await self._io(context.apply_dockerignore, root)
            parsed = dockerfile.parse(text)
            stages = _selected(parsed, options.target)
            shared = StageContext(
                images=self._images,
                distribution=self._distribution,
                working=self._working,
                cache=self._cache,
                downloader=self._downloader,
                io=self._io,
                now_ns=self._now_ns,
                root=root,
                downloads=top,
                options=options,
                out=_Quiet(out, options.quiet),
                total=sum(1 + len(s.instructions) for s in stages),
                meta_args=_meta_args(parsed, options),
                proxy_args=PROXY_ARGS,
            )
            image: ImageRecord | None = None
            for stage in stages:
                labels = options.labels if stage is stages[-1] else {}
                image = await StageRun(shared, stage, labels=labels).run()
                shared.built[stage.index] = image
                if stage.name:
                    shared.built_names[stage.name] = image
            assert image is not None
            unused = sorted(set(options.build_args) - shared.used_args - PROXY_ARGS)
            if unused:
                shared.out.stream(
                    f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n"
                )
        finally:
            await self._io(shutil.rmtree, top, True)
        await self._cache.mark_result(image)
        for name in options.tags:
            await self._images.tag(image, name)
        out.built(image.id, options.tags)
        return BuildResult(await self._images.get(image.id), options.tags)


class _Quiet:
    """The steps' output, or with ``q=1`` none (the encoder still reports the image)."""

    def __init__(self, out: BuildOutput, quiet: bool) -> None:
        self._out = out
        self._quiet = quiet

    def stream(self, text: str) -> None:
        if not self._quiet:
            self._out.stream(text)

    def built(self, image_id: str, tags: tuple[str, ...]) -> None:
        self._out.built(image_id, tags)


def _meta_args(parsed: Dockerfile, options: BuildOptions) -> dict[str, str | None]:
    """The ARGs before the first FROM: defaults expanded, overridden by build args."""
    values: dict[str, str | None] = {}
    for ins in parsed.meta_args:
        for name, default in arg_pairs(ins.value):
            if name in options.build_args:
                values[name] = options.build_args[name]
            elif default is not None:
                known = {k: v for k, v in values.items() if v is not None}
                values[name] = words.expand(default, known)
            else:
                values[name] = None
    return values


__all__ = ["BuildFailed", "BuildOptions", "BuildOutput", "BuildResult", "Builder"]
