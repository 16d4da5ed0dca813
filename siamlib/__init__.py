"""SIAM: age estimation from smile videos with spatially-indexed attention."""
