"""Tuning runs (``--tune``, ``--crossover``): candidates planned per device
(:mod:`.candidates`), screened with parity, the finalists measured, the naive and fair
speedups answered (:mod:`.tuner`), and the crossover sweep analysed (:mod:`.sweep`)."""
