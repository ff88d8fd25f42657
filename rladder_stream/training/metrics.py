"""Grouping quality: adjusted mutual information (AMI) exactly as docs/design.md#ami has it, in NumPy/SciPy alone.

Per image, the true label of a pixel is its ground-truth group (ignored pixels dropped) and the predicted
label is the argmax over the K masks; the score is the AMI with **max** normalisation (the 2016-2017
Tagger/RTagger convention, scikit-learn's ``average_method='max'``; today's scikit-learn default differs):

    AMI = (MI - E[MI]) / (max(H(true), H(pred)) - E[MI])

with E[MI] the expected mutual information of two random labelings with the same cluster sizes
(hypergeometric model, Vinh et al. 2010). Degenerate cases follow scikit-learn: both labelings with a
single (or no) cluster score 1, one of them with a single cluster scores 0.

    >>> import numpy as np
    >>> adjusted_mutual_info(np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0]))
    1.0
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.special import gammaln

_EPS = np.finfo(np.float64).eps
IGNORE = -1  # the ground-truth label of pixels no group is scored on (docs/design.md#moving-mnist, #brodatz-textured-mnist)


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _expected_mutual_information(a: np.ndarray, b: np.ndarray, n: int) -> float:
    """E[MI] for row sums ``a`` and column sums ``b`` of an ``n``-sample contingency table (vectorised
    over cells and over every possible cell count ``n_ij``)."""
    nij = np.arange(1, max(a.max(), b.max()) + 1, dtype=np.float64)  # possible cell counts
    ai, bj = a[:, None, None].astype(np.float64), b[None, :, None].astype(np.float64)
    low = np.maximum(1.0, ai + bj - n)
    high = np.minimum(ai, bj)
    valid = (nij >= low) & (nij <= high)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = (nij / n) * (np.log(n) + np.log(nij) - np.log(ai) - np.log(bj))
        log_prob = (
            gammaln(ai + 1) + gammaln(bj + 1) + gammaln(n - ai + 1) + gammaln(n - bj + 1) - gammaln(n + 1)
            - gammaln(nij + 1) - gammaln(ai - nij + 1) - gammaln(bj - nij + 1) - gammaln(n - ai - bj + nij + 1)
        )
        cell = np.where(valid, term * np.exp(np.where(valid, log_prob, 0.0)), 0.0)
    return float(cell.sum())


def adjusted_mutual_info(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """AMI with max normalisation of two labelings of the same samples (any integer labels).

    Equals ``sklearn.metrics.adjusted_mutual_info_score(labels_true, labels_pred, average_method='max')``.
    """
    true = np.asarray(labels_true).reshape(-1)
    pred = np.asarray(labels_pred).reshape(-1)
    if true.shape != pred.shape:
        raise ValueError(f"labelings differ in length: {true.size} true labels, {pred.size} predicted")
    classes, true_idx = np.unique(true, return_inverse=True)
    clusters, pred_idx = np.unique(pred, return_inverse=True)
    if len(classes) == len(clusters) <= 1:
        return 1.0
    if len(classes) == 1 or len(clusters) == 1:
        return 0.0
    n = true.size
    table = np.zeros((len(classes), len(clusters)), dtype=np.int64)
    np.add.at(table, (true_idx, pred_idx), 1)
    a, b = table.sum(1), table.sum(0)
    nz = table > 0
    mi = float((table[nz] / n * (np.log(table[nz] * n) - np.log(np.outer(a, b)[nz]))).sum())
    emi = _expected_mutual_information(a, b, n)
    denominator = max(_entropy(a), _entropy(b)) - emi
    denominator = min(denominator, -_EPS) if denominator < 0 else max(denominator, _EPS)
    numerator = mi - emi
    numerator = min(numerator, -_EPS) if numerator < 0 else max(numerator, _EPS)
    return float(numerator / denominator)


def grouping_ami(true_groups: np.ndarray, masks: np.ndarray, ignore: Sequence[int] = (IGNORE,)) -> float | None:
    """AMI (docs/design.md#ami) of one observation: true int groups vs the argmax over ``masks`` ``(K, *obs_shape)``.

    Pixels whose true group is in ``ignore`` are dropped (-1 always means "ignore"; Moving MNIST also
    drops the background, group 0). Returns ``None`` when no pixel is left to score, NaN when a mask is not
    finite (a diverged model: its argmax would be an arbitrary grouping).
    """
    true = np.asarray(true_groups).reshape(-1)
    masks = np.asarray(masks)
    if masks.ndim < 2:
        raise ValueError(f"masks must be (K, *obs_shape), got shape {masks.shape}")
    pred = masks.reshape(masks.shape[0], -1).argmax(axis=0)
    if pred.shape != true.shape:
        raise ValueError(f"predicted groups cover {pred.size} pixels, the ground truth {true.size}")
    keep = ~np.isin(true, np.asarray(tuple(ignore)))
    if not keep.any():
        return None
    if not np.isfinite(masks).all():
        return float("nan")
    return adjusted_mutual_info(true[keep], pred[keep])


def batch_grouping_ami(true_groups: np.ndarray, masks: np.ndarray, ignore: Sequence[int] = (IGNORE,)) -> tuple[float, int]:
    """Sum and count of :func:`grouping_ami` over a batch: ``true_groups`` ``[B, *obs]``, ``masks``
    ``[B, K, *obs]`` (observations with nothing to score are left out of the count)."""
    true_groups, masks = np.asarray(true_groups), np.asarray(masks)
    if len(true_groups) != len(masks):
        raise ValueError(f"{len(true_groups)} ground-truth groupings for {len(masks)} predicted ones")
    scores = [s for t, m in zip(true_groups, masks) if (s := grouping_ami(t, m, ignore)) is not None]
    return float(sum(scores)), len(scores)


def largest_group_share(true_groups: np.ndarray, masks: np.ndarray, ignore: Sequence[int] = (IGNORE,)) -> tuple[float, int]:
    """Sum and count over a batch of the share of each observation's scored pixels (ground truth not in
    ``ignore``) won by its largest group (each pixel goes to its most likely group): about 1/objects when
    each group takes one object, near 1 when one group takes everything (docs/design.md#the-rtagger)."""
    true_groups, masks = np.asarray(true_groups), np.asarray(masks)
    won = masks.argmax(1).reshape(len(masks), -1)
    scored = ~np.isin(true_groups.reshape(len(masks), -1), list(ignore))
    counts = np.stack([((won == k) & scored).sum(1) for k in range(masks.shape[1])], 1)
    pixels = scored.sum(1)
    has = pixels > 0
    return float((counts.max(1)[has] / pixels[has]).sum()), int(has.sum())
