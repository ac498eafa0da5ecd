"""Figures and measures of trained models."""
