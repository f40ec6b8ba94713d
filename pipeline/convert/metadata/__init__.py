"""TFLite model metadata: the labels and the preprocessing contract travel inside every .tflite.

Android's Task Library (`ImageClassifier`) and Android Studio's ML Model Binding read the metadata to
know the input normalisation and the class names; without it every app re-implements preprocessing.

The layout is the one tflite-support's `MetadataPopulator` writes, built here from the vendored schema
(`pipeline/convert/metadata/schema/`) because tflite-support cannot be imported next to TensorFlow 2.21:
  - a `ModelMetadata` flatbuffer (file identifier "M001") in a new model buffer, referenced by a
    `metadata` entry named "TFLITE_METADATA";
  - the associated files (`labels.txt`) in a zip archive appended after the model flatbuffer, which
    the TFLite runtime never reads and the Task Library opens.
Nothing else changes: operators, tensors and weight buffers are carried over as they are, so inference
with and without metadata is identical.

describe.py    ModelInfo: identity, preprocessing contract, labels, calibration, training record
write.py       add_metadata: the ModelMetadata flatbuffer and labels.txt into a .tflite
read.py        read_metadata: the same back as plain data
flatbuffer.py  the container: unpack / repack, the metadata buffer, packed files, strip_metadata
schema/        the vendored metadata schema
"""
from mobilenet_edge.pipeline.convert.metadata.describe import LABELS_FILE, ModelInfo, model_info
from mobilenet_edge.pipeline.convert.metadata.flatbuffer import METADATA_IDENTIFIER, metadata_buffer, strip_metadata
from mobilenet_edge.pipeline.convert.metadata.read import has_metadata, read_metadata
from mobilenet_edge.pipeline.convert.metadata.write import add_metadata, metadata_for_variant, metadata_writer

__all__ = ["LABELS_FILE", "METADATA_IDENTIFIER", "ModelInfo", "add_metadata", "has_metadata", "metadata_buffer",
           "metadata_for_variant", "metadata_writer", "model_info", "read_metadata", "strip_metadata"]
