"""What a file is before any decode: local regular files only, single-file demuxers only.

vmac decodes only the bytes it hashed. Its own opens (PyAV, ``open_container``) read the file
through a Python file object with every protocol refused, so a demuxer that would open other
files (an HLS playlist's segments, a concat list's entries, a reference movie's media) cannot;
playlists and lists are refused by name from their first bytes (``refuse_lists``), and demuxers of
image sequences, manifests, disc folders, still images and text art are refused by their names
(``check_format``). ffmpeg's own decode then reads the file with the demuxer PyAV found and the
``file`` protocol alone (``tasks.io.ffmpeg``).
"""

from __future__ import annotations

import struct

import av

from tasks.io.ffmpeg_binary import binary_demuxer
from tasks.io.files import not_regular_reason


class VideoError(RuntimeError):
    """A source that cannot be decoded; the message is the one-line reason stored in the catalog."""


# Demuxers that read files other than the one named (playlists, concat lists, image sequences,
# manifests, disc folders) or run scripts: the bytes they decode are not the bytes vmac hashed.
MULTI_FILE_FORMATS = frozenset({
    "hls", "applehttp", "dash", "concat", "image2", "imf", "webm_dash_manifest", "dvdvideo", "avisynth",
    "vapoursynth", "lavfi", "sdp", "rtp", "rtsp", "srtp",
})
# Demuxers that render text as pictures (ANSI art, .nfo and .txt files): not videos.
TEXT_ART_FORMATS = frozenset({"tty", "bin", "xbin", "adf", "idf"})
# What vmac's own opens allow a demuxer to open besides the file it was handed: nothing. ffmpeg's
# decode gets ``file`` alone, and the demuxer the probe found (tasks.io.ffmpeg).
CLOSED_OPTIONS = {"protocol_whitelist": "none"}
def open_container(path: str, container_format: str | None = None, probesize: int | None = None, handle=None):
    """``av.open`` of a regular local file (or an open binary ``handle``, e.g. an fsspec file),
    read through a Python file object with every protocol refused: a demuxer that would open other
    files (a playlist's segments, a list's entries, a reference movie's media) cannot, so nothing
    is read but the file named. Raises VideoError for anything but a regular file (a FIFO or a
    device would block or never end)."""
    if handle is None:
        problem = not_regular_reason(path)
        if problem:
            raise VideoError(f"not a regular file ({problem})")
        handle = open(path, "rb")
    options = dict(CLOSED_OPTIONS, probesize=str(probesize)) if probesize else CLOSED_OPTIONS
    try:
        return av.open(handle, format=container_format, options=options, metadata_errors="ignore")
    except BaseException:
        handle.close()
        raise


def check_format(name: str) -> None:
    """Refuse demuxers that read other files, still images and text art, in the field's words."""
    names = set(name.split(","))
    if names & MULTI_FILE_FORMATS:
        raise VideoError(f"a {name} file reads other files (a playlist, list or image sequence): vmac decodes only "
                         "bytes it hashed; ingest the media files it names instead")
    if names & TEXT_ART_FORMATS:
        raise VideoError(f"text rendered as pictures ({name} demuxer), not a video")
    if any(n.endswith("_pipe") for n in names):
        raise VideoError(f"a still image ({name}), not a video: put frames in a folder to ingest a frame folder")


# Text files that name other files for a demuxer to read, told by their first bytes.
_LIST_MARKERS = ((b"#EXTM3U", "an HLS playlist (m3u8)"), (b"ffconcat version", "an ffconcat list"),
                 (b"<MPD", "a DASH manifest (mpd)"), (b"[playlist]", "a PLS playlist"))


def list_kind(head: bytes) -> str | None:
    """What a file whose first bytes are ``head`` is, when it is a playlist or list of other files."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:64]
    return next((kind for marker, kind in _LIST_MARKERS if start.startswith(marker) or
                 (marker == b"<MPD" and start.startswith(b"<?xml") and marker in head[:4096])), None)


def refuse_lists(path: str) -> None:
    """VideoError for a playlist or list of files, named as what it is."""
    if not_regular_reason(path):
        return  # open_container says what it is
    with open(path, "rb") as handle:
        kind = list_kind(handle.read(4096))
    if kind:
        raise VideoError(f"{kind} reads other files: vmac decodes only bytes it hashed; ingest the media files it "
                         "names instead")


def check_still(path: str, name: str) -> None:
    """``check_format`` for a file PyAV reads as a still image, unless the ffmpeg binary (which may be
    newer) reads it as an animation PyAV cannot: then the reason says so."""
    try:
        check_format(name)
    except VideoError:
        found = binary_demuxer(path)
        if found and found != name and not any(n.endswith("_pipe") for n in found.split(",")) and found != "image2":
            raise VideoError(f"an animated image ({found}) that this build's PyAV reads as a still ({name}): vmac "
                             "cannot count its frames; convert it first (ffmpeg -i FILE out.mkv)") from None
        raise


def mp4_without_index(path: str, most_boxes: int = 1000) -> bool:
    """True for an ISO BMFF file (MP4, MOV) with a media box but no ``moov``: its top-level boxes
    (size, type) read without their contents, at most ``most_boxes`` of them."""
    found: set[bytes] = set()
    with open(path, "rb") as handle:
        for _ in range(most_boxes):
            header = handle.read(8)
            if len(header) < 8:
                break
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                large = handle.read(8)
                size = struct.unpack(">Q", large)[0] - 8 if len(large) == 8 else 0
            found.add(kind)
            if size == 0 or size < 8:
                break
            handle.seek(size - 8, 1)
    return b"ftyp" in found and b"mdat" in found and b"moov" not in found


def one_line(text) -> str:
    """The last non-empty line of an error text, trimmed: catalog reasons are one line."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
