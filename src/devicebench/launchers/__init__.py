"""Stage 5: process launchers. A fresh interpreter per configuration (:mod:`.worker`) and N
data-parallel ranks started by devicebench itself (:mod:`.ranks`, single machine, nothing
listening beyond loopback), sharing one call/answer format (:mod:`.process`); both block,
never poll, while their children run.

Nothing is imported here: both launchers run their own module as ``python -m``, which must
not find it already imported by its package.
"""
