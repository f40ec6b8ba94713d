"""MobileNet edge-deployment pipeline: build -> convert -> calibrate -> validate -> benchmark -> report."""
import os

# TensorFlow's C++ start-up chatter says nothing a user of this pipeline needs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
