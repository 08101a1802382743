"""Resource model (Song et al. 2024): toy allocation sweeps, composites, LM width/depth ladders.

    study.py  PROFILES, validate, run, the fit and claims tables
    toy.py    one-hidden-layer networks with a group-lasso allocation of neurons
    lm.py     the LM ladders (width at fixed depth; depth = width / ratio), trained alike (tokens ~ N, rates bracketed)
    parts.py  the LM ladders' resumable parts and their predicted cost (`resource-parts`, cli.py)
"""
from scalinglaws.studies.resource.study import (EPOCH_ALPHA, HOFFMANN_ALPHA, PROFILES, RUN_ONLY, SAMPLE_DRAWS, STUDY, data_files,
                                                reference_frame, run, validate)

# the LM ladders bracket their rates by the rule they share with the testbed (core.regime.bracketed_rounds); the
# parts planner prices a rung from the stored testbed run's FLOP rate (parts.testbed_flop_rate)
DEPENDS_ON: tuple[str, ...] = ("testbed",)
__all__ = ["DEPENDS_ON", "EPOCH_ALPHA", "HOFFMANN_ALPHA", "PROFILES", "RUN_ONLY", "SAMPLE_DRAWS", "STUDY", "data_files", "reference_frame", "run",
           "validate"]
