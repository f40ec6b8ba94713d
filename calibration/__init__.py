"""Datasets, the preprocessing contract and representative (calibration) samples."""
