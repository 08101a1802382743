"""Copy the routing study's checkpoints at one (size, E) from .work/ into data/checkpoints/routing/<profile>/
with a sha256 manifest (`scalinglaws.studies.routing.publish`). Run after a clean reproduce."""
import argparse
import sys

from scalinglaws.core.validation import ParameterError
from scalinglaws.studies.routing.publish import publish

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--profile", default="cpu")
ap.add_argument("--size", default=None, help="a dense size of the stored run (default: the smallest)")
ap.add_argument("--experts", type=int, default=None, help="an E > 1 of the stored run (default: the largest)")
a = ap.parse_args()
try:
    print(publish(a.profile, a.size, a.experts))
except ParameterError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
