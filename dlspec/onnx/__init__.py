"""Everything ONNX: the graph builder, pinned versions, export of a run, the parity gate."""
