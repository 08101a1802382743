"""The model family.

    dense.py        the dense ladder: Llama-style sizes per profile, configs, parameter and FLOP counts
    checkpoints.py  safetensors checkpoints (atomic save, pickle-refusing load)
    routed.py       the routed family (Mixtral classes, registered model_type "scalinglaws_routed"): every
                    other block's MLP becomes E top-1 experts; imported here, so its classes are
                    registered with AutoModelForCausalLM whenever `scalinglaws.models` is (a routed
                    checkpoint never reloads with the stock router)
    routers.py      S-BASE (Sinkhorn), Hash, RL-R (REINFORCE), Switch top-1, each one class

`from scalinglaws import models` gives both APIs.
"""
from scalinglaws.models import routed as _routed  # noqa: F401  (registers the routed family)
from scalinglaws.models.checkpoints import load_checkpoint, load_meta, load_unit_checkpoint, save_checkpoint
from scalinglaws.models.dense import (EOS_ID, LADDERS, SIZES, VOCAB_SIZE, Size, build_model, count_params,
                                      flops_per_token, get_size, ladder, ladder_table, model_config,
                                      param_formula)

__all__ = ["EOS_ID", "LADDERS", "SIZES", "VOCAB_SIZE", "Size", "build_model", "count_params", "flops_per_token",
           "get_size", "ladder", "ladder_table", "load_checkpoint", "load_meta", "load_unit_checkpoint", "model_config", "param_formula",
           "save_checkpoint"]
