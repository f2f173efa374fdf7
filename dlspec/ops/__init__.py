"""The op registry: one ``OpDef`` per IR op with all of its rules together.

Importing this package registers every op (``dlspec.ops.elementwise``,
``dlspec.ops.linalg``, ...). Look ops up with ``get_op(name)``.
"""

# (registration: importing each module registers its ops)
from dlspec.ops import conv, elementwise, linalg, loss, norm, recurrent, shape  # noqa: F401,E402
from dlspec.ops.registry import OPS, OpDef, get_op, register

__all__ = ["OPS", "OpDef", "get_op", "register"]
