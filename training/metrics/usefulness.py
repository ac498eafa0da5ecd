"""Usefulness (the paper's GEO experiment): a tissue classifier trained on one source, tested on another.

A torchvision ResNet-18 from scratch (no pretrained weights: nothing is downloaded, and ImageNet features
would blur what the training tiles taught) learns the tissue of each tile; it is trained on generated
tiles and tested on real held-out tiles, and the reverse. Accuracy, macro F1 and AUC (one-vs-rest over
tissues when there are more than two) from scikit-learn.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from training.metrics.detectability import fit_classifier, predict_proba
from training.metrics.features import resize_batch, to_float


@dataclass(frozen=True)
class UsefulConfig:
    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-3
    image_size: int = 64
    min_steps: int = 150
    seed: int = 0


def classification_scores(labels: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    labels = np.asarray(labels)
    predicted = proba.argmax(1)
    present = np.unique(labels)
    if len(present) < 2:
        auc = float("nan")  # AUC is undefined when the test set holds one class
    elif proba.shape[1] == 2:
        auc = float(roc_auc_score(labels, proba[:, 1]))
    else:
        auc = float(roc_auc_score(labels, proba[:, present] / proba[:, present].sum(1, keepdims=True),
                                  multi_class="ovr", labels=present))
    return {"accuracy": float(accuracy_score(labels, predicted)),
            "f1": float(f1_score(labels, predicted, average="macro")), "auc": auc, "n": int(len(labels))}


def train_test(train_tiles: np.ndarray, train_labels: np.ndarray, test_tiles: np.ndarray,
               test_labels: np.ndarray, config: UsefulConfig = UsefulConfig()) -> dict[str, float]:
    """Train a ResNet-18 on (train_tiles, labels 0..K−1), score it on the test tiles."""
    from torchvision.models import resnet18

    classes = int(max(np.max(train_labels), np.max(test_labels))) + 1
    if classes < 2 or len(np.unique(train_labels)) < 2:
        raise ValueError("usefulness needs tiles of at least two tissues in the training set")
    torch.manual_seed(config.seed)
    model = resnet18(weights=None, num_classes=classes)
    x = resize_batch(to_float(train_tiles), config.image_size)
    gen = torch.Generator().manual_seed(config.seed)
    model = fit_classifier(model, x, torch.as_tensor(np.asarray(train_labels), dtype=torch.long),
                           epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, gen=gen,
                           min_steps=config.min_steps)
    proba = predict_proba(model, resize_batch(to_float(test_tiles), config.image_size))
    return classification_scores(np.asarray(test_labels), proba)


def usefulness(generated: np.ndarray, generated_labels: np.ndarray, real: np.ndarray, real_labels: np.ndarray,
               config: UsefulConfig = UsefulConfig()) -> dict:
    """Both directions: generated → real held-out, and real → generated."""
    return {"train_generated_test_real": train_test(generated, generated_labels, real, real_labels, config),
            "train_real_test_generated": train_test(real, real_labels, generated, generated_labels, config),
            "config": asdict(config)}
