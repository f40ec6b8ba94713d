"""Drift metrics between the float model's class probabilities and an artifact's."""
from __future__ import annotations

import numpy as np

EPS = 1e-7


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of images whose label is among the k highest outputs. Ties go to the lower class index, as
    np.argmax breaks them (the paired counts' top-1): an int8 file's dequantized outputs tie often, and an
    unstable sort made its top-1 here differ from the one its drop was counted with."""
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def top1_agreement(reference: np.ndarray, probs: np.ndarray) -> float:
    return float(np.mean(np.argmax(reference, 1) == np.argmax(probs, 1)))


def kl_divergence(reference: np.ndarray, probs: np.ndarray) -> float:
    """Mean over images of KL(reference ‖ probs), in nats."""
    p = np.clip(reference, EPS, 1.0)
    q = np.clip(probs, EPS, 1.0)
    p, q = p / p.sum(1, keepdims=True), q / q.sum(1, keepdims=True)
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


def sqnr_db(reference: np.ndarray, probs: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of the outputs: 10·log10(Σ ref² / Σ (ref − out)²)."""
    noise = float(np.sum((reference.astype(np.float64) - probs) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    return float("inf") if noise == 0 else 10.0 * np.log10(signal / noise)


def drift_metrics(reference: np.ndarray, probs: np.ndarray, labels: np.ndarray | None) -> dict:
    diff = np.abs(reference.astype(np.float64) - probs)
    metrics = {
        "top1_agreement": top1_agreement(reference, probs),
        "kl_mean": kl_divergence(reference, probs),
        "sqnr_db": sqnr_db(reference, probs),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
    }
    if labels is not None:
        top1 = topk_accuracy(probs, labels, 1)
        metrics = {"top1": top1, "top5": topk_accuracy(probs, labels, 5),
                   "top1_drop_points": 100.0 * (topk_accuracy(reference, labels, 1) - top1), **metrics}
    return metrics
