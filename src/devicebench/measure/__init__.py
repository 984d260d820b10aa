"""Stage 3: measurement. Clocks and adaptive timing, statistics, memory, energy,
sustained load, the inference and training loops, checkpoints, parity, and the variants a
model can run as. Runs inside a worker; nothing here writes to a store or a terminal."""
