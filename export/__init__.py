"""ONNX export and parity, FP16 check, Triton config generation and repository builder."""
