"""Training on a small dataset (a user's folder of photos): what the train stage adds for it.

The practice that works with a few hundred images per class (and that TFLite Model Maker followed):
  1. class-balanced sampling, so a class with twice the photos is not predicted twice as often;
  2. augmentation that a camera would produce: random crop (shift and zoom), flip, brightness and contrast;
  3. with a transferred backbone and a new head, the backbone frozen while the head learns (a random head's
     large gradients would otherwise wreck the features it is meant to read), then everything fine-tuned at a
     lower rate;
  4. early stopping on the validation split, keeping the best epoch's weights.
BatchNorm: the frozen phase runs BatchNorm in inference mode on statistics re-estimated on the new images
first (the source's statistics describe other pictures); the end-to-end phase trains it as the train stage
does, which then re-estimates the statistics once more (precise BN).
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def dataset(pixels: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, mean: float, std: float,
            augment: str = "flip", balanced: bool = False):
    """An endless tf.data stream of normalised, augmented batches (augment 'flip' or 'photo')."""
    import tensorflow as tf

    side = pixels.shape[1]

    def photo(x, y):
        x = tf.cast(x, tf.float32)
        zoom = tf.random.uniform((), 1.0, 1.25, seed=seed)  # crop a random 80-100 % square, back to `side`
        bigger = tf.cast(tf.round(side * zoom), tf.int32)
        x = tf.image.resize(x, (bigger, bigger))
        x = tf.image.random_crop(x, (side, side, 3), seed=seed)
        x = tf.image.random_flip_left_right(x, seed=seed)
        x = tf.image.random_brightness(x, 0.1 * 255, seed=seed)
        x = tf.image.random_contrast(x, 0.8, 1.2, seed=seed)
        return (tf.clip_by_value(x, 0, 255) - mean) / std, y

    def flip(x, y):
        x = tf.image.random_flip_left_right(x, seed=seed)
        return (tf.cast(x, tf.float32) - mean) / std, y

    if balanced:
        classes = np.unique(labels)
        per_class = [tf.data.Dataset.from_tensor_slices((pixels[labels == c], labels[labels == c]))
                     .shuffle(int((labels == c).sum()), seed=seed + int(c)).repeat() for c in classes]
        stream = tf.data.Dataset.sample_from_datasets(per_class, weights=[1 / len(classes)] * len(classes), seed=seed)
    else:
        stream = (tf.data.Dataset.from_tensor_slices((pixels, labels))
                  .shuffle(len(labels), seed=seed, reshuffle_each_iteration=True).repeat())
    return stream.map(photo if augment == "photo" else flip, num_parallel_calls=tf.data.AUTOTUNE) \
        .batch(batch_size, drop_remainder=True)


def set_backbone_trainable(model, trainable: bool, head: set[str]) -> None:
    """Freeze (or unfreeze) every layer but the head; a frozen BatchNorm runs in inference mode (Keras 3)."""
    for layer in model.layers:
        if layer.name not in head:
            layer.trainable = trainable


def fit(trainer, ds, steps_per_epoch: int, epochs: int, learning_rate: float, weight_decay: float,
        validation=None, patience: int | None = None) -> dict:
    """One training phase with a cosine schedule; with `validation` and `patience`, early stopping that keeps
    the best epoch's weights (by validation loss: steadier than the accuracy of a few dozen images).
    Returns the phase's record: epochs run, rate, per-epoch accuracies and validation loss, best epoch."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps_per_epoch * epochs, alpha=0.01)
    trainer.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay) if weight_decay
        else keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy", metrics=["accuracy"],
    )
    callbacks = []
    if validation is not None and patience:
        callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=patience, mode="min",
                                                       restore_best_weights=True))
    history = trainer.fit(ds, epochs=epochs, steps_per_epoch=steps_per_epoch, validation_data=validation,
                          callbacks=callbacks, verbose=2).history
    record = {"epochs": len(history["loss"]), "learning_rate": learning_rate,
              "train_accuracy": [round(float(v), 4) for v in history["accuracy"]]}
    if "val_accuracy" in history:
        record.update(val_accuracy=[round(float(v), 4) for v in history["val_accuracy"]],
                      val_loss=[round(float(v), 4) for v in history["val_loss"]],
                      best_epoch=int(np.argmin(history["val_loss"])) + 1 if callbacks else len(history["val_loss"]))
    return record
