"""``podman image tree``: an image's layers, or every image built on them, as text.

Podman's ``GET /libpod/images/{name}/tree`` answers ``{"Tree": text}`` with the text
libimage's ``Image.Tree`` prints (common 0.50, Podman 4.3.1): a header (ID, tags,
size), then the layers drawn with ``gotree``.  Layers are identified as
containers/image's storage destination names them: the bottom layer by its diff ID,
each layer above by ``sha256(parent ID + "+" + diff ID)`` -- so images sharing
layers share nodes, and a pulled image shows the IDs Podman shows.  Sizes are
``go-units``' ``HumanSizeWithPrecision(size, 4)``.
"""

import hashlib
from collections.abc import Sequence
from typing import Protocol

from attrs import define, field

from podapi.engine.state.images import ImageRecord

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_MIDDLE, _LAST, _CONTINUE, _EMPTY = "├── ", "└── ", "│   ", "    "


class ImageSource(Protocol):
    """What the tree reads of the image store (:class:`~podapi.engine.images.ImageService`)."""

    async def all(self) -> list[ImageRecord]:
        """Every image, oldest first."""

    async def layer_size_map(self, diff_ids: set[str]) -> dict[str, int]:
        """Uncompressed size of each of these layers."""


@define(eq=False)
class _Node:
    """A layer: its storage ID, size, parent, children (first seen first) and the
    images whose top layer it is."""

    layer_id: str
    size: int
    parent: "_Node | None"
    children: list["_Node"] = field(factory=list)
    images: list[ImageRecord] = field(factory=list)


@define(eq=False)
class _Tree:
    """A ``gotree`` tree: a text and its items."""

    text: str
    items: list["_Tree"] = field(factory=list)

    def add(self, text: str) -> "_Tree":
        item = _Tree(text)
        self.items.append(item)
        return item

    def print(self) -> str:
        """``gotree``'s ``Print``: the text, then the items drawn below it."""
        return self.text + "\n" + _print_items(self.items, [])


def _print_items(items: Sequence[_Tree], spaces: list[bool]) -> str:
    out = ""
    for index, item in enumerate(items):
        last = index == len(items) - 1
        indent = "".join(_EMPTY if space else _CONTINUE for space in spaces)
        first, *rest = item.text.split("\n")
        out += indent + (_LAST if last else _MIDDLE) + first + "\n"
        for line in rest:  # a text's further lines hang under its first
            out += indent + (_EMPTY if last else _CONTINUE) + line + "\n"
        if item.items:
            out += _print_items(item.items, [*spaces, last])
    return out


def human_size(size: float) -> str:
    """``go-units`` ``HumanSizeWithPrecision(size, 4)``: decimal units, 4 digits."""
    unit = 0
    while size >= 1000 and unit < len(_UNITS) - 1:
        size /= 1000
        unit += 1
    return f"{size:.4g}{_UNITS[unit]}"


def layer_ids(diff_ids: Sequence[str]) -> list[str]:
    """The storage IDs of an image's layers, bottom first (containers/image's chain)."""
    ids: list[str] = []
    for diff_id in diff_ids:
        hex_id = diff_id.split(":", 1)[-1]
        ids.append(hashlib.sha256(f"{ids[-1]}+{hex_id}".encode()).hexdigest() if ids else hex_id)
    return ids


def repo_tags(image: ImageRecord) -> list[str]:
    """libimage ``RepoTags``: the image's names that are tags (not digests)."""
    return [name for name in image.names if "@" not in name]


def _go_list(items: Sequence[str]) -> str:
    """A Go slice as ``%s`` prints it: ``[a b]``."""
    return "[" + " ".join(items) + "]"


def _layer_text(node: _Node) -> str:
    tags: list[str] = []
    for image in node.images:
        tags.extend(tag for tag in repo_tags(image) if tag not in tags)
    top = f" Top Layer of: {_go_list(tags)}" if tags else ""
    return f"ID: {node.layer_id[:12]} Size: {human_size(node.size):>7}{top}"


def _graph(all_images: Sequence[ImageRecord], sizes: dict[str, int]) -> dict[str, _Node]:
    """Every layer of every image as a node, keyed by storage ID."""
    nodes: dict[str, _Node] = {}
    for image in all_images:
        parent: _Node | None = None
        for diff_id, layer_id in zip(image.layers, layer_ids(image.layers), strict=True):
            node = nodes.get(layer_id)
            if node is None:
                node = nodes[layer_id] = _Node(layer_id, sizes.get(diff_id, 0), parent)
                if parent is not None:
                    parent.children.append(node)
            parent = node
        if parent is not None:
            parent.images.append(image)
    return nodes


def _add_children(node: _Node, parent: _Tree) -> None:
    """libimage ``imageTreeTraverseChildren``: a layer with no siblings continues its
    parent's list; siblings each open a branch."""
    text = _layer_text(node)
    if node.parent is None or len(node.parent.children) <= 1:
        parent.add(text)
        branch = parent
    else:
        branch = parent.add(text)
    for child in node.children:
        _add_children(child, branch)


async def image_tree(images: ImageSource, image: ImageRecord, *, what_requires: bool) -> str:
    """The text of ``podman image tree [--whatrequires] IMAGE``.

    :param what_requires: draw the layers of every image built on this one's top
        layer, rather than this image's own layers.
    """
    everything = await images.all()
    diff_ids = {diff_id for each in everything for diff_id in each.layers}
    nodes = _graph(everything, await images.layer_size_map(diff_ids))
    header = (
        f"Image ID: {image.id[:12]}\n"
        f"Tags:     {_go_list(repo_tags(image))}\n"
        f"Size:     {human_size(image.size)}\n"
        + ("Image Layers" if image.layers else "No Image Layers")
    )
    top = nodes.get(layer_ids(image.layers)[-1]) if image.layers else None
    tree = _Tree(header)
    if what_requires:
        if top is not None:
            _add_children(top, tree)
        return tree.print()
    chain: list[_Node] = []
    while top is not None:
        chain.append(top)
        top = top.parent
    for node in reversed(chain):
        tree.add(_layer_text(node))
    return tree.print()
