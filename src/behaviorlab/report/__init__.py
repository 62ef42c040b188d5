"""Self-contained HTML reports of generation runs, their evaluation and the training scenarios."""
