"""Frame-folder dataset layouts, recognised by their defining files, never by a folder name alone.

Each sequence becomes one frame-folder video (docs/ingest.md, "Dataset layouts"):
- **DAVIS-2016/2017**: ``JPEGImages/`` with ``ImageSets/`` (split lists: ``ImageSets/2017/*.txt``
  one name a line, or DAVIS-2016's ``ImageSets/480p/*.txt`` path pairs) or a resolution folder
  (``JPEGImages/{480p,Full-Resolution,1080p}/<seq>``); ``Annotations/[<res>/]<seq>/*.png``.
- **YouTube-VOS**: ``meta.json`` beside ``JPEGImages/<video>/`` and ``Annotations/<video>/``.
  The split is the tree's folder name (``train``, ``valid``, ``test``, ``*_all_frames``);
  ``train`` masks hold every object (``complete``), ``valid`` and ``test`` masks only the objects
  that first appear in that frame (``first_appearance``: 0 there does not mean background).
  Frames and annotations come every 5th frame; object ids need not start at 1 nor be in order.
- **VIP**: ``Images/<video>/`` with ``Annotations/Category_ids/<video>/`` (split lists
  ``lists/<split>_videos.txt``).
- **JHMDB**: ``Rename_Images/<action>/<video>/`` with ``joint_positions/<action>/<video>/
  joint_positions.mat`` (split lists ``splits/<action>_test_split1.txt``: 1 train, 2 test).
- A ``JPEGImages/`` tree with none of these files: labelled frame folders (layout ``folder``).
- A plain folder of two or more image files (``frame_folder``; the source walk decides).

Annotation files whose frame the folder lacks are listed on the item (``orphan_annotations``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable

from storage_schemas.records import SourceKind
from tasks.io.frame_files import JHMDB_MAT
from tasks.io.images import LayoutError
from tasks.io.items import SourceItem, is_image, video_id_for

__all__ = ["LayoutError", "detect", "frame_folders", "natural_key"]

DAVIS_RESOLUTIONS = ("480p", "Full-Resolution", "1080p")
YTVOS_META = "meta.json"
# DAVIS split lists that are unions of others: a sequence they name is in a more specific list too.
UNION_SPLITS = frozenset({"trainval", "all"})
_PREFIXED = re.compile(r"(.*?)(\d+)")
# YouTube-VOS split (from the tree's folder name) → what an annotated frame's mask holds.
YTVOS_SEMANTICS = {"train": "complete", "valid": "first_appearance", "test": "first_appearance"}


# A note about a dataset tree's entry that is not ingested: (uri, why, whether it counts toward
# the run's exit status as something the person may have meant to ingest).
LeftOut = Callable[[str, str, bool], None]


def detect(fs, root: str, top: str, to_uri: Callable[[str], str], left_out: LeftOut | None = None) -> list[SourceItem] | None:
    """Items for ``root`` if its defining files make it a dataset layout, else None (keep walking).
    What the layout names but does not ingest goes to ``left_out``: another resolution of a
    DAVIS tree, a sequence its split lists or meta.json name that the tree lacks."""
    names = {os.path.basename(p.rstrip("/")): p for p in fs.ls(root, detail=False)}
    left_out = left_out or (lambda uri, why, counts: None)

    def folder(*parts: str) -> bool:
        return fs.isdir("/".join([root.rstrip("/"), *parts]))

    if folder("JPEGImages"):
        if YTVOS_META in names and not fs.isdir(names[YTVOS_META]):
            return _youtube_vos(fs, root, to_uri, left_out)
        resolutions = [r for r in DAVIS_RESOLUTIONS if folder("JPEGImages", r)]
        if resolutions or folder("ImageSets"):
            for other in resolutions[1:]:
                left_out(to_uri(f"{root.rstrip('/')}/JPEGImages/{other}"),
                         f"DAVIS {other} beside {resolutions[0]}: not ingested (vmac reads one resolution of a tree, "
                         f"{resolutions[0]}, as davis2017-evaluation does by default; a tree holding only {other} "
                         "is read at it)", False)
            return _davis(fs, root, resolutions[0] if resolutions else None, to_uri, left_out)
        return _sequences(fs, root, None, "folder", to_uri)
    if folder("Images") and folder("Annotations", "Category_ids"):
        return _vip(fs, root, to_uri)
    if folder("Rename_Images") and folder("joint_positions"):
        return _jhmdb(fs, root, to_uri)
    return None


def frame_folders(fs, root: str, top: str, to_uri: Callable[[str], str], images: list[str],
                  left_out: LeftOut) -> list[SourceItem]:
    """The frame-folder video of ``root``'s image files (``images``), in natural name order, with
    the JHMDB keypoints file it holds, if any; or one video per name prefix when every name is a
    prefix and a number and the prefixes differ (``left_0001.png``… beside ``right_0001.png``…:
    two sequences in one folder, whose numbers would interleave if merged). A prefix with a
    single file is left out as a single image."""
    rel = os.path.relpath(root, os.path.dirname(top.rstrip("/")))
    groups = _by_prefix(images)
    if len(groups) < 2:
        keypoints = f"{root.rstrip('/')}/{JHMDB_MAT}"
        keypoints = keypoints if fs.exists(keypoints) else None
        return [_frames_item(to_uri(root), rel, "jhmdb" if keypoints else "folder",
                             [to_uri(p) for p in sorted(images, key=natural_key)], [],
                             to_uri(keypoints) if keypoints else None)]
    out = []
    for prefix, files in groups.items():
        if len(files) < 2:
            left_out(to_uri(files[0]), f"a single image with the name prefix {prefix!r} (the folder's other "
                     "prefixes are sequences of their own)", False)
            continue
        # The source names the files it holds: the folder, then the prefix and its numbers.
        uri = f"{to_uri(root).rstrip('/')}/{prefix}[0-9]*"
        out.append(_frames_item(uri, f"{rel}/{prefix or 'numbered'}", "folder",
                                [to_uri(p) for p in sorted(files, key=natural_key)], [], None))
    return out


def _by_prefix(images: list[str]) -> dict[str, list[str]]:
    """Name prefix → its files, when every name is a prefix and a number (``img_12.png``: ``img_``);
    {} when a name carries no number (then the folder is one sequence in name order)."""
    groups: dict[str, list[str]] = {}
    for path in images:
        found = _PREFIXED.fullmatch(os.path.splitext(os.path.basename(path))[0])
        if found is None:
            return {}
        groups.setdefault(found[1], []).append(path)
    return dict(sorted(groups.items()))


def _frames_item(uri, name, layout, frames, masks, keypoints, split=None, **labels) -> SourceItem:
    return SourceItem(
        uri=uri,
        video_id=video_id_for(f"{layout}/{name}" if layout != "folder" else name, uri),
        kind=SourceKind.frames,
        layout=layout,
        frame_uris=tuple(frames),
        mask_uris=tuple(masks),
        keypoints_uri=keypoints,
        split=split,
        **labels,
    )


def natural_key(path: str) -> tuple:
    """Sort key of a file name in natural order: ``2.png`` before ``10.png`` (numbers compare as
    numbers), so unpadded frame names keep their time order."""
    parts = re.split(r"(\d+)", os.path.basename(path.rstrip("/")))
    return tuple((0, int(part), part) if part.isdigit() else (1, part.lower(), part) for part in parts if part)


def _images_in(fs, folder: str) -> list[str]:
    if not fs.isdir(folder):
        return []
    return sorted((p for p in fs.ls(folder, detail=False) if is_image(p) and not os.path.basename(p).startswith(".")),
                  key=natural_key)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path.rstrip("/")))[0]


def _match_masks(frames: list[str], mask_files: list[str]) -> tuple[list[str | None], tuple[str, ...]]:
    """(the annotation file of each frame by file stem, or None; the names of annotation files
    whose frame is not in the folder)."""
    by_stem = {_stem(m): m for m in mask_files}
    frame_stems = {_stem(f) for f in frames}
    orphans = tuple(os.path.basename(m) for m in mask_files if _stem(m) not in frame_stems)
    return [by_stem.get(_stem(f)) for f in frames], orphans


def _subfolders(fs, folder: str) -> list[str]:
    return sorted(p for p in fs.ls(folder, detail=False) if fs.isdir(p)) if fs.isdir(folder) else []


def _sequences(fs, root: str, res: str | None, layout: str, to_uri,
               labels: Callable[[str], dict] | None = None) -> list[SourceItem]:
    """One item per ``JPEGImages/[<res>/]<seq>`` with its ``Annotations/[<res>/]<seq>`` masks;
    ``labels(seq)`` adds what the layout says about that sequence (its split lists, what its
    labels mean, notes)."""
    sub = f"/{res}" if res else ""
    out = []
    for seq_dir in _subfolders(fs, f"{root}/JPEGImages{sub}"):
        seq = os.path.basename(seq_dir.rstrip("/"))
        frames = _images_in(fs, seq_dir)
        if not frames:
            continue
        masks, orphans = _match_masks(frames, _images_in(fs, f"{root}/Annotations{sub}/{seq}"))
        out.append(_frames_item(to_uri(seq_dir), seq, layout, [to_uri(f) for f in frames],
                                [to_uri(m) if m else None for m in masks], None, orphan_annotations=orphans,
                                **(labels(seq) if labels else {})))
    return out


def _davis(fs, root: str, res: str | None, to_uri, left_out: LeftOut) -> list[SourceItem]:
    """DAVIS: each sequence with its split lists (``_davis_lists``); a sequence a list names that
    the tree lacks is left out, counted: a benchmark over that split would be missing it."""
    lists = _davis_lists(fs, root)
    sub = f"JPEGImages/{res}" if res else "JPEGImages"
    present = {os.path.basename(p.rstrip("/")) for p in _subfolders(fs, f"{root.rstrip('/')}/{sub}")}
    for split, (where, named) in lists.items():
        for seq in named:
            if seq not in present:
                left_out(to_uri(f"{root.rstrip('/')}/{sub}/{seq}"), f"named in {where} (split {split}), not in the "
                         "tree: its frames are missing", True)

    def labels(seq: str) -> dict:
        naming = [split for split, (_, named) in lists.items() if seq in named]
        # The most specific list: not a union of others (trainval), then the smallest.
        split = min(naming, key=lambda s: (s in UNION_SPLITS, len(lists[s][1]), s)) if naming else None
        return {"split": split, "splits": tuple(sorted(naming)), "dataset_splits": tuple(sorted(lists))}

    return _sequences(fs, root, res, "davis", to_uri, labels)


def _davis_lists(fs, root: str) -> dict[str, tuple[str, list[str]]]:
    """Split name → (its list file, the sequences it names) from ImageSets: ``2017/<split>.txt``
    (names), ``2016/<split>.txt``, DAVIS-2016's ``480p/<split>.txt`` ('/JPEGImages/480p/seq/00000.jpg
    /Annotations/…' path pairs, one a frame). A split the 2017 lists name is taken from them."""
    lists: dict[str, tuple[str, list[str]]] = {}
    for sub in ("2017", "2016", "480p"):
        for path in _text_files(fs, f"{root}/ImageSets/{sub}"):
            split = _stem(path)
            if split in lists:
                continue
            named = [line.split()[0].strip("/").split("/")[2] if line.startswith("/JPEGImages") else line
                     for line in _lines(fs, path)]
            lists[split] = (f"ImageSets/{sub}/{os.path.basename(path)}", list(dict.fromkeys(named)))
    return lists


