"""Weight-free image synthesis kernels (compiled with numba)."""
