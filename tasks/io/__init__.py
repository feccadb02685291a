"""The I/O shelf every stage stands on: plain functions, no Prefect.

- ``uris``: one way to tell a local path from an fsspec URL and to normalise, join and walk both;
- ``files``: hashing a file and writing one atomically;
- ``items`` / ``sources`` / ``layouts``: what to ingest (files, folders, globs, URLs; DAVIS,
  YouTube-VOS, VIP, JHMDB and plain frame folders, by their defining files);
- ``images`` / ``frame_files``: one image decoded as a viewer shows it, and a frame folder read
  in order (frames, masks, keypoints, numbering);
- ``ffmpeg``: probing with PyAV, decoding and encoding with ffmpeg;
- ``store`` / ``shards`` / ``stamp``: the Zarr frame store (open, catalog, locks, fingerprint),
  its sharded frame arrays (writer and direct reader), and its validation stamp;
- ``lineage``: append-only lineage records and the code version they carry.
"""
