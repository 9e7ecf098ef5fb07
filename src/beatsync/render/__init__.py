"""Rendering with PyAV: probe clips, score motion, render an EDL to a video file."""
