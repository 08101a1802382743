"""Numbers from the merging paper (Wang et al. 2025, arXiv 2509.24244), typed from the paper:
literature values shown beside ours, never computed by this study."""
import pandas as pd

PAPER = pd.DataFrame([
    ("macro in-domain CE, Average, 0.5B, k=1", "0.816"),
    ("macro in-domain CE, Average, 0.5B, k=9", "0.739"),
    ("macro in-domain CE, Average, 32B, k=1", "0.493"),
    ("macro in-domain CE, Average, 32B, k=9", "0.430"),
    ("R^2 of the CE fits, overall", "> 0.98"),
    ("R^2 per domain, Average / TA / TIES", "0.984-0.992 / 0.993-0.997 / 0.975-0.990"),
    ("R^2 of the variance fits", "0.74-0.94"),
    ("floor exponent beta per domain (Average)", "0.27-0.47"),
    ("median R(k) >= 85% / 90% at", "k = 5 / k = 6"),
    ("TA vs Average at k=9", "0.7-1.4% worse"),
    ("TIES (lambda 0.5) vs Average at k=9", "1.1-2.3% better"),
    ("spread of methods at large N", "within 2%"),
    ("variance at k=2 vs Average (32B): TA / TIES", "-19% / -33%"),
], columns=["quantity (paper)", "paper value"]).set_index("quantity (paper)")
