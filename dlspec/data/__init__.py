"""Data: CSV tables, fitted preprocessing (NumPy and ONNX), and splits."""
