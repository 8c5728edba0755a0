from bench.flood.cli import flood

flood()
