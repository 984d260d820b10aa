"""Stage 6: orchestration. Each kind of run turns a request into configurations,
launches each (a fresh worker, or N data-parallel ranks), and keeps each result the moment it
exists, through one :class:`~devicebench.run.context.RunContext` (begin, interrupted,
finish, partial JSON): :mod:`.inference`, :mod:`.training`, :mod:`.tuning`.

Nothing below this stage writes to the store or the terminal."""