def _text_files(fs, folder: str) -> list[str]:
    return sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".txt")) if fs.isdir(folder) else []


def _lines(fs, path: str) -> list[str]:
    """The non-blank lines of a list file, stripped; a UTF-8 byte-order mark and CRLF line ends
    (lists saved on Windows) are not part of any name."""
    text = fs.cat_file(path).decode("utf-8-sig", "replace")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _youtube_vos(fs, root: str, to_uri, left_out: LeftOut) -> list[SourceItem]:
    """YouTube-VOS: the sequences, each with its split, mask semantics and object categories. A
    video meta.json lists that the tree lacks is left out (counted); one the tree holds that
    meta.json does not list is ingested without categories, and its record says so."""
    try:
        meta = json.loads(fs.cat_file(f"{root.rstrip('/')}/{YTVOS_META}"))
        videos = meta["videos"]
        if not isinstance(videos, dict):
            raise TypeError("'videos' is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        return [SourceItem(uri=to_uri(root), video_id=video_id_for(os.path.basename(root.rstrip("/")), to_uri(root)),
                           kind=SourceKind.frames, layout="youtube-vos",
                           error=f"{YTVOS_META} beside JPEGImages/ is not YouTube-VOS's ({exc})")]
    split = _ytvos_split(os.path.basename(root.rstrip("/")))

    def labels(seq: str) -> dict:
        objects = (videos.get(seq) or {}).get("objects") or {}
        categories = tuple(sorted((int(k), str(v.get("category", ""))) for k, v in objects.items()
                                  if str(k).isdigit() and isinstance(v, dict)))
        notes = () if seq in videos else (f"not in {YTVOS_META}: no object categories",)
        return {"mask_semantics": YTVOS_SEMANTICS.get(split), "object_categories": categories, "split": split,
                "splits": (split,), "notes": notes}

    if split:
        present = {os.path.basename(p.rstrip("/")) for p in _subfolders(fs, f"{root.rstrip('/')}/JPEGImages")}
        for video in sorted(set(videos) - present):
            left_out(to_uri(f"{root.rstrip('/')}/JPEGImages/{video}"),
                     f"listed in {YTVOS_META}, not in the tree: its frames are missing", True)
    return _sequences(fs, root, None, "youtube-vos", to_uri, labels) if split else [
        SourceItem(uri=to_uri(root), video_id=video_id_for(os.path.basename(root.rstrip("/")), to_uri(root)),
                   kind=SourceKind.frames, layout="youtube-vos",
                   error=f"a YouTube-VOS tree ({YTVOS_META}) in a folder named {os.path.basename(root.rstrip('/'))!r}: "
                         "its split (train, valid or test) decides what its masks mean; keep the official folder name")]


