"""Label propagation with frozen features, in the CRW protocol.

Jabri et al. 2020, "Space-Time Correspondence as a Contrastive Random Walk" (ajabri/videowalk,
``test.py`` and ``utils/test_utils.py``), which VideoMAC and SiamMAE use to score DAVIS-2017, VIP
and JHMDB. For every target frame t >= 1:

* features are L2-normalised over channels;
* the context is a long-term memory (frame 0 with its given labels) plus a short-term memory of the
  previous ``context`` frames with their predicted soft labels;
* the affinity of a target site to a short-term site is its cosine similarity, kept only if the two
  sites are closer than ``radius`` feature cells (Euclidean, strict ``<`` as CRW's
  ``MaskedAttention``); the long-term frame is compared with every site, as in CRW, unless
  ``restrict_first_frame``;
* the ``topk`` largest affinities over the whole context are softmaxed with ``temperature`` and used
  to average the context labels.

Memory is bounded whatever the sequence length: frames come from an iterator and at most
``context + 1`` are kept. The radius restriction is blockwise (``tile x tile`` target tiles against
the window of context sites that can be within the radius, then a disk mask), and the top-k is
exact and two-staged (:func:`_two_stage_topk`), so at most ``_CHUNK_BYTES`` (16 MiB) of scores are
alive at once, plus frame 0 against ``_GLOBAL_QUERIES`` target sites (docs/evaluate.md has sizes).

Labels reach and leave the feature grid through ``vmac_core.label_grid`` (one-hot area averages,
keypoint heatmaps, bilinear upsampling), whose coordinate convention is CRW's: a feature cell sits
at the centre of the pixel block it covers.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vmac_core.propagation_config import PropagationConfig


def window_half_width(radius: float) -> int:
    """Largest |dy| (or |dx|) with dy^2 + dx^2 < radius^2 for integer offsets."""
    return max(math.ceil(radius) - 1, 0)


def _disk_mask_tile(tile: int, half: int, radius: float, device: torch.device) -> torch.Tensor:
    """Which window sites are within the radius of which tile sites.

    Returns a bool tensor (tile*tile, R*R), R = tile + 2*half: entry [i*tile + j, a*R + b]
    says whether window site (a, b) is within ``radius`` of tile site (i, j); window site
    (a, b) sits at offset (a - half - i, b - half - j) from the tile site.
    """
    r_win = tile + 2 * half
    ti = torch.arange(tile, device=device)
    wa = torch.arange(r_win, device=device)
    d = wa[None, :] - half - ti[:, None]  # (tile, R): offset along one axis
    # d2 is indexed [i, j, a, b]: dy comes from (i, a), dx from (j, b).
    d2 = d[:, None, :, None].pow(2) + d[None, :, None, :].pow(2)
    inside = d2.to(torch.float64) < float(radius) ** 2
    return inside.reshape(tile * tile, r_win * r_win)


@dataclass(frozen=True)
class _MemoryFrame:
    """One context frame, stored channels-last and padded so windows are strided views of it.

    keys_pqc: (Hp + 2*half, Wp + 2*half, C + 1) L2-normalised features with the image at
        offset (half, half) and zeros around it. The extra last channel is 0 on image
        sites and -1 on padding; queries carry a large constant there, so padding sites
        score far below any cosine and are never chosen over a real site.
    labels_pqk: (Hp + 2*half, Wp + 2*half, K) soft labels, padded the same way.
    """

    keys_pqc: torch.Tensor
    labels_pqk: torch.Tensor


class LabelPropagator:
    """Streams CRW label propagation, one target frame per :meth:`step`.

    Holds at most ``cfg.context + 1`` frames of features and labels (frame 0 plus
    the short-term memory); :attr:`held_frames` reports how many.
    """

    # Added to a padding site's score (before the temperature): far below any cosine.
    _PAD_PENALTY = 1.0e4
    # Bound on the restricted scores alive at once (bytes): the tiles of a tile row are
    # processed in chunks whose scores against all context frames fit in it.
    _CHUNK_BYTES = 16 * 2 ** 20
    # Target sites compared with all of frame 0 at once: (h*w) x this many scores alive.
    _GLOBAL_QUERIES = 128

    def __init__(self, first_feats_chw: torch.Tensor, first_labels_khw: torch.Tensor,
                 cfg: PropagationConfig) -> None:
        """first_feats_chw: (C, h, w) features of frame 0; first_labels_khw: (K, h, w)
        soft labels of frame 0 at feature resolution."""
        if first_feats_chw.dim() != 3 or first_labels_khw.dim() != 3:
            raise ValueError("expected feats (C, h, w) and labels (K, h, w)")
        if first_feats_chw.shape[-2:] != first_labels_khw.shape[-2:]:
            raise ValueError(
                f"feature size {tuple(first_feats_chw.shape[-2:])} != label size "
                f"{tuple(first_labels_khw.shape[-2:])}")
        self.cfg = cfg
        self.feat_size = tuple(first_feats_chw.shape[-2:])
        self.num_channels = first_feats_chw.shape[0]
        self.dtype = first_feats_chw.dtype if first_feats_chw.is_floating_point() else torch.float32
        self.device = first_feats_chw.device
        self.half = window_half_width(cfg.radius)
        h, w = self.feat_size
        t = cfg.tile
        self.padded_size = (-(-h // t) * t, -(-w // t) * t)  # (Hp, Wp), multiples of tile
        # Additive score bias (R*R, t*t), window sites x tile sites: 0 inside the radius,
        # -inf-like outside. Window-major like the scores in _local_topk.
        disk = _disk_mask_tile(t, self.half, cfg.radius, self.device).T
        self.disk_bias = torch.zeros(disk.shape, dtype=self.dtype, device=self.device).masked_fill(
            ~disk, torch.finfo(self.dtype).min / 4)
        first_keys_chw = self._normalise(first_feats_chw)
        first_labels_khw = first_labels_khw.to(self.device, self.dtype)
        self.first = self._memory_frame(first_keys_chw, first_labels_khw)
        self.first_keys_abc = self.first_labels_nk = None
        if not cfg.restrict_first_frame:
            # CRW compares frame 0 with every site. Its h*w sites, padded with padding
            # sites (flag -1, zero labels) to groups * per_group, form `groups` interleaved
            # groups (site = a * per_group + b) for _two_stage_topk. per_group >= 64 * topk
            # keeps torch.topk on its partial-sort path, measured ~3x faster per element.
            groups = max(1, min(h * w // (64 * cfg.topk), 16))
            per_group = -(-(h * w) // groups)
            extra = groups * per_group - h * w
            flag = torch.zeros(1, h * w, dtype=self.dtype, device=self.device)
            keys_nc = F.pad(torch.cat([first_keys_chw.flatten(1), flag]).T, (0, 0, 0, extra))
            keys_nc[h * w:, -1] = -1.0
            self.first_keys_abc = keys_nc.view(groups, per_group, -1)
            self.first_labels_nk = F.pad(first_labels_khw.flatten(1).T, (0, 0, 0, extra))
        self.recent: deque[_MemoryFrame] = deque(maxlen=cfg.context)

    @property
    def held_frames(self) -> int:
        """Frames whose features are currently stored (frame 0 + short-term memory)."""
        return 1 + len(self.recent)

    def _normalise(self, feats_chw: torch.Tensor) -> torch.Tensor:
        if tuple(feats_chw.shape) != (self.num_channels, *self.feat_size):
            raise ValueError(
                f"expected features of shape {(self.num_channels, *self.feat_size)}, "
                f"got {tuple(feats_chw.shape)}")
        return F.normalize(feats_chw.to(self.device, self.dtype), dim=0)

    def _pad_hwc(self, x_chw: torch.Tensor, value: float = 0.0) -> torch.Tensor:
        """(C, h, w) -> channels-last (Hp + 2*half, Wp + 2*half, C), image at (half, half)."""
        h, w = self.feat_size
        hp, wp = self.padded_size
        x = F.pad(x_chw, (self.half, wp - w + self.half, self.half, hp - h + self.half), value=value)
        return x.permute(1, 2, 0).contiguous()

    def _tiles(self, x_chw: torch.Tensor) -> torch.Tensor:
        """(C, h, w) -> (bands, tiles, C, t*t), zero-padded to (Hp, Wp); tile sites row-major."""
        h, w = self.feat_size
        hp, wp = self.padded_size
        t = self.cfg.tile
        x = F.pad(x_chw, (0, wp - w, 0, hp - h))
        c = x.shape[0]
        return x.view(c, hp // t, t, wp // t, t).permute(1, 3, 0, 2, 4).reshape(hp // t, wp // t, c, t * t)

    def _memory_frame(self, keys_chw: torch.Tensor, labels_khw: torch.Tensor) -> _MemoryFrame:
        """keys_chw: (C, h, w) normalised features; labels_khw: (K, h, w)."""
        pad_flag = torch.zeros((1, *self.feat_size), device=self.device, dtype=self.dtype)
        keys = self._pad_hwc(torch.cat([keys_chw, pad_flag]), value=0.0)
        keys[..., -1] = -1.0
        keys[self.half:self.half + self.feat_size[0], self.half:self.half + self.feat_size[1], -1] = 0.0
        return _MemoryFrame(keys_pqc=keys, labels_pqk=self._pad_hwc(labels_khw))

    def _restricted_context(self) -> tuple[list[_MemoryFrame], torch.Tensor]:
        """The radius-restricted context: its distinct frames, and for every candidate
        frame (repeats included) the index of its distinct frame.

        Frame 0 is restricted once when ``restrict_first_frame`` and again as each
        padding copy of the short-term memory (``context - len(recent)`` of them, CRW's
        prepended copies). Repeats beyond ``topk`` cannot change a top-k: capped there.
        """
        cfg = self.cfg
        repeats = 1 if cfg.restrict_first_frame else 0
        repeats += max(cfg.context - len(self.recent), 0) if cfg.pad_context else 0
        repeats = min(repeats, cfg.topk)
        frames = ([self.first] if repeats else []) + list(self.recent)
        which = [0] * repeats + list(range(1 if repeats else 0, len(frames)))
        return frames, torch.tensor(which, dtype=torch.long, device=self.device)

    def step(self, feats_chw: torch.Tensor) -> torch.Tensor:
        """Predict the next frame's labels and push it into the short-term memory.

        feats_chw: (C, h, w) features of the target frame.
        Returns (K, h, w) soft labels (each site a convex combination of context labels).
        """
        query_chw = self._normalise(feats_chw)
        h, w = self.feat_size
        flag = torch.full((1, h, w), self._PAD_PENALTY, device=self.device, dtype=self.dtype)
        # Divided by the temperature once here, so every score below is a logit.
        logits_chw = torch.cat([query_chw, flag]) / self.cfg.temperature
        # Candidates of every target site, in tile layout: scores (bands, tiles, k', t*t)
        # and their labels (bands, tiles, k', t*t, K).
        candidates = []
        frames, which = self._restricted_context()
        if frames:
            candidates.append(self._local_topk(self._tiles(logits_chw), frames, which))
        if self.first_keys_abc is not None:
            candidates.append(self._global_topk(logits_chw))
        scores_bnis = torch.cat([s for s, _ in candidates], dim=2)
        labels_bnisk = torch.cat([lab for _, lab in candidates], dim=2)
        if scores_bnis.shape[2] > self.cfg.topk:
            scores_bnis, idx = scores_bnis.topk(self.cfg.topk, dim=2)
            labels_bnisk = labels_bnisk.gather(2, idx[..., None].expand(*idx.shape, labels_bnisk.shape[-1]))
        weights_bnis = torch.softmax(scores_bnis, dim=2)
        probs_bnsk = torch.einsum("bnis,bnisk->bnsk", weights_bnis, labels_bnisk)
        hp, wp = self.padded_size
        t = self.cfg.tile
        n_bands, n_tiles, _, num_labels = probs_bnsk.shape
        probs_khw = (probs_bnsk.view(n_bands, n_tiles, t, t, num_labels).permute(4, 0, 2, 1, 3)
                     .reshape(num_labels, hp, wp)[:, :h, :w].contiguous())
        if self.cfg.context > 0:
            self.recent.append(self._memory_frame(query_chw, probs_khw))
        return probs_khw

    def _local_topk(self, logits_bncs: torch.Tensor, frames: list[_MemoryFrame],
                    which: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k within the radius over the restricted context frames.

        logits_bncs: (bands, tiles, C+1, t*t) target logits in tile layout.
        Returns scores (bands, tiles, k', t*t) and labels (bands, tiles, k', t*t, K).

        Working set: the scores of one chunk of tiles against every distinct frame,
        (F, chunk, R*R, t*t), at most _CHUNK_BYTES unless one tile needs more, plus one
        chunk of copied key windows (chunk, R*R, C+1).
        """
        t, half, k = self.cfg.tile, self.half, self.cfg.topk
        r_win = t + 2 * half
        n_bands, n_tiles, c1, sites = logits_bncs.shape
        labels_fpqk = torch.stack([f.labels_pqk for f in frames])
        _, rows_p, cols_q, num_labels = labels_fpqk.shape
        labels_nk = labels_fpqk.view(-1, num_labels)
        per_tile = len(frames) * r_win * r_win * sites * logits_bncs.element_size()
        chunk = max(1, min(n_tiles, self._CHUNK_BYTES // per_tile))
        scores_fnws = logits_bncs.new_empty(len(frames), chunk, r_win * r_win, sites)
        best_nws = logits_bncs.new_empty(chunk, r_win * r_win, sites)
        keys_nwc = logits_bncs.new_empty(chunk, r_win * r_win, c1)
        k_out = min(k, len(which) * min(k, r_win * r_win))
        top_bnis = logits_bncs.new_empty(n_bands, n_tiles, k_out, sites)
        labels_bnisk = logits_bncs.new_empty(n_bands, n_tiles, k_out, sites, num_labels)
        for band in range(n_bands):
            # The padded maps hold the image at offset `half`, so the windows of the tile
            # row starting at target row `row` start at padded row `row`, and tile m's
            # window at padded column m * t.
            row = band * t
            for n0 in range(0, n_tiles, chunk):
                n = min(chunk, n_tiles - n0)
                for i, frame in enumerate(frames):
                    band_keys = frame.keys_pqc[row:row + r_win, n0 * t:]
                    row_stride, col_stride = band_keys.stride(0), band_keys.stride(1)
                    keys_nwc[:n].view(n, r_win, r_win, c1).copy_(band_keys.as_strided(
                        (n, r_win, r_win, c1), (t * col_stride, row_stride, col_stride, 1)))
                    torch.bmm(keys_nwc[:n], logits_bncs[band, n0:n0 + n], out=scores_fnws[i, :n])
                    # Running maximum over frames while this frame's scores are in cache.
                    if i == 0:
                        best_nws[:n].copy_(scores_fnws[0, :n])
                    else:
                        torch.maximum(best_nws[:n], scores_fnws[i, :n], out=best_nws[:n])
                best_nws[:n] += self.disk_bias
                top, (cand, win) = _two_stage_topk(scores_fnws[:, :n], best_nws[:n], k, which, self.disk_bias)
                top_bnis[band, n0:n0 + n] = top
                # Window site (a, b) of tile m in frame f -> flat index into the stacked labels.
                tile_col = (n0 + torch.arange(n, device=self.device)).view(n, 1, 1) * t
                flat = (which[cand] * rows_p + row + win // r_win) * cols_q + win % r_win + tile_col
                labels_bnisk[band, n0:n0 + n] = labels_nk[flat]
        return top_bnis, labels_bnisk

    def _global_topk(self, logits_chw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k over every site of frame 0 (CRW's long-term memory).

        logits_chw: (C+1, h, w) target logits.
        Returns scores (bands, tiles, k', t*t) and labels (bands, tiles, k', t*t, K).
        Working set: (h*w) x _GLOBAL_QUERIES scores.
        """
        h, w = self.feat_size
        c1 = logits_chw.shape[0]
        groups, per_group, _ = self.first_keys_abc.shape
        keys_nc = self.first_keys_abc.view(groups * per_group, c1)
        logits_cn = logits_chw.view(c1, h * w)
        num_labels = self.first_labels_nk.shape[-1]
        k_out = min(self.cfg.topk, groups * min(self.cfg.topk, per_group))
        top_kn = logits_chw.new_empty(k_out, h * w)
        labels_knk = logits_chw.new_empty(k_out, h * w, num_labels)
        scores_nq = logits_chw.new_empty(groups * per_group, self._GLOBAL_QUERIES)
        for q0 in range(0, h * w, self._GLOBAL_QUERIES):
            q = min(self._GLOBAL_QUERIES, h * w - q0)
            scores_a1bq = torch.mm(keys_nc, logits_cn[:, q0:q0 + q], out=scores_nq[:, :q]
                                   ).view(groups, 1, per_group, q)
            top, (group, site) = _two_stage_topk(scores_a1bq, scores_a1bq.amax(0), self.cfg.topk)
            top_kn[:, q0:q0 + q] = top[0]
            labels_knk[:, q0:q0 + q] = self.first_labels_nk[group[0] * per_group + site[0]]
        t = self.cfg.tile
        top_bnis = self._tiles(top_kn.view(k_out, h, w))
        labels_bnkis = self._tiles(labels_knk.permute(0, 2, 1).reshape(k_out * num_labels, h, w))
        n_bands, n_tiles = top_bnis.shape[:2]
        labels_bnisk = labels_bnkis.view(n_bands, n_tiles, k_out, num_labels, t * t).transpose(3, 4)
        return top_bnis, labels_bnisk


def _two_stage_topk(scores_anbq: torch.Tensor, col_max_nbq: torch.Tensor, k: int,
                    which: torch.Tensor | None = None, bias_bq: torch.Tensor | None = None):
    """Exact top-k over (a, b) of scores (A, N, B, Q), separately for every (n, q).

    col_max_nbq: (N, B, Q) the maximum over a of scores (+ bias_bq), the caller's so that
        it can be accumulated while the scores are computed.
    Stage 1 keeps the k1 = min(k, B) columns b with the largest maxima; stage 2 takes the
    top-k of the A * k1 scores in those columns. This is exact: the k1 kept columns hold
    k1 scores >= m, the k1-th largest column maximum, so the k-th largest score overall is
    >= m; every score above m lies in a column whose maximum is above m, i.e. a kept one.
    Only equal scores may be chosen differently than by one top-k over all A * B, and
    equal scores get equal weights. torch.topk costs ~3-8 ns per element on CPU against
    ~0.2 ns for a max, so the saving is most of the selection time.

    which: (A',) long, the candidate rows (repeats allowed: a frame counted several times,
        see LabelPropagator._restricted_context); default every row once.
    bias_bq: (B, Q) added to every row (the disk restriction).
    Returns the top scores (N, k', Q), k' = min(k, A' * k1), and their indices (a, b), each
    (N, k', Q), with a indexing ``which`` when given.
    """
    rows, n, cols, q = scores_anbq.shape
    k1 = min(k, cols)
    col_nkq = col_max_nbq.topk(k1, dim=1).indices
    cand_ankq = scores_anbq.gather(2, col_nkq.expand(rows, n, k1, q))
    if which is not None:
        cand_ankq = cand_ankq.index_select(0, which)
    if bias_bq is not None:
        cand_ankq += bias_bq.expand(n, cols, q).gather(1, col_nkq)
    cand_nmq = cand_ankq.transpose(0, 1).reshape(n, -1, q)  # candidate m = a * k1 + j
    top_nkq, m_nkq = cand_nmq.topk(min(k, cand_nmq.shape[1]), dim=1)
    return top_nkq, (m_nkq // k1, col_nkq.gather(1, m_nkq % k1))


def propagate(features: Iterable[torch.Tensor], first_labels_khw: torch.Tensor,
              cfg: PropagationConfig = PropagationConfig()) -> Iterator[torch.Tensor]:
    """Propagate frame-0 labels through a video, lazily.

    features: iterable of (C, h, w) stride-8 feature maps for frames 0..T-1, consumed
        one at a time (it is never read ahead), so features may be computed on demand.
    first_labels_khw: (K, h, w) soft labels of frame 0 at feature resolution
        (see ``vmac_core.label_grid.labels_to_onehot`` and ``keypoints_to_heatmaps``).
    Yields (K, h, w) soft labels for frames 1..T-1, on the features' device.
    """
    frames = iter(features)
    try:
        first_feats_chw = next(frames)
    except StopIteration:
        return
    propagator = LabelPropagator(first_feats_chw, first_labels_khw.to(first_feats_chw.device), cfg)
    del first_feats_chw  # the propagator keeps its own normalised copy
    for feats_chw in frames:
        yield propagator.step(feats_chw)

