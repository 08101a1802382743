"""Clark et al. 2022 (arXiv 2202.01169), Table 3 as quoted by a public set of research notes: log10
loss, N in parameters. Not checked against the paper text (RESEARCH.md section 3): shown beside our
fits as the literature's values, never used to compute anything of ours."""
import pandas as pd

CLARK_TABLE3 = pd.DataFrame([
    ("sbase", -0.082, -0.108, 0.009, 1.104, 1.847, 314.478),
    ("rlr", -0.083, -0.126, 0.012, 1.111, 1.880, 469.982),
    ("hash", -0.087, -0.136, 0.012, 1.157, 4.175, 477.741),
], columns=["router", "a", "b", "c", "d", "E_start", "E_max"]).set_index("router")

# Clark's models: ~15M..1.3B dense parameters, E from 1 to 512, 130B training tokens each; the
# notes quote N_cutoff 937B (S-BASE), 85B (RL-R), 83B (Hash).
CLARK_SCALE = {"N_min": 15e6, "N_max": 1.3e9, "E_max_measured": 512, "tokens": 130e9}
