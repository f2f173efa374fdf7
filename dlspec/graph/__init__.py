"""The IR: values, nodes and parameters; layers lower into it."""

from dlspec.graph.ir import Graph, GraphBuilder, Node, Param, Value

__all__ = ["Graph", "GraphBuilder", "Node", "Param", "Value"]