def _ytvos_split(folder_name: str) -> str | None:
    """train, valid or test from the words of the tree's folder name (``train``, ``valid_all_frames``,
    ``ytvos2018-val``); None when none of them is there."""
    words = set(re.split(r"[^a-z]+", folder_name.lower()))
    for split, names in (("train", {"train"}), ("valid", {"valid", "val"}), ("test", {"test"})):
        if words & names:
            return split
    return None


def _vip(fs, root: str, to_uri) -> list[SourceItem]:
    splits = {video: _stem(path).removesuffix("_videos") for path in _text_files(fs, f"{root}/lists")
              for video in _lines(fs, path)}
    out = []
    for video_dir in _subfolders(fs, f"{root}/Images"):
        video = os.path.basename(video_dir.rstrip("/"))
        frames = _images_in(fs, video_dir)
        if not frames:
            continue
        masks, orphans = _match_masks(frames, _images_in(fs, f"{root}/Annotations/Category_ids/{video}"))
        out.append(_frames_item(to_uri(video_dir), video, "vip", [to_uri(f) for f in frames],
                                [to_uri(m) if m else None for m in masks], None, splits.get(video),
                                orphan_annotations=orphans))
    return out


def _jhmdb_splits(fs, root: str) -> dict[tuple[str, str], str]:
    """(action, video) → train or test from ``splits/<action>_test_split1.txt`` ('<video>.avi 1|2')."""
    out = {}
    for path in _text_files(fs, f"{root}/splits"):
        name = _stem(path)
        if not name.endswith("_test_split1"):
            continue
        for line in _lines(fs, path):
            video, _, flag = line.partition(" ")
            out[(name.removesuffix("_test_split1"), _stem(video))] = {"1": "train", "2": "test"}.get(flag.strip())
    return out


def _jhmdb(fs, root: str, to_uri) -> list[SourceItem]:
    splits = _jhmdb_splits(fs, root)
    out = []
    for action_dir in _subfolders(fs, f"{root}/Rename_Images"):
        action = os.path.basename(action_dir.rstrip("/"))
        for video_dir in _subfolders(fs, action_dir):
            video = os.path.basename(video_dir.rstrip("/"))
            frames = _images_in(fs, video_dir)
            if not frames:
                continue
            mat = f"{root}/joint_positions/{action}/{video}/{JHMDB_MAT}"
            keypoints = to_uri(mat) if fs.exists(mat) else None
            out.append(_frames_item(to_uri(video_dir), f"{action}/{video}", "jhmdb", [to_uri(f) for f in frames], [],
                                    keypoints, splits.get((action, video))))
    return out
