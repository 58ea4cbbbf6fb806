"""Tests of inattn.checkpoints, one file per module."""
