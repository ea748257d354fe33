"""Synthetic medical-document generator (page images + exact ground truth); see README.md."""
