"""The papers' own measurements shipped under `data/reference/`, checksummed and verified on load.

Each file is registered here with its sha256, source and licence (also in `data/LICENSES.md` and
`data/reference/README.md`). `load(name)` refuses a file whose checksum differs, naming it, so an
edited or truncated copy never feeds a fit silently:

    clark2022_routing_measurements.csv   Clark et al. 2022 (routed LMs): 5,799 rows of training-curve
                                         measurements, as redistributed under MIT by linhaowei1/SLD
                                         (`data/moe_scaling_law/data.csv`, commit bf7e8e3)
    chinchilla_svg_extracted_data.csv    Hoffmann et al. 2022, digitised by Epoch (Besiroglu et al. 2024)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from scalinglaws.core import paths
from scalinglaws.core.results import sha256_file
from scalinglaws.core.validation import ParameterError, check_choice


@dataclass(frozen=True)
class Reference:
    sha256: str
    source: str
    licence: str


REFERENCES: dict[str, Reference] = {
    "clark2022_routing_measurements.csv": Reference(
        "a93902c7cc30ff44e8aac701ee3a8ffec33be3417a85abefa88f7d4c8a50973d",
        "Clark et al. 2022, Unified Scaling Laws for Routed Language Models (arXiv 2202.01169): the authors' "
        "measurements as redistributed in github.com/linhaowei1/SLD, data/moe_scaling_law/data.csv at commit bf7e8e3",
        "MIT"),
    "chinchilla_svg_extracted_data.csv": Reference(
        "193478df4e90f040016431996c45682659306840ecdadf83cfb9cd5ca0aa1b30",
        "Hoffmann et al. 2022 Figure 4, digitised by Epoch (github.com/epoch-research/analyzing-chinchilla, "
        "data/svg_extracted_data.csv)",
        "no licence file in the source repository; points read off a published figure"),
}


class ReferenceChecksumError(ParameterError):
    """A shipped reference file does not match its registered sha256."""


def path(name: str) -> Path:
    check_choice("reference", name, REFERENCES)
    return paths.DATA_DIR / "reference" / name


def verify(name: str, file: Path | None = None) -> Path:
    """The file's path after checking its sha256 against the registry (`file`: another copy of it)."""
    check_choice("reference", name, REFERENCES)
    p = Path(file) if file is not None else path(name)
    if not p.exists():
        raise ReferenceChecksumError(f"reference file {p} is missing")
    got = sha256_file(p)
    if got != REFERENCES[name].sha256:
        raise ReferenceChecksumError(f"reference file {p} has sha256 {got[:12]}..., expected "
                                     f"{REFERENCES[name].sha256[:12]}... (edited or corrupted; restore it from git)")
    return p


def load(name: str, file: Path | None = None) -> pd.DataFrame:
    """The reference CSV as a DataFrame, verified first."""
    return pd.read_csv(verify(name, file))


# Published fits of the Chinchilla law L = E + A N^-alpha + B D^-beta, typed from the papers once
# (the fitting chapter, the resource study and its claims read them from here).
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}      # Hoffmann et al. 2022, eq. 10
EPOCH = {"E": 1.817, "A": 482.0, "B": 2085.4, "alpha": 0.348, "beta": 0.366}     # Besiroglu et al. 2024, Table 1
EPOCH_SE = {"E": 0.026, "A": 124.5, "B": 1293.3, "alpha": 0.015, "beta": 0.021}  # its bootstrap SEs (Table 1)
CHINCHILLA_CSV = "chinchilla_svg_extracted_data.csv"


def chinchilla_points() -> pd.DataFrame:
    """Epoch's 240 points, as in their replication: the digitised Chinchilla CSV (verified) minus its
    5 highest-loss points, sorted by loss; N = Model Size, D = Training FLOP / (6 N)."""
    df = load(CHINCHILLA_CSV).sort_values("loss").iloc[:-5]
    return pd.DataFrame({"N": df["Model Size"].to_numpy(float),
                         "D": (df["Training FLOP"] / (6 * df["Model Size"])).to_numpy(float),
                         "loss": df["loss"].to_numpy(float)})
