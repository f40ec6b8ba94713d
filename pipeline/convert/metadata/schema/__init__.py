"""TFLite *metadata* schema (tflite-support, Apache-2.0), vendored so the main environment can write it.

`tflite-support` pins protobuf<4 and cannot be imported next to TensorFlow 2.21, but its metadata is a
plain FlatBuffer: the schema (`metadata_schema.fbs`, schema version 1.5.0, file identifier "M001") and
the Python code flatc generated from it need nothing beyond the `flatbuffers` package.

Both files are copied unchanged from the tflite-support 0.4.4 wheel (the generated module gains only a
license header). tests/test_android.py checks that they still match the copy inside the isolated
tflite-support environment. To refresh: pin the new version in tests/android_env/requirements.txt,
copy `tensorflow_lite_support/metadata/metadata_schema{.fbs,_py_generated.py}` from that environment,
keep the header, and run the Android tests.
"""
from mobilenet_edge.pipeline.convert.metadata.schema import metadata_schema_py_generated as schema

SOURCE_PACKAGE = "tflite-support==0.4.4"  # where the two files come from
GENERATED_HEADER_LINES = 18  # lines of license header added above flatc's output

__all__ = ["schema", "SOURCE_PACKAGE", "GENERATED_HEADER_LINES"]
