"""The isolated tflite-support environment of the Android tests: `ensure_venv` builds it, `task_library.py`
runs inside it."""
