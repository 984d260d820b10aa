"""Stage 5: process launchers. A fresh interpreter per configuration (:mod:`.worker`) and N
data-parallel ranks through torchrun (:mod:`.torchrun`), sharing one call/answer format and
one blocking spawn-and-wait (:mod:`.process`).

Nothing is imported here: both launchers run their own module as ``python -m``, which must
not find it already imported by its package.
"""
