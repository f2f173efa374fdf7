"""Running exported models: the input contract, feeds, onnxruntime sessions, chunked prediction."""
