"""The routers' names and order in the routing study's tables, figures, chapter and claims, derived
from the router registry (`models.routers.ROUTER_CLASSES`, through `models.routed.display_names`):
a registered router always appears, under its declared display name; a kind the registry does not
know (a table from an older run) still appears, under its own name, after the known ones."""
from __future__ import annotations

from scalinglaws.core.validation import ParameterError
from scalinglaws.models import routed as RT
from scalinglaws.models import routers as R

DENSE = RT.DENSE


def display_names() -> dict[str, str]:
    """{kind: display name}: dense, every registered router, the controls, in the book's order."""
    return RT.display_names()


def router_name(kind: str) -> str:
    """The display name of a router, the dense model or a control (`kind` itself if unknown)."""
    return display_names().get(kind, kind)


def ordered(kinds) -> list[str]:
    """`kinds` in the book's order (dense, the registry's routers, the controls), unknown ones last
    (sorted): nothing is dropped."""
    kinds = set(kinds)
    known = [k for k in display_names() if k in kinds]
    return known + sorted(kinds - set(known))


def order_key(kind: str) -> int:
    """Sort key of the loss table's rows: dense first, then the registered routers in the registry's
    order, then every other kind (controls, unknown) in a stable tie."""
    routers = R.routers()
    return -1 if kind == DENSE else routers.index(kind) if kind in routers else 99


def learned(kinds=None) -> list[str]:
    """The routers with a learned weight (`Router.learned`), among `kinds` if given."""
    out = list(R.learned_routers())
    return out if kinds is None else [k for k in out if k in set(kinds)]


def without_distribution() -> list[str]:
    """The registered routers with no router distribution (no learned weight: Hash), left out of
    the entropy tables."""
    return [k for k in R.routers() if k not in R.learned_routers()]


def cell_name(size: str, experts: int, router: str) -> str:
    """A model of the grid by name, as the seeds table's `cell` holds it: "<size>/dense" (E = 1) or
    "<size>/E<E>/<router>" (`routing.seeds` replicates cells; the claims select them by `parse_cell`)."""
    return f"{size}/{DENSE}" if experts == 1 else f"{size}/E{experts}/{router}"


def parse_cell(cell: str) -> tuple[str, int, str]:
    """(size, E, router) of a `cell_name` (router DENSE at E = 1); a malformed name is an error."""
    parts = cell.split("/")
    if len(parts) == 2 and parts[1] == DENSE:
        return parts[0], 1, DENSE
    if len(parts) == 3 and parts[1].startswith("E") and parts[1][1:].isdigit():
        return parts[0], int(parts[1][1:]), parts[2]
    raise ParameterError(f"routing cell {cell!r} must be '<size>/{DENSE}' or '<size>/E<E>/<router>'")
