"""The model family.

    dense.py        the dense ladder: Llama-style sizes per profile, configs, parameter and FLOP counts
    checkpoints.py  safetensors checkpoints (atomic save, pickle-refusing load)

`from scalinglaws import models` gives both APIs.
"""
from scalinglaws.models.checkpoints import load_checkpoint, load_meta, save_checkpoint
from scalinglaws.models.dense import (EOS_ID, LADDERS, SIZES, VOCAB_SIZE, Size, build_model, count_params,
                                      flops_per_token, get_size, ladder, ladder_table, model_config,
                                      param_formula)

__all__ = ["EOS_ID", "LADDERS", "SIZES", "VOCAB_SIZE", "Size", "build_model", "count_params", "flops_per_token",
           "get_size", "ladder", "ladder_table", "load_checkpoint", "load_meta", "model_config", "param_formula",
           "save_checkpoint"]
