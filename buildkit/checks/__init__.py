"""Proof that an artifact runs: the recipe's checks (model), their fixtures, and the
runner that executes them on the closest real host of each artifact's target."""
