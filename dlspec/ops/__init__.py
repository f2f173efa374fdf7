"""The op registry: one ``OpDef`` per IR op with all of its rules together.

Importing this package registers every op (``dlspec.ops.elementwise``,
``dlspec.ops.linalg``, ...). Look ops up with ``get_op(name)``.
"""

# (registration: importing each module registers its ops)
from dlspec.ops import (  # noqa: F401,E402
    conv,
    elementwise,
    embedding,
    linalg,
    loss,
    norm,
    recurrent,
    recurrent_masked,
    shape,
)
from dlspec.ops.registry import OPS, OpDef, get_op, register

__all__ = ["OPS", "OpDef", "get_op", "register"]
