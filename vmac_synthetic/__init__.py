"""Procedural video scenes with exact labels: the renderer behind the embedded sample.

Not part of the method: a seeded numpy generator of test data, with no file I/O
(``tasks/sample/write.py`` writes the sample's files). A clip is textured rigid objects moving
over a textured background seen by a panning, zooming, slightly rolling camera; a "figure"
clip adds an articulated puppet with JHMDB keypoints and VIP part classes.

Modules: ``spec`` (what determines a clip, the sample's clip table, label vocabularies),
``textures``, ``motion`` (wanders and the camera), ``objects`` (rigid objects), ``figure``
(the puppet), ``raster`` (pixel grid and compositing), ``scene`` (assembly and rendering).

Conventions
- Scene units: origin at the frame centre, x right, y down, 1 unit = the frame height. Pixel
  (i, j) of an H×W raster samples the scene at its centre, x = (j + 0.5 - W/2) / H,
  y = (i + 0.5 - H/2) / H. Every scene parameter is drawn in these units before the raster
  size is looked at, so one spec rendered at another size of the same aspect (the DAVIS 480p
  export) is the same scene at another resolution, and a narrower aspect is a centre crop.
- Time: frame t is at t / fps seconds; speeds are per second, so fps changes sampling only.
- Keypoints: pixel coordinates with pixel (i, j)'s centre at (x=j, y=i), i.e. 0-based.
- Same spec → byte-identical arrays: one ``np.random.default_rng(spec.seed)`` stream, consumed
  in a fixed order, and only deterministic numpy operations (on one machine; libm ``sin`` may
  differ in the last ulp across CPUs, which can flip a hard edge pixel). ``GENERATOR_VERSION``
  changes whenever a change alters any rendered byte for an unchanged spec.
"""

from vmac_synthetic.scene import SyntheticClip, render_background, render_clip
from vmac_synthetic.spec import (
    CLIP_KINDS,
    FIGURE_ACTIONS,
    GENERATOR_VERSION,
    JOINT_NAMES,
    PART_CLASSES,
    ClipSpec,
    default_sample_specs,
)

__all__ = [
    "CLIP_KINDS",
    "FIGURE_ACTIONS",
    "GENERATOR_VERSION",
    "JOINT_NAMES",
    "PART_CLASSES",
    "ClipSpec",
    "SyntheticClip",
    "default_sample_specs",
    "render_background",
    "render_clip",
]
