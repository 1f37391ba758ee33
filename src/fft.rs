//! GPU Stockham FFT (placeholder; being written).
