"""scalinglaws: the scaling laws of composing specialists, on small LMs trained from scratch.

One module per concern: data, tokenizer, models, training, evaluation, merge, laws/fitting,
results/sweep, planning, resource. Notebooks only call into this package.
"""
__version__ = "0.1.0"
