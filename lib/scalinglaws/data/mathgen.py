"""Generated mathematics in five related subfields, with worked solutions in prose.

    arithmetic, algebra, number_theory, geometry, probability

Each subfield has a dozen or so problem *kinds*; every kind draws its numbers from several
ranges, words its question and its solution in one of several phrasings, works the solution
in several steps with explanatory sentences, and states the answer. A document is an exercise
set of 3-7 problems of one subfield. Everything is deterministic in (subfield, document index,
seed): `random.Random` seeded with a string.

Each problem generator returns a `Problem`: question, solution prose, answer text, and `facts`
(kind, inputs, exact answer) so tests can recompute the answer independently. The shipped
corpora hold about 2M pretrain tokens per subfield; `documents(subfield, n, seed)` makes as
many more as wanted (``python -c "from scalinglaws.data import mathgen; ..."``).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from fractions import Fraction

SUBFIELDS = ("arithmetic", "algebra", "number_theory", "geometry", "probability")


@dataclass
class Problem:
    question: str
    solution: str
    answer: str
    facts: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- wording helpers

NAMES = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kemi", "Liam",
         "Maya", "Noor", "Oscar", "Priya", "Quinn", "Rosa", "Sami", "Tariq", "Uma", "Victor", "Wen", "Yusuf", "Zoe")
ITEMS = (("notebook", "notebooks"), ("pencil", "pencils"), ("apple", "apples"), ("ticket", "tickets"),
         ("book", "books"), ("marble", "marbles"), ("stamp", "stamps"), ("card", "cards"), ("bottle", "bottles"),
         ("plant", "plants"), ("brick", "bricks"), ("lemon", "lemons"), ("candle", "candles"), ("box", "boxes"))
COLOURS = ("red", "blue", "green", "white", "black", "yellow")


def pick(r: random.Random, *options):
    return r.choice(options)


def frac(x: Fraction | int) -> str:
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def par(x) -> str:
    """An operand: negatives in parentheses."""
    s = frac(x) if isinstance(x, Fraction) else str(x)
    return f"({s})" if s.startswith("-") else s


def signed(c: int) -> str:
    return f"+ {c}" if c >= 0 else f"- {-c}"


def poly(coeffs, var: str = "x") -> str:
    """coeffs[k] is the coefficient of var**k; printed highest power first."""
    terms = []
    for k in range(len(coeffs) - 1, -1, -1):
        c = coeffs[k]
        if c == 0:
            continue
        mag = abs(c)
        body = ("" if mag == 1 and k > 0 else frac(mag)) + (var if k >= 1 else "") + (f"^{k}" if k > 1 else "")
        sign = ("-" if c < 0 else "") if not terms else (" - " if c < 0 else " + ")
        terms.append(sign + body)
    return "".join(terms) or "0"


def dec(x: Fraction, places: int = 4) -> str:
    """A terminating or rounded decimal without trailing zeros."""
    s = f"{float(x):.{places}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def nonzero(r: random.Random, lo: int, hi: int, exclude=(0,)) -> int:
    while True:
        v = r.randint(lo, hi)
        if v not in exclude:
            return v


def scale(r: random.Random) -> tuple[int, int]:
    """A number range: small, medium or large operands."""
    return pick(r, (2, 20), (10, 99), (100, 999), (1000, 99999))


# ============================================================================= arithmetic

def a_add(r):
    lo, hi = scale(r)
    xs = [r.randint(lo, hi) for _ in range(r.randint(2, 4))]
    total = sum(xs)
    partial, steps = xs[0], []
    for x in xs[1:]:
        steps.append(f"{partial} + {x} = {partial + x}")
        partial += x
    q = pick(r, f"Compute {' + '.join(map(str, xs))}.", f"Find the sum of {', '.join(map(str, xs[:-1]))} and {xs[-1]}.",
             f"What is {' + '.join(map(str, xs))}?")
    sol = (pick(r, "Add the numbers one at a time, keeping a running total. ", "We add from left to right. ",
                "Addition can be done in any order; here we go left to right. ")
           + "; ".join(steps) + ". " + pick(r, f"The sum is {total}.", f"So the total is {total}.",
                                             f"Therefore the answer is {total}."))
    return Problem(q, sol, str(total), {"kind": "add", "xs": xs, "answer": total})


def a_sub(r):
    lo, hi = scale(r)
    a, b = r.randint(lo, hi), r.randint(lo, hi)
    a, b = max(a, b), min(a, b)
    d = a - b
    q = pick(r, f"Compute {a} - {b}.", f"Subtract {b} from {a}.", f"How much greater is {a} than {b}?")
    sol = (f"The difference is {a} - {b} = {d}. "
           + pick(r, f"To check, add back: {d} + {b} = {a}, as it should be.",
                  f"Check by addition: {b} + {d} = {a}.", "Adding the difference to the smaller number gives the larger one back, "
                  f"since {b} + {d} = {a}."))
    return Problem(q, sol, str(d), {"kind": "sub", "a": a, "b": b, "answer": d})


def a_mul(r):
    a = r.randint(*pick(r, (12, 99), (100, 999), (1000, 9999)))
    b = r.randint(*pick(r, (3, 9), (12, 99), (100, 999)))
    digits = [int(c) for c in str(b)][::-1]
    parts = [(dgt * 10 ** k, a * dgt * 10 ** k) for k, dgt in enumerate(digits) if dgt]
    prod = a * b
    q = pick(r, f"Compute {a} × {b}.", f"Multiply {a} by {b}.", f"What is the product of {a} and {b}?")
    if len(parts) == 1:
        sol = f"{a} × {b} = {prod}."
    else:
        sol = (pick(r, f"Break {b} into place values: {' + '.join(str(p) for p, _ in reversed(parts))}. ",
                    f"Write {b} as {' + '.join(str(p) for p, _ in reversed(parts))} and multiply each part by {a}. ")
               + "; ".join(f"{a} × {p} = {v}" for p, v in reversed(parts)) + ". "
               + f"Adding the partial products: {' + '.join(str(v) for _, v in reversed(parts))} = {prod}.")
    return Problem(q, sol, str(prod), {"kind": "mul", "a": a, "b": b, "answer": prod})


def a_div(r):
    d = r.randint(*pick(r, (3, 9), (11, 49), (12, 250)))
    qt = r.randint(*pick(r, (10, 99), (100, 9999)))
    rem = r.randint(0, d - 1) if r.random() < 0.6 else 0
    n = d * qt + rem
    q = pick(r, f"Divide {n} by {d}.", f"What are the quotient and remainder when {n} is divided by {d}?",
             f"Compute {n} ÷ {d}, giving a remainder if there is one.")
    sol = (f"{pick(r, 'Estimate first', 'Start with an estimate')}: {d} × {qt} = {d * qt}, and {d} × {qt + 1} = {d * (qt + 1)} "
           f"is already more than {n}. So the quotient is {qt} and the remainder is {n} - {d * qt} = {rem}. "
           + (f"Indeed {n} = {d} × {qt} + {rem}." if rem else f"The division is exact: {n} = {d} × {qt}."))
    return Problem(q, sol, f"quotient {qt}, remainder {rem}", {"kind": "div", "n": n, "d": d, "answer": (qt, rem)})


def a_order(r):
    a, b, c, d, e = (r.randint(2, 30) for _ in range(5))
    form = r.randint(0, 2)
    if form == 0:
        expr, val = f"{a} + {b} × {c} - {d}", a + b * c - d
        steps = f"Multiplication comes before addition and subtraction: {b} × {c} = {b * c}. Then {a} + {b * c} = {a + b * c}, and {a + b * c} - {d} = {val}."
    elif form == 1:
        expr, val = f"({a} + {b}) × {c} - {d} × {e}", (a + b) * c - d * e
        steps = (f"Brackets first: {a} + {b} = {a + b}. Then the two products: {a + b} × {c} = {(a + b) * c} and "
                 f"{d} × {e} = {d * e}. Finally {(a + b) * c} - {d * e} = {val}.")
    else:
        expr, val = f"{a * b} ÷ {b} + {c}^2 - {d}", a + c * c - d
        steps = (f"Powers first: {c}^2 = {c * c}. Then the division: {a * b} ÷ {b} = {a}. "
                 f"Now add and subtract from left to right: {a} + {c * c} = {a + c * c}, then {a + c * c} - {d} = {val}.")
    q = pick(r, f"Evaluate {expr}.", f"Find the value of {expr}.", f"Compute {expr}, respecting the order of operations.")
    return Problem(q, steps, str(val), {"kind": "order", "expr": expr, "answer": val})


def a_fraction(r):
    x = Fraction(r.randint(1, 12), r.randint(2, 15))
    y = Fraction(r.randint(1, 12), r.randint(2, 15))
    op = pick(r, "+", "-", "×", "÷")
    val = {"+": x + y, "-": x - y, "×": x * y, "÷": x / y}[op]
    xs, ys = f"{x.numerator}/{x.denominator}", f"{y.numerator}/{y.denominator}"
    if x.denominator == 1:
        xs = f"{x.numerator}/1"
    if y.denominator == 1:
        ys = f"{y.numerator}/1"
    if op in "+-":
        L = x.denominator * y.denominator // math.gcd(x.denominator, y.denominator)
        nx, ny = x.numerator * (L // x.denominator), y.numerator * (L // y.denominator)
        raw = nx + ny if op == "+" else nx - ny
        sol = (f"{pick(r, 'The least common denominator', 'The smallest common denominator')} of {x.denominator} and "
               f"{y.denominator} is {L}. Rewrite: {xs} = {nx}/{L} and {ys} = {ny}/{L}. "
               f"Then {nx}/{L} {op} {ny}/{L} = {raw}/{L}"
               + (f", which simplifies to {frac(val)}." if math.gcd(abs(raw), L) > 1 else "."))
    elif op == "×":
        sol = (f"Multiply numerators and denominators: ({x.numerator} × {y.numerator})/({x.denominator} × {y.denominator}) "
               f"= {x.numerator * y.numerator}/{x.denominator * y.denominator}, which in lowest terms is {frac(val)}.")
    else:
        sol = (f"Dividing by a fraction means multiplying by its reciprocal: {xs} ÷ {ys} = {xs} × "
               f"{y.denominator}/{y.numerator} = {x.numerator * y.denominator}/{x.denominator * y.numerator}, "
               f"that is {frac(val)} in lowest terms.")
    return Problem(f"Compute {xs} {op} {ys}.", sol, frac(val), {"kind": "fraction", "x": x, "y": y, "op": op, "answer": val})


def a_decimal(r):
    a = Fraction(r.randint(1, 99999), 10 ** r.randint(1, 3))
    b = Fraction(r.randint(1, 9999), 10 ** r.randint(1, 2))
    op = pick(r, "+", "-", "×")
    val = {"+": a + b, "-": a - b, "×": a * b}[op]
    if op == "×":
        pa, pb = len(dec(a).partition(".")[2]), len(dec(b).partition(".")[2])
        ia, ib = int(a * 10 ** pa), int(b * 10 ** pb)
        sol = (f"Ignore the decimal points and multiply the whole numbers: {ia} × {ib} = {ia * ib}. "
               f"The factors have {pa} and {pb} decimal places, so the product has {pa + pb}: {dec(val, 6)}.")
    else:
        sol = (pick(r, "Line up the decimal points", "Write the numbers with their decimal points aligned")
               + f" and {'add' if op == '+' else 'subtract'} column by column: {dec(a)} {op} {dec(b)} = {dec(val, 6)}.")
    return Problem(f"Compute {dec(a)} {op} {dec(b)}.", sol, dec(val, 6), {"kind": "decimal", "a": a, "b": b, "op": op, "answer": val})


def a_percent(r):
    p = pick(r, 5, 10, 12, 15, 20, 25, 30, 35, 40, 45, 60, 75, 80, 120, 150)
    n = r.randint(2, 400) * pick(r, 1, 4, 20)
    val = Fraction(p * n, 100)
    form = r.randint(0, 2)
    if form == 0:
        q = pick(r, f"What is {p}% of {n}?", f"Find {p} percent of {n}.")
        sol = f"{p}% means {p}/100, so {p}% of {n} is {n} × {p}/100 = {n * p}/100 = {dec(val)}."
        return Problem(q, sol, dec(val), {"kind": "percent_of", "p": p, "n": n, "answer": val})
    if form == 1:
        new = n + val
        q = f"A price of {n} rises by {p}%. What is the new price?"
        sol = f"The increase is {p}% of {n} = {dec(val)}. The new price is {n} + {dec(val)} = {dec(new)}; equivalently {n} × {dec(Fraction(100 + p, 100))} = {dec(new)}."
        return Problem(q, sol, dec(new), {"kind": "percent_up", "p": p, "n": n, "answer": new})
    part = Fraction(r.randint(1, n), 1)
    pc = part / n * 100
    q = f"What percentage of {n} is {part}?"
    sol = f"Divide the part by the whole and multiply by 100: {part}/{n} × 100 = {dec(pc, 2)}%."
    return Problem(q, sol, f"{dec(pc, 2)}%", {"kind": "percent_what", "part": part, "n": n, "answer": pc})


def a_word(r):
    name, (one, many) = pick(r, *NAMES), pick(r, *ITEMS)
    price, k, paid = r.randint(2, 95), r.randint(2, 24), 0
    cost = price * k
    paid = (cost // 50 + 1) * 50 if r.random() < 0.5 else (cost // 100 + 1) * 100
    q = pick(r, f"{name} buys {k} {many} at {price} cents each and pays with {paid} cents. How much change does {name} get?",
             f"Each {one} costs {price} cents. {name} buys {k} of them and hands over {paid} cents. What is the change?")
    sol = (f"First the cost: {k} × {price} = {cost} cents. "
           f"{pick(r, 'The change is what is left of the payment', 'Then subtract the cost from the payment')}: "
           f"{paid} - {cost} = {paid - cost} cents.")
    return Problem(q, sol, f"{paid - cost} cents", {"kind": "change", "k": k, "price": price, "paid": paid,
                                                    "answer": paid - cost})


def a_share(r):
    name1, name2 = r.sample(NAMES, 2)
    a, b = r.randint(1, 9), r.randint(1, 9)
    unit = r.randint(2, 60)
    total = (a + b) * unit
    q = f"{name1} and {name2} share {total} {pick(r, 'marbles', 'euros', 'stickers', 'coins')} in the ratio {a}:{b}. How many does each get?"
    sol = (f"The ratio has {a} + {b} = {a + b} parts. One part is {total} ÷ {a + b} = {unit}. "
           f"So {name1} gets {a} × {unit} = {a * unit} and {name2} gets {b} × {unit} = {b * unit}; "
           f"check: {a * unit} + {b * unit} = {total}.")
    return Problem(q, sol, f"{a * unit} and {b * unit}", {"kind": "ratio", "a": a, "b": b, "total": total,
                                                          "answer": (a * unit, b * unit)})


def a_round(r):
    n = r.randint(1000, 9999999)
    place = pick(r, 10, 100, 1000)
    lo = n // place * place
    val = lo + place if n - lo >= place / 2 else lo
    word = {10: "ten", 100: "hundred", 1000: "thousand"}[place]
    q = f"Round {n} to the nearest {word}."
    sol = (f"{n} lies between {lo} and {lo + place}. The remainder {n - lo} is "
           f"{'at least' if n - lo >= place / 2 else 'less than'} half of {place}, so we round "
           f"{'up' if val > lo else 'down'} to {val}.")
    return Problem(q, sol, str(val), {"kind": "round", "n": n, "place": place, "answer": val})


def a_units(r):
    kind = r.randint(0, 2)
    if kind == 0:
        h, m = r.randint(1, 9), r.randint(1, 59)
        v = h * 60 + m
        return Problem(f"How many minutes are there in {h} hours and {m} minutes?",
                       f"One hour is 60 minutes, so {h} hours are {h} × 60 = {h * 60} minutes; adding {m} gives {v}.",
                       f"{v} minutes", {"kind": "units", "answer": v, "check": h * 60 + m})
    if kind == 1:
        km = Fraction(r.randint(1, 999), 10)
        v = km * 1000
        return Problem(f"Convert {dec(km)} km to metres.", f"A kilometre is 1000 metres, so {dec(km)} × 1000 = {dec(v)} m.",
                       f"{dec(v)} m", {"kind": "units", "answer": v, "check": km * 1000})
    s = r.randint(100, 99999)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return Problem(f"Write {s} seconds in hours, minutes and seconds.",
                   f"{s} ÷ 3600 = {h} hours with {rest} seconds left; {rest} ÷ 60 = {m} minutes with {sec} seconds left.",
                   f"{h} h {m} min {sec} s", {"kind": "units", "answer": h * 3600 + m * 60 + sec, "check": s})


ARITHMETIC = (a_add, a_sub, a_mul, a_div, a_order, a_fraction, a_decimal, a_percent, a_word, a_share, a_round, a_units)


# ============================================================================= algebra

def g_linear(r):
    a = nonzero(r, -15, 15, (0, 1))
    x = r.randint(-30, 30)
    b = r.randint(-60, 60)
    c = nonzero(r, -9, 9, (0, a))
    d = (a - c) * x + b  # a x + b = c x + d
    if r.random() < 0.5:
        rhs_val = a * x + b
        q = pick(r, f"Solve {a}x {signed(b)} = {rhs_val}.", f"Find x if {a}x {signed(b)} = {rhs_val}.")
        sol = (f"{pick(r, 'Isolate the term in x', 'Move the constant to the right-hand side')}: "
               f"{a}x = {rhs_val} - {par(b)} = {rhs_val - b}. Divide both sides by {a}: x = {rhs_val - b}/{par(a)} = {x}. "
               + pick(r, f"Check: {a} × {par(x)} {signed(b)} = {rhs_val}.", "Substituting back confirms it."))
    else:
        q = pick(r, f"Solve {a}x {signed(b)} = {c}x {signed(d)}.", f"For which x is {a}x {signed(b)} equal to {c}x {signed(d)}?")
        sol = (f"Collect the x terms on the left and the constants on the right: ({a} - {par(c)})x = {d} - {par(b)}, "
               f"that is {a - c}x = {d - b}. Dividing by {a - c} gives x = {x}. "
               f"Check: the left side is {a * x + b} and the right side is {c * x + d}.")
    return Problem(q, sol, f"x = {x}", {"kind": "linear", "x": x, "answer": x, "q": q})


def g_system(r):
    x, y = r.randint(-12, 12), r.randint(-12, 12)
    while True:
        a1, b1, a2, b2 = (nonzero(r, -7, 7) for _ in range(4))
        if a1 * b2 - a2 * b1:
            break
    c1, c2 = a1 * x + b1 * y, a2 * x + b2 * y
    det = a1 * b2 - a2 * b1
    q = pick(r, "Solve the system ", "Find x and y such that ", "Solve simultaneously: ") + \
        f"{a1}x {signed(b1)}y = {c1} and {a2}x {signed(b2)}y = {c2}."
    if r.random() < 0.5:
        sol = (f"Eliminate y: multiply the first equation by {b2} and the second by {b1}, then subtract. "
               f"This gives ({a1 * b2} - {par(a2 * b1)})x = {c1 * b2} - {par(c2 * b1)}, so {det}x = {c1 * b2 - c2 * b1} "
               f"and x = {x}. Put x = {x} into the first equation: {b1}y = {c1} - {par(a1)} × {par(x)} = {c1 - a1 * x}, "
               f"so y = {y}.")
    else:
        sol = (f"Use Cramer's rule. The determinant is {a1} × {b2} - {par(b1)} × {par(a2)} = {det}. "
               f"Then x = ({c1} × {b2} - {par(b1)} × {par(c2)})/{det} = {c1 * b2 - b1 * c2}/{det} = {x} and "
               f"y = ({a1} × {c2} - {par(c1)} × {par(a2)})/{det} = {a1 * c2 - c1 * a2}/{det} = {y}.")
    return Problem(q, sol, f"x = {x}, y = {y}", {"kind": "system", "coef": (a1, b1, c1, a2, b2, c2), "answer": (x, y)})


def g_quadratic(r):
    k = nonzero(r, -3, 3) if r.random() < 0.3 else 1
    p, q_ = r.randint(-15, 15), r.randint(-15, 15)
    co = [k * p * q_, -k * (p + q_), k]
    roots = sorted({p, q_})
    if r.random() < 0.5:
        sol = ((f"Divide by {k} first: {poly([p * q_, -(p + q_), 1])} = 0. " if k != 1 else "")
               + f"We need two numbers whose product is {p * q_} and whose sum is {p + q_}: {p} and {q_}. "
               f"So the quadratic factors as (x {signed(-p)})(x {signed(-q_)}) = 0, and a product is zero only when a factor is.")
    else:
        a, b, c = co[2], co[1], co[0]
        disc = b * b - 4 * a * c
        s = math.isqrt(disc)
        sol = (f"Use the quadratic formula with a = {a}, b = {b}, c = {c}. The discriminant is b^2 - 4ac = "
               f"{b * b} - {par(4 * a * c)} = {disc}, whose square root is {s}. "
               f"So x = ({par(-b)} ± {s})/{2 * a}, giving {frac(Fraction(-b + s, 2 * a))} and {frac(Fraction(-b - s, 2 * a))}."
               + (" The discriminant is zero, so the root is repeated." if disc == 0 else ""))
    q = pick(r, f"Solve {poly(co)} = 0.", f"Find the roots of {poly(co)}.", f"For which x does {poly(co)} vanish?")
    return Problem(q, sol, " or ".join(f"x = {v}" for v in roots), {"kind": "quadratic", "coeffs": co, "answer": roots})


def g_expand(r):
    a, b, c, d = nonzero(r, -9, 9), r.randint(-12, 12), nonzero(r, -9, 9), r.randint(-12, 12)
    co = [b * d, a * d + b * c, a * c]
    q = pick(r, f"Expand ({poly([b, a])})({poly([d, c])}).", f"Multiply out ({poly([b, a])})({poly([d, c])}).")
    sol = (f"Multiply each term of the first bracket by each term of the second: "
           f"{par(a)}x × {par(c)}x = {a * c}x^2, {par(a)}x × {par(d)} = {a * d}x, {par(b)} × {par(c)}x = {b * c}x, "
           f"{par(b)} × {par(d)} = {b * d}. Collecting like terms gives {poly(co)}.")
    return Problem(q, sol, poly(co), {"kind": "expand", "ab": (a, b), "cd": (c, d), "answer": co})


def g_inequality(r):
    a = nonzero(r, -9, 9, (0,))
    b, c = r.randint(-40, 40), r.randint(-40, 40)
    sym = pick(r, "<", ">", "≤", "≥")
    bound = Fraction(c - b, a)
    flip = {"<": ">", ">": "<", "≤": "≥", "≥": "≤"}
    final = flip[sym] if a < 0 else sym
    q = f"Solve the inequality {a}x {signed(b)} {sym} {c}."
    sol = (f"Subtract {par(b)} from both sides: {a}x {sym} {c - b}. Divide by {a}"
           + (", remembering that dividing by a negative number reverses the inequality" if a < 0 else
              "; it is positive, so the direction stays")
           + f": x {final} {frac(bound)}.")
    return Problem(q, sol, f"x {final} {frac(bound)}", {"kind": "inequality", "a": a, "b": b, "c": c, "sym": sym,
                                                        "answer": (final, bound)})


def g_function(r):
    a, b, c = nonzero(r, -6, 6), r.randint(-9, 9), r.randint(-9, 9)
    m, n = nonzero(r, -5, 5), r.randint(-9, 9)
    x0 = r.randint(-5, 5)
    gx = m * x0 + n
    fg = a * gx * gx + b * gx + c
    q = f"Let f(x) = {poly([c, b, a])} and g(x) = {poly([n, m])}. Compute f(g({x0}))."
    sol = (f"Work from the inside out. First g({x0}) = {m} × {par(x0)} {signed(n)} = {gx}. "
           f"Then f({gx}) = {a} × {par(gx)}^2 + {par(b)} × {par(gx)} + {par(c)} = {a * gx * gx} + {par(b * gx)} + {par(c)} = {fg}.")
    return Problem(q, sol, str(fg), {"kind": "compose", "f": (a, b, c), "g": (m, n), "x0": x0, "answer": fg})


def g_sequence(r):
    if r.random() < 0.5:
        a1, d, n = r.randint(-20, 40), nonzero(r, -9, 12), r.randint(8, 60)
        an = a1 + (n - 1) * d
        s = n * (a1 + an) // 2
        terms = ", ".join(str(a1 + k * d) for k in range(4))
        q = f"The arithmetic sequence {terms}, ... continues in the same way. Find its {n}th term and the sum of its first {n} terms."
        sol = (f"The first term is {a1} and the common difference is {d}. The nth term is a1 + (n - 1)d, so "
               f"a{n} = {a1} + {n - 1} × {par(d)} = {an}. The sum of the first n terms is n(a1 + an)/2 = "
               f"{n} × ({a1} + {par(an)})/2 = {s}.")
        return Problem(q, sol, f"a{n} = {an}, sum {s}", {"kind": "arith_seq", "a1": a1, "d": d, "n": n, "answer": (an, s)})
    a1, rt, n = r.randint(1, 9), pick(r, 2, 3, -2, 5), r.randint(4, 10)
    an = a1 * rt ** (n - 1)
    s = a1 * (rt ** n - 1) // (rt - 1)
    terms = ", ".join(str(a1 * rt ** k) for k in range(4))
    q = f"Find the {n}th term and the sum of the first {n} terms of the geometric sequence {terms}, ..."
    sol = (f"Each term is {rt} times the one before, so the ratio is {rt} and an = a1 × r^(n-1) = {a1} × {par(rt)}^{n - 1} = {an}. "
           f"The sum is a1(r^n - 1)/(r - 1) = {a1} × ({par(rt)}^{n} - 1)/({rt} - 1) = {s}.")
    return Problem(q, sol, f"a{n} = {an}, sum {s}", {"kind": "geom_seq", "a1": a1, "r": rt, "n": n, "answer": (an, s)})


def g_ages(r):
    n1, n2 = r.sample(NAMES, 2)
    y = r.randint(3, 30)
    k = r.randint(2, 5)
    x = k * y  # n1 is k times as old as n2
    t = r.randint(2, 20)
    q = (f"{n1} is {k} times as old as {n2}. In {t} years the sum of their ages will be {x + y + 2 * t}. "
         f"How old are they now?")
    sol = (f"Let {n2}'s age be a, so {n1} is {k}a. In {t} years their ages are {k}a + {t} and a + {t}, which add up to "
           f"{k + 1}a + {2 * t} = {x + y + 2 * t}. So {k + 1}a = {x + y}, a = {y}, and {n1} is {k} × {y} = {x}.")
    return Problem(q, sol, f"{n1} {x}, {n2} {y}", {"kind": "ages", "k": k, "t": t, "sum": x + y + 2 * t, "answer": (x, y)})


def g_consecutive(r):
    n, first = r.randint(2, 5), r.randint(-20, 200)
    step = pick(r, 1, 2)
    total = sum(first + step * i for i in range(n))
    what = "consecutive integers" if step == 1 else ("consecutive even integers" if first % 2 == 0 else "consecutive odd integers")
    q = f"The sum of {n} {what} is {total}. Find them."
    sol = (f"Call the smallest one m; the others are " + ", ".join(f"m + {step * i}" for i in range(1, n))
           + f". Their sum is {n}m + {step * n * (n - 1) // 2} = {total}, so {n}m = {total - step * n * (n - 1) // 2} and m = {first}.")
    ans = ", ".join(str(first + step * i) for i in range(n))
    return Problem(q, sol, ans, {"kind": "consecutive", "n": n, "step": step, "total": total,
                                 "answer": [first + step * i for i in range(n)]})


def g_slope_line(r):
    x1, y1 = r.randint(-10, 10), r.randint(-10, 10)
    x2 = nonzero(r, -10, 10, (x1,))
    y2 = r.randint(-10, 10)
    m = Fraction(y2 - y1, x2 - x1)
    c = y1 - m * x1
    q = f"Find the equation of the line through ({x1}, {y1}) and ({x2}, {y2}) in the form y = mx + c."
    sol = (f"The slope is (y2 - y1)/(x2 - x1) = ({y2} - {par(y1)})/({x2} - {par(x1)}) = {frac(m)}. "
           f"The intercept follows from the first point: c = {y1} - {par(m)} × {par(x1)} = {frac(c)}.")
    return Problem(q, sol, f"y = {frac(m)}x + {frac(c)}" if c >= 0 else f"y = {frac(m)}x - {frac(-c)}",
                   {"kind": "line", "p1": (x1, y1), "p2": (x2, y2), "answer": (m, c)})


ALGEBRA = (g_linear, g_system, g_quadratic, g_expand, g_inequality, g_function, g_sequence, g_ages, g_consecutive,
           g_slope_line)


# ============================================================================= number theory

def _factor(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


def _powers(fs: list[int]) -> str:
    return " × ".join(f"{q}^{fs.count(q)}" if fs.count(q) > 1 else str(q) for q in sorted(set(fs)))


def n_gcd(r):
    g = r.randint(2, 60)
    a, b = g * r.randint(2, 90), g * r.randint(2, 90)
    a, b = max(a, b), min(a, b)
    if a == b:
        b = g
    steps, x, y = [], a, b
    while y:
        steps.append(f"{x} = {x // y} × {y} + {x % y}")
        x, y = y, x % y
    lcm = a * b // x
    q = pick(r, f"Find gcd({a}, {b}) and lcm({a}, {b}).", f"Compute the greatest common divisor and least common multiple of {a} and {b}.")
    sol = (pick(r, "Apply the Euclidean algorithm, dividing and keeping the remainder: ", "By Euclid's algorithm: ")
           + "; ".join(steps) + f". The last non-zero remainder, {x}, is the gcd. "
           f"Since gcd × lcm = a × b, the lcm is {a} × {b} / {x} = {lcm}.")
    return Problem(q, sol, f"gcd {x}, lcm {lcm}", {"kind": "gcd", "a": a, "b": b, "answer": (x, lcm)})


def n_factor(r):
    n = 1
    for _ in range(r.randint(2, 6)):
        n *= pick(r, 2, 2, 3, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31)
    fs, steps, m = _factor(n), [], n
    for p in fs:
        steps.append(f"{m} ÷ {p} = {m // p}")
        m //= p
    q = pick(r, f"Write {n} as a product of primes.", f"Find the prime factorisation of {n}.")
    sol = ("Divide by the smallest prime that goes in, again and again: " + "; ".join(steps) + ". "
           f"So {n} = {_powers(fs)}.")
    return Problem(q, sol, _powers(fs), {"kind": "factor", "n": n, "answer": fs})


def n_divisors(r):
    n = 1
    for _ in range(r.randint(2, 5)):
        n *= pick(r, 2, 2, 3, 3, 5, 7, 11, 13)
    fs = _factor(n)
    exps = {p: fs.count(p) for p in sorted(set(fs))}
    count = math.prod(e + 1 for e in exps.values())
    sigma = math.prod((p ** (e + 1) - 1) // (p - 1) for p, e in exps.items())
    q = f"How many positive divisors does {n} have, and what is their sum?"
    sol = (f"Factor first: {n} = {_powers(fs)}. A divisor picks an exponent for each prime independently, so the number "
           f"of divisors is " + " × ".join(f"({e} + 1)" for e in exps.values()) + f" = {count}. The sum of divisors is the "
           f"product of 1 + p + ... + p^e over the primes: " + " × ".join(f"{(p ** (e + 1) - 1) // (p - 1)}" for p, e in exps.items())
           + f" = {sigma}.")
    return Problem(q, sol, f"{count} divisors, sum {sigma}", {"kind": "divisors", "n": n, "answer": (count, sigma)})


def n_powmod(r):
    a, k, m = r.randint(2, 99), r.randint(5, 200), r.randint(5, 97)
    bits = bin(k)[2:]
    sq, cur, e = [], a % m, 1
    while e * 2 <= k:
        sq.append(f"{a}^{e * 2} ≡ {cur}^2 = {cur * cur} ≡ {cur * cur % m}")
        cur, e = cur * cur % m, e * 2
    val = pow(a, k, m)
    q = pick(r, f"Compute {a}^{k} mod {m}.", f"Find the remainder when {a}^{k} is divided by {m}.")
    sol = (f"Use repeated squaring modulo {m}. In binary {k} is {bits}, so {a}^{k} is a product of powers {a}^(2^j). "
           f"Start with {a} ≡ {a % m}; " + "; ".join(sq[:8]) + ("; and so on" if len(sq) > 8 else "")
           + f". Multiplying the powers for the 1 bits and reducing each time gives {val}.")
    return Problem(q, sol, str(val), {"kind": "powmod", "a": a, "k": k, "m": m, "answer": val})


def n_congruence(r):
    m = pick(r, 7, 9, 11, 13, 15, 17, 19, 23, 25, 29, 31)
    a = nonzero(r, 2, m - 1)
    while math.gcd(a, m) != 1:
        a = nonzero(r, 2, m - 1)
    x = r.randint(0, m - 1)
    b = a * x % m
    inv = pow(a, -1, m)
    q = f"Solve {a}x ≡ {b} (mod {m})."
    sol = (f"Since gcd({a}, {m}) = 1, {a} has an inverse modulo {m}. Trying multiples, {a} × {inv} = {a * inv} ≡ 1, so the "
           f"inverse is {inv}. Multiply both sides by it: x ≡ {inv} × {b} = {inv * b} ≡ {x} (mod {m}).")
    return Problem(q, sol, f"x ≡ {x} (mod {m})", {"kind": "congruence", "a": a, "b": b, "m": m, "answer": x})


def n_base(r):
    n = r.randint(5, 5000)
    base = pick(r, 2, 3, 5, 7, 8, 16)
    digits, m, steps = [], n, []
    while m:
        steps.append(f"{m} = {m // base} × {base} + {m % base}")
        digits.append("0123456789ABCDEF"[m % base])
        m //= base
    out = "".join(reversed(digits))
    q = pick(r, f"Write {n} in base {base}.", f"Convert the decimal number {n} to base {base}.")
    sol = (f"Divide by {base} repeatedly and record the remainders: " + "; ".join(steps)
           + f". Reading the remainders from last to first gives {out}.")
    return Problem(q, sol, f"{out} (base {base})", {"kind": "base", "n": n, "base": base, "answer": out})


def n_phi(r):
    n = r.randint(10, 2000)
    fs = sorted(set(_factor(n)))
    ph = n
    for p in fs:
        ph = ph // p * (p - 1)
    q = f"Compute Euler's totient φ({n})."
    sol = (f"The distinct prime factors of {n} are {', '.join(map(str, fs))}. φ(n) = n × Π(1 - 1/p), so "
           f"φ({n}) = {n}" + "".join(f" × {p - 1}/{p}" for p in fs) + f" = {ph}.")
    return Problem(q, sol, str(ph), {"kind": "phi", "n": n, "answer": ph})


def n_crt(r):
    m1, m2 = r.sample([3, 4, 5, 7, 8, 9, 11, 13], 2)
    while math.gcd(m1, m2) != 1:
        m1, m2 = r.sample([3, 4, 5, 7, 8, 9, 11, 13], 2)
    x = r.randint(0, m1 * m2 - 1)
    a1, a2 = x % m1, x % m2
    cands = [a1 + m1 * t for t in range(m2)]
    q = f"Find the smallest non-negative x with x ≡ {a1} (mod {m1}) and x ≡ {a2} (mod {m2})."
    sol = (f"The numbers ≡ {a1} (mod {m1}) below {m1 * m2} are {', '.join(map(str, cands))}. Of these, the one that leaves "
           f"remainder {a2} on division by {m2} is {x}. By the Chinese remainder theorem it is unique modulo {m1 * m2}.")
    return Problem(q, sol, str(x), {"kind": "crt", "m": (m1, m2), "a": (a1, a2), "answer": x})


def n_isprime(r):
    n = r.randint(50, 5000) | 1
    limit = math.isqrt(n)
    fs = _factor(n)
    if len(fs) == 1:
        sol = (f"It suffices to test primes up to √{n} ≈ {limit}. None of 3, 5, 7, ... up to {limit} divides {n}, "
               f"so {n} is prime.")
        ans = "prime"
    else:
        sol = (f"Test small primes up to √{n} ≈ {limit}. {fs[0]} divides it: {n} = {fs[0]} × {n // fs[0]}. "
               f"So {n} is composite.")
        ans = "composite"
    return Problem(f"Is {n} prime?", sol, ans, {"kind": "isprime", "n": n, "answer": ans == "prime"})


def n_digitsum(r):
    n = r.randint(10 ** 4, 10 ** 9)
    d = pick(r, 3, 9, 11)
    if d in (3, 9):
        s = sum(map(int, str(n)))
        sol = f"A number is divisible by {d} exactly when its digit sum is. The digit sum of {n} is {s}, and {s} mod {d} = {s % d}."
    else:
        digs = str(n)[::-1]
        alt = sum(int(c) * (1 if i % 2 == 0 else -1) for i, c in enumerate(digs))
        sol = (f"For 11, take the alternating sum of the digits from the right: {alt}. "
               f"{n} is divisible by 11 exactly when this is; {alt} mod 11 = {alt % 11}.")
    yes = n % d == 0
    sol += f" So {n} {'is' if yes else 'is not'} divisible by {d} (the remainder is {n % d})."
    return Problem(f"Is {n} divisible by {d}?", sol, "yes" if yes else "no", {"kind": "divisible", "n": n, "d": d, "answer": yes})


NUMBER_THEORY = (n_gcd, n_factor, n_divisors, n_powmod, n_congruence, n_base, n_phi, n_crt, n_isprime, n_digitsum)


# ============================================================================= geometry

def _sqrt_simplify(n: int) -> tuple[int, int]:
    """sqrt(n) = a sqrt(b) with b square-free."""
    a, b = 1, n
    k = 2
    while k * k <= b:
        while b % (k * k) == 0:
            a, b = a * k, b // (k * k)
        k += 1
    return a, b


def _surd(n: int) -> str:
    a, b = _sqrt_simplify(n)
    return str(a) if b == 1 else (f"√{b}" if a == 1 else f"{a}√{b}")


def e_rectangle(r):
    w, h = r.randint(2, 120), r.randint(2, 120)
    unit = pick(r, "cm", "m", "mm", "ft")
    q = pick(r, f"A rectangle is {w} {unit} wide and {h} {unit} tall. Find its area and perimeter.",
             f"Find the perimeter and the area of a {w} {unit} by {h} {unit} rectangle.")
    sol = pick(r, f"The area is width × height = {w} × {h} = {w * h} {unit}^2. The perimeter is 2 × (width + height) = "
                  f"2 × ({w} + {h}) = {2 * (w + h)} {unit}.",
               f"Area counts the unit squares inside: {w} rows of {h}, so {w * h} {unit}^2. The perimeter walks once around "
               f"the edge, two sides of {w} and two of {h}: {w} + {h} + {w} + {h} = {2 * (w + h)} {unit}.",
               f"Multiply the side lengths for the area, {w} × {h} = {w * h} {unit}^2, and double their sum for the "
               f"perimeter, 2 × {w + h} = {2 * (w + h)} {unit}. Note that area is in square units, perimeter in plain {unit}.")
    return Problem(q, sol, f"area {w * h} {unit}^2, perimeter {2 * (w + h)} {unit}",
                   {"kind": "rectangle", "w": w, "h": h, "answer": (w * h, 2 * (w + h))})


def e_pythagoras(r):
    a, b = r.randint(2, 40), r.randint(2, 40)
    if r.random() < 0.4:
        m, n = r.randint(2, 8), 1
        n = r.randint(1, m - 1)
        k = r.randint(1, 5)
        a, b = k * (m * m - n * n), k * 2 * m * n
    c2 = a * a + b * b
    q = pick(r, f"A right triangle has legs {a} and {b}. How long is the hypotenuse?",
             f"The two shorter sides of a right-angled triangle are {a} and {b}. Find the longest side.")
    sol = (f"By Pythagoras' theorem c^2 = a^2 + b^2 = {a * a} + {b * b} = {c2}, so c = √{c2}"
           + (f" = {_surd(c2)}." if _surd(c2) != f"√{c2}" else ", which does not simplify.")
           + (f" (approximately {math.sqrt(c2):.3f})." if _sqrt_simplify(c2)[1] != 1 else ""))
    return Problem(q, sol, _surd(c2), {"kind": "pythagoras", "a": a, "b": b, "answer": c2})


def e_circle(r):
    rad = r.randint(1, 50)
    given = pick(r, "radius", "diameter")
    v = rad if given == "radius" else 2 * rad
    q = f"A circle has {given} {v}. Find its circumference and area in terms of π."
    sol = ((f"The radius is half the diameter, {v}/2 = {rad}. " if given == "diameter" else "")
           + pick(r, f"Circumference = 2πr = 2 × π × {rad} = {2 * rad}π (about {2 * rad * math.pi:.2f}). "
                     f"Area = πr^2 = π × {rad}^2 = {rad * rad}π (about {rad * rad * math.pi:.2f}).",
                  f"The distance around is π times the diameter, π × {2 * rad} = {2 * rad}π ≈ {2 * rad * math.pi:.2f}; "
                  f"the area is π times the square of the radius, π × {rad * rad} = {rad * rad}π ≈ {rad * rad * math.pi:.2f}.",
                  f"With r = {rad}: C = 2πr = {2 * rad}π and A = πr^2 = {rad * rad}π. Taking π ≈ 3.1416 these are about "
                  f"{2 * rad * math.pi:.3f} and {rad * rad * math.pi:.3f}."))
    return Problem(q, sol, f"{2 * rad}π and {rad * rad}π", {"kind": "circle", "r": rad, "answer": (2 * rad, rad * rad)})


def e_polygon(r):
    n = r.randint(3, 20)
    total = (n - 2) * 180
    each = Fraction(total, n)
    q = pick(r, f"What is the sum of the interior angles of a polygon with {n} sides, and each angle if it is regular?",
             f"Find the interior angle sum of a {n}-gon and the size of one angle of the regular {n}-gon.")
    sol = pick(r, f"A polygon with n sides splits into n - 2 triangles from one vertex, each with angle sum 180°. So the sum is "
                  f"({n} - 2) × 180° = {total}°. In the regular polygon all {n} angles are equal: {total}°/{n} = {dec(each, 3)}°.",
               f"Drawing the diagonals from a single corner cuts the {n}-gon into {n - 2} triangles, whose angles together make "
               f"up the interior angles: {n - 2} × 180° = {total}°. Shared equally among {n} corners, each is {dec(each, 3)}°.",
               f"The exterior angles of any convex polygon add up to 360°, so in the regular {n}-gon each exterior angle is "
               f"360°/{n} = {dec(Fraction(360, n), 3)}° and each interior angle is 180° - {dec(Fraction(360, n), 3)}° = "
               f"{dec(each, 3)}°. The interior sum is {n} × {dec(each, 3)}° = {total}°, the same as ({n} - 2) × 180°.")
    return Problem(q, sol, f"{total}°, {dec(each, 3)}°", {"kind": "polygon", "n": n, "answer": (total, each)})


def e_distance(r):
    x1, y1, x2, y2 = (r.randint(-15, 15) for _ in range(4))
    d2 = (x2 - x1) ** 2 + (y2 - y1) ** 2
    mid = (Fraction(x1 + x2, 2), Fraction(y1 + y2, 2))
    q = f"Find the distance between A({x1}, {y1}) and B({x2}, {y2}), and the midpoint of AB."
    sol = (f"The horizontal change is {x2} - {par(x1)} = {x2 - x1} and the vertical change is {y2} - {par(y1)} = {y2 - y1}. "
           f"By Pythagoras the distance is √({(x2 - x1) ** 2} + {(y2 - y1) ** 2}) = √{d2} = {_surd(d2)}. "
           f"The midpoint averages the coordinates: (({x1} + {par(x2)})/2, ({y1} + {par(y2)})/2) = ({frac(mid[0])}, {frac(mid[1])}).")
    return Problem(q, sol, f"{_surd(d2)}; ({frac(mid[0])}, {frac(mid[1])})",
                   {"kind": "distance", "pts": (x1, y1, x2, y2), "answer": (d2, mid)})


def e_triangle_area(r):
    pts = [(r.randint(-10, 10), r.randint(-10, 10)) for _ in range(3)]
    (x1, y1), (x2, y2), (x3, y3) = pts
    twice = x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2)
    if twice == 0:
        x3 += 1
        pts[2] = (x3, y3)
        twice = x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2)
    area = Fraction(abs(twice), 2)
    q = f"Find the area of the triangle with vertices ({x1}, {y1}), ({x2}, {y2}) and ({x3}, {y3})."
    sol = (f"Use the shoelace formula: area = |x1(y2 - y3) + x2(y3 - y1) + x3(y1 - y2)|/2 = "
           f"|{x1} × {par(y2 - y3)} + {x2} × {par(y3 - y1)} + {x3} × {par(y1 - y2)}|/2 = |{twice}|/2 = {frac(area)}.")
    return Problem(q, sol, frac(area), {"kind": "tri_area", "pts": pts, "answer": area})


def e_box(r):
    a, b, c = (r.randint(1, 30) for _ in range(3))
    if r.random() < 0.5:
        q = f"A box measures {a} by {b} by {c}. Find its volume and surface area."
        sol = (f"Volume = length × width × height = {a} × {b} × {c} = {a * b * c}. The surface consists of three pairs of "
               f"rectangles: 2({a} × {b} + {a} × {c} + {b} × {c}) = 2({a * b} + {a * c} + {b * c}) = {2 * (a * b + a * c + b * c)}.")
        return Problem(q, sol, f"volume {a * b * c}, surface {2 * (a * b + a * c + b * c)}",
                       {"kind": "box", "dims": (a, b, c), "answer": (a * b * c, 2 * (a * b + a * c + b * c))})
    q = f"A cylinder has radius {a} and height {b}. Find its volume and total surface area in terms of π."
    sol = (f"Volume = πr^2h = π × {a * a} × {b} = {a * a * b}π. The surface is two discs and the curved side: "
           f"2πr^2 + 2πrh = {2 * a * a}π + {2 * a * b}π = {2 * a * a + 2 * a * b}π.")
    return Problem(q, sol, f"{a * a * b}π, {2 * a * a + 2 * a * b}π",
                   {"kind": "cylinder", "r": a, "h": b, "answer": (a * a * b, 2 * a * a + 2 * a * b)})


def e_similar(r):
    a, b, c = r.randint(2, 20), r.randint(2, 20), r.randint(2, 20)
    k = Fraction(r.randint(2, 9), pick(r, 1, 2, 3))
    q = (f"Triangle ABC has sides {a}, {b} and {c}. A similar triangle has its shortest side equal to "
         f"{frac(min(a, b, c) * k)}. Find its other sides and the ratio of the areas.")
    s = sorted([a, b, c])
    sol = (f"The scale factor is {frac(min(a, b, c) * k)}/{s[0]} = {frac(k)}. Every side is multiplied by it: "
           f"{s[1]} × {frac(k)} = {frac(s[1] * k)} and {s[2]} × {frac(k)} = {frac(s[2] * k)}. "
           f"Areas scale with the square of the factor, so the ratio of areas is {frac(k * k)}.")
    return Problem(q, sol, f"{frac(s[1] * k)}, {frac(s[2] * k)}; area ratio {frac(k * k)}",
                   {"kind": "similar", "sides": s, "k": k, "answer": (s[1] * k, s[2] * k, k * k)})


def e_angles(r):
    a, b = r.randint(10, 120), r.randint(10, 120)
    while a + b >= 175:
        b = r.randint(10, 60)
    c = 180 - a - b
    form = r.randint(0, 1)
    if form == 0:
        q = f"Two angles of a triangle are {a}° and {b}°. Find the third angle and its exterior angle."
        sol = (f"The angles of a triangle add up to 180°, so the third is 180° - {a}° - {b}° = {c}°. The exterior angle "
               f"at that vertex is its supplement, 180° - {c}° = {a + b}°, which also equals the sum of the two other angles.")
        return Problem(q, sol, f"{c}°, exterior {a + b}°", {"kind": "angles", "a": a, "b": b, "answer": (c, a + b)})
    q = f"In an isosceles triangle the apex angle is {2 * (a // 2) if a < 178 else 40}°. Find the base angles."
    apex = 2 * (a // 2) if a < 178 else 40
    base = Fraction(180 - apex, 2)
    sol = f"The two base angles are equal and share 180° - {apex}° = {180 - apex}°, so each is {dec(base)}°."
    return Problem(q, sol, f"{dec(base)}°", {"kind": "isosceles", "apex": apex, "answer": base})


def e_trapezoid(r):
    a, b, h = r.randint(2, 40), r.randint(2, 40), r.randint(2, 30)
    area = Fraction((a + b) * h, 2)
    q = f"A trapezoid has parallel sides {a} and {b} and height {h}. What is its area?"
    sol = (f"The area of a trapezoid is the average of the parallel sides times the height: "
           f"({a} + {b})/2 × {h} = {frac(Fraction(a + b, 2))} × {h} = {frac(area)}.")
    return Problem(q, sol, frac(area), {"kind": "trapezoid", "a": a, "b": b, "h": h, "answer": area})


def e_sector(r):
    rad, theta = r.randint(2, 30), pick(r, 20, 30, 36, 40, 45, 60, 72, 90, 120, 135, 150, 210, 240, 270, 300)
    arc, area = Fraction(theta * rad, 180), Fraction(theta * rad * rad, 360)
    q = pick(r, f"A sector of a circle of radius {rad} has a central angle of {theta}°. Find its arc length and area.",
             f"A slice of pizza of radius {rad} cm is cut with an angle of {theta}° at the centre. How long is its curved "
             f"edge and how large is it?")
    sol = (f"The sector is {theta}/360 = {frac(Fraction(theta, 360))} of the full circle. The arc is that fraction of the "
           f"circumference 2π × {rad}: {frac(Fraction(theta, 360))} × {2 * rad}π = {frac(arc)}π. The area is the same fraction "
           f"of π × {rad}^2 = {rad * rad}π: {frac(area)}π.")
    return Problem(q, sol, f"arc {frac(arc)}π, area {frac(area)}π", {"kind": "sector", "r": rad, "theta": theta,
                                                                     "answer": (arc, area)})


def e_solids(r):
    rad, h = r.randint(1, 15), r.randint(1, 25)
    if r.random() < 0.5:
        v = Fraction(4 * rad ** 3, 3)
        q = pick(r, f"Find the volume and surface area of a sphere of radius {rad}.",
                 f"A ball has radius {rad}. What are its volume and its surface area, in terms of π?")
        sol = (f"For a sphere V = (4/3)πr^3 = (4/3) × {rad ** 3}π = {frac(v)}π and the surface is S = 4πr^2 = "
               f"4 × {rad * rad}π = {4 * rad * rad}π.")
        return Problem(q, sol, f"{frac(v)}π, {4 * rad * rad}π", {"kind": "sphere", "r": rad, "answer": (v, 4 * rad * rad)})
    v = Fraction(rad * rad * h, 3)
    q = pick(r, f"A cone has base radius {rad} and height {h}. Find its volume in terms of π.",
             f"What is the volume of a cone {h} units tall with a base of radius {rad}?")
    sol = (f"A cone holds one third of the cylinder with the same base and height: V = (1/3)πr^2h = "
           f"(1/3) × π × {rad * rad} × {h} = {frac(v)}π" + (f", about {float(v) * math.pi:.2f}." if v.denominator != 1 else "."))
    return Problem(q, sol, f"{frac(v)}π", {"kind": "cone", "r": rad, "h": h, "answer": v})


def e_circle_eq(r):
    a, b, rad = r.randint(-9, 9), r.randint(-9, 9), r.randint(1, 12)
    D, E, F_ = -2 * a, -2 * b, a * a + b * b - rad * rad
    q = pick(r, f"Write the equation of the circle with centre ({a}, {b}) and radius {rad}, and expand it.",
             f"A circle is centred at ({a}, {b}) and passes at distance {rad} from its centre. Give its equation in general form.")
    sol = (f"A point (x, y) is on the circle when its distance to the centre is {rad}: (x {signed(-a)})^2 + (y {signed(-b)})^2 "
           f"= {rad * rad}. Expanding, x^2 {signed(D)}x + {a * a} + y^2 {signed(E)}y + {b * b} = {rad * rad}, that is "
           f"x^2 + y^2 {signed(D)}x {signed(E)}y {signed(F_)} = 0.")
    return Problem(q, sol, f"x^2 + y^2 {signed(D)}x {signed(E)}y {signed(F_)} = 0",
                   {"kind": "circle_eq", "c": (a, b), "r": rad, "answer": (D, E, F_)})


def e_garden(r):
    L, W, p = r.randint(5, 60), r.randint(5, 60), r.randint(1, 4)
    outer = (L + 2 * p) * (W + 2 * p)
    path = outer - L * W
    name = pick(r, *NAMES)
    q = (f"{name}'s garden is a {L} m by {W} m rectangle. A path {p} m wide is laid all around it. What is the area of the "
         f"path, and how much fencing goes around the outside of the path?")
    sol = (f"With the path, the outer rectangle measures {L} + 2 × {p} = {L + 2 * p} m by {W} + 2 × {p} = {W + 2 * p} m, so its "
           f"area is {outer} m^2. Taking away the garden's {L * W} m^2 leaves {path} m^2 of path. The fence runs around the "
           f"outer rectangle: 2 × ({L + 2 * p} + {W + 2 * p}) = {2 * (L + W + 4 * p)} m.")
    return Problem(q, sol, f"{path} m^2, {2 * (L + W + 4 * p)} m", {"kind": "garden", "L": L, "W": W, "p": p,
                                                                    "answer": (path, 2 * (L + W + 4 * p))})


GEOMETRY = (e_rectangle, e_pythagoras, e_circle, e_polygon, e_distance, e_triangle_area, e_box, e_similar, e_angles,
            e_trapezoid, e_sector, e_solids, e_circle_eq, e_garden)


# ============================================================================= probability

def p_dice(r):
    n, sides = pick(r, 2, 2, 3), pick(r, 4, 6, 6, 8, 10, 12)
    outcomes = [(i, j) for i in range(1, sides + 1) for j in range(1, sides + 1)] if n == 2 else \
        [(i, j, k) for i in range(1, sides + 1) for j in range(1, sides + 1) for k in range(1, sides + 1)]
    rel = pick(r, "=", "≥", "≤")
    target = r.randint(n, n * sides)
    hit = [o for o in outcomes if {"=": sum(o) == target, "≥": sum(o) >= target, "≤": sum(o) <= target}[rel]]
    pr = Fraction(len(hit), len(outcomes))
    word = {"=": f"exactly {target}", "≥": f"at least {target}", "≤": f"at most {target}"}[rel]
    dice = f"{'two' if n == 2 else 'three'} fair {sides}-sided dice"
    q = pick(r, f"Roll {dice}. What is the probability that the total is {word}?",
             f"{dice[0].upper() + dice[1:]} are thrown. Find the probability of a sum {word}.",
             f"A game uses {dice}. What is the chance that the faces add up to {word}?")
    listed = (": " + ", ".join(str(o) for o in hit) if 0 < len(hit) <= 8 else "")
    sol = (f"Each die shows 1 to {sides}, so there are {sides}^{n} = {len(outcomes)} equally likely ordered outcomes. "
           f"Counting those with total {word} gives {len(hit)}{listed}. "
           + pick(r, "The probability is favourable over total: ", "So the probability is ", "Dividing, we get ")
           + f"{len(hit)}/{len(outcomes)} = {frac(pr)}.")
    return Problem(q, sol, frac(pr), {"kind": "dice", "n": n, "sides": sides, "rel": rel, "target": target, "answer": pr})


def p_hypergeom(r):
    ca, cb = r.sample(COLOURS, 2)
    a, b = r.randint(2, 15), r.randint(2, 15)
    n = r.randint(2, min(5, a + b - 1))
    k = r.randint(max(0, n - b), min(n, a))
    pr = Fraction(math.comb(a, k) * math.comb(b, n - k), math.comb(a + b, n))
    thing = pick(r, "balls", "marbles", "tokens", "beads")
    q = pick(r, f"A jar has {a} {ca} and {b} {cb} {thing}. {n} are taken at random without replacement. What is the "
                f"probability that exactly {k} are {ca}?",
             f"From {a} {ca} and {b} {cb} {thing}, a handful of {n} is drawn blindly. Find P(exactly {k} {ca}).")
    sol = (f"All C({a + b}, {n}) = {math.comb(a + b, n)} handfuls are equally likely. A favourable one takes {k} of the {a} "
           f"{ca} {thing} (C({a}, {k}) = {math.comb(a, k)} ways) and {n - k} of the {b} {cb} ones (C({b}, {n - k}) = "
           f"{math.comb(b, n - k)} ways). So the probability is {math.comb(a, k)} × {math.comb(b, n - k)}/"
           f"{math.comb(a + b, n)} = {frac(pr)}.")
    return Problem(q, sol, frac(pr), {"kind": "hypergeom", "a": a, "b": b, "n": n, "k": k, "answer": pr})


def p_geometric(r):
    p = Fraction(r.randint(1, 5), pick(r, 6, 8, 10, 12))
    k = r.randint(1, 8)
    pr = (1 - p) ** (k - 1) * p
    name = pick(r, *NAMES)
    what = pick(r, "scores a penalty", "rolls the winning number", "finds a parking space", "guesses the password",
                "draws a prize ticket")
    q = (f"Each attempt {name} makes independently {what} with probability {frac(p)}. What is the probability that the "
         f"first success comes on attempt {k}?")
    sol = (f"The first {k - 1} attempts must fail, each with probability {frac(1 - p)}, and attempt {k} must succeed. "
           f"By independence the probability is ({frac(1 - p)})^{k - 1} × {frac(p)} = {frac(pr)}. "
           f"This is the geometric distribution; its mean waiting time is 1/p = {frac(1 / p)} attempts.")
    return Problem(q, sol, frac(pr), {"kind": "geometric", "p": p, "k": k, "answer": pr})


def p_table(r):
    rows, cols = pick(r, ("student", "teacher"), ("adult", "child"), ("cyclist", "driver")), \
        pick(r, ("likes tea", "likes coffee"), ("owns a cat", "owns a dog"), ("walks", "takes the bus"))
    c = [[r.randint(3, 60) for _ in range(2)] for _ in range(2)]
    total = sum(map(sum, c))
    i, j = r.randint(0, 1), r.randint(0, 1)
    col = c[0][j] + c[1][j]
    pr = Fraction(c[i][j], col)
    q = (f"In a survey of {total} people, {c[0][0]} {rows[0]}s {cols[0]}, {c[0][1]} {rows[0]}s {cols[1]}, "
         f"{c[1][0]} {rows[1]}s {cols[0]} and {c[1][1]} {rows[1]}s {cols[1]}. A person who {cols[j]} is chosen at random. "
         f"What is the probability that they are a {rows[i]}?")
    sol = (f"Condition on the column: {c[0][j]} + {c[1][j]} = {col} people {cols[j]}. Of these, {c[i][j]} are {rows[i]}s. "
           f"So P({rows[i]} | {cols[j]}) = {c[i][j]}/{col} = {frac(pr)}, compared with the unconditional "
           f"P({rows[i]}) = {sum(c[i])}/{total} = {frac(Fraction(sum(c[i]), total))}.")
    return Problem(q, sol, frac(pr), {"kind": "table", "c": c, "i": i, "j": j, "answer": pr})


def p_variance(r):
    k = r.randint(2, 4)
    vals = sorted(r.sample(range(0, 20), k))
    w = [r.randint(1, 5) for _ in range(k)]
    probs = [Fraction(x, sum(w)) for x in w]
    mean = sum(v * p for v, p in zip(vals, probs))
    ex2 = sum(v * v * p for v, p in zip(vals, probs))
    var = ex2 - mean ** 2
    q = ("A random variable X takes the values " + ", ".join(map(str, vals)) + " with probabilities "
         + ", ".join(frac(p) for p in probs) + ". Find its mean and variance.")
    sol = (f"E[X] = " + " + ".join(f"{v} × {frac(p)}" for v, p in zip(vals, probs)) + f" = {frac(mean)}. "
           f"E[X^2] = " + " + ".join(f"{v * v} × {frac(p)}" for v, p in zip(vals, probs)) + f" = {frac(ex2)}. "
           f"Var(X) = E[X^2] - E[X]^2 = {frac(ex2)} - ({frac(mean)})^2 = {frac(var)}.")
    return Problem(q, sol, f"mean {frac(mean)}, variance {frac(var)}", {"kind": "variance", "vals": vals, "probs": probs,
                                                                       "answer": (mean, var)})


def p_binomial(r):
    n = r.randint(2, 10)
    k = r.randint(0, n)
    p = pick(r, Fraction(1, 2), Fraction(1, 3), Fraction(1, 4), Fraction(2, 5), Fraction(1, 6))
    pr = math.comb(n, k) * p ** k * (1 - p) ** (n - k)
    what = "a fair coin lands heads" if p == Fraction(1, 2) else f"an event of probability {frac(p)} happens"
    q = f"In {n} independent trials, what is the probability that {what} exactly {k} times?"
    sol = (f"This is a binomial count with n = {n} and p = {frac(p)}. P(X = {k}) = C({n}, {k}) p^{k} (1 - p)^{n - k} = "
           f"{math.comb(n, k)} × ({frac(p)})^{k} × ({frac(1 - p)})^{n - k} = {frac(pr)}, about {float(pr):.4f}.")
    return Problem(q, sol, frac(pr), {"kind": "binomial", "n": n, "k": k, "p": p, "answer": pr})


def p_urn(r):
    colours = r.sample(COLOURS, 2)
    a, b = r.randint(1, 12), r.randint(1, 12)
    repl = r.random() < 0.4
    if repl:
        pr = Fraction(a, a + b) ** 2
        sol = (f"With replacement the draws are independent, each {colours[0]} with probability {a}/{a + b}. "
               f"So P(both {colours[0]}) = ({a}/{a + b})^2 = {frac(pr)}.")
    else:
        pr = Fraction(a, a + b) * Fraction(a - 1, a + b - 1)
        sol = (f"The first draw is {colours[0]} with probability {a}/{a + b}. Then {a - 1} {colours[0]} balls remain among "
               f"{a + b - 1}, so the second is {colours[0]} with probability {a - 1}/{a + b - 1}. Multiply: {frac(pr)}.")
    q = (f"A bag holds {a} {colours[0]} and {b} {colours[1]} balls. Two are drawn {'with' if repl else 'without'} "
         f"replacement. What is the probability that both are {colours[0]}?")
    return Problem(q, sol, frac(pr), {"kind": "urn", "a": a, "b": b, "repl": repl, "answer": pr})


def p_expected(r):
    k = r.randint(2, 5)
    vals = sorted(r.sample(range(-10, 60), k))
    w = [r.randint(1, 6) for _ in range(k)]
    probs = [Fraction(x, sum(w)) for x in w]
    ev = sum(v * p for v, p in zip(vals, probs))
    table = ", ".join(f"{v} with probability {frac(p)}" for v, p in zip(vals, probs))
    q = f"A game pays {table}. What is the expected payoff?"
    sol = ("The expected value is the probability-weighted sum of the outcomes: "
           + " + ".join(f"{par(v)} × {frac(p)}" for v, p in zip(vals, probs)) + f" = {frac(ev)}"
           + (f", about {float(ev):.3f}." if ev.denominator != 1 else "."))
    return Problem(q, sol, frac(ev), {"kind": "expected", "vals": vals, "probs": probs, "answer": ev})


def p_counting(r):
    n = r.randint(4, 15)
    k = r.randint(2, min(6, n))
    if r.random() < 0.5:
        v = math.comb(n, k)
        q = f"In how many ways can a committee of {k} be chosen from {n} people?"
        sol = (f"Order does not matter, so count combinations: C({n}, {k}) = {n}!/({k}! × {n - k}!) = "
               f"{' × '.join(str(n - i) for i in range(k))}/{math.factorial(k)} = {v}.")
        return Problem(q, sol, str(v), {"kind": "comb", "n": n, "k": k, "answer": v})
    v = math.perm(n, k)
    q = f"In how many ways can gold, silver{', bronze' if k == 3 else ''} and the other {k} places be awarded among {n} runners?" \
        if k > 3 else f"How many ordered lists of {k} different items can be made from {n} items?"
    sol = (f"Order matters: {n} choices for the first place, {n - 1} for the second, and so on for {k} places: "
           f"{' × '.join(str(n - i) for i in range(k))} = {v}.")
    return Problem(q, sol, str(v), {"kind": "perm", "n": n, "k": k, "answer": v})


def p_atleast(r):
    p = Fraction(1, r.randint(2, 20))
    n = r.randint(2, 12)
    pr = 1 - (1 - p) ** n
    q = f"An event has probability {frac(p)} on each of {n} independent tries. What is the probability it happens at least once?"
    sol = (f"It is easier to use the complement: the event never happens with probability ({frac(1 - p)})^{n} = {frac((1 - p) ** n)}. "
           f"So P(at least once) = 1 - {frac((1 - p) ** n)} = {frac(pr)} ≈ {float(pr):.4f}.")
    return Problem(q, sol, frac(pr), {"kind": "atleast", "p": p, "n": n, "answer": pr})


def p_bayes(r):
    prior = Fraction(r.randint(1, 20), 100)
    sens = Fraction(r.randint(80, 99), 100)
    fpr = Fraction(r.randint(1, 15), 100)
    pos = prior * sens + (1 - prior) * fpr
    post = prior * sens / pos
    q = (f"A condition affects {dec(prior * 100)}% of a population. A test detects it {dec(sens * 100)}% of the time and gives a "
         f"false positive {dec(fpr * 100)}% of the time. Someone tests positive. What is the probability they have the condition?")
    sol = (f"By Bayes' rule, P(C | +) = P(+ | C)P(C)/P(+). Here P(+) = {frac(sens)} × {frac(prior)} + {frac(fpr)} × {frac(1 - prior)} "
           f"= {frac(pos)}. So P(C | +) = {frac(sens * prior)}/{frac(pos)} = {frac(post)} ≈ {float(post):.4f}.")
    return Problem(q, sol, frac(post), {"kind": "bayes", "prior": prior, "sens": sens, "fpr": fpr, "answer": post})


def p_cards(r):
    kind = r.randint(0, 3)
    if kind == 0:
        pr, what, why = Fraction(13, 52), "a heart", "13 of the 52 cards are hearts"
    elif kind == 1:
        pr, what, why = Fraction(12, 52), "a face card (jack, queen or king)", "there are 3 face cards in each of 4 suits, 12 in all"
    elif kind == 2:
        pr, what, why = Fraction(16, 52), "a heart or a king", "13 hearts plus the 3 kings that are not hearts make 16 cards"
    else:
        pr, what, why = Fraction(4, 52) * Fraction(3, 51), "two aces in two draws without replacement", \
            "the first draw is an ace with probability 4/52 and then the second with probability 3/51"
    q = f"A card is drawn from a standard 52-card deck. What is the probability of {what}?" if kind < 3 else \
        f"Two cards are drawn from a standard deck. What is the probability of {what}?"
    sol = f"Every card is equally likely; {why}. So the probability is {frac(pr)}."
    return Problem(q, sol, frac(pr), {"kind": "cards", "case": kind, "answer": pr})


def p_independent(r):
    pa, pb = Fraction(r.randint(1, 9), 10), Fraction(r.randint(1, 9), 10)
    both, either = pa * pb, pa + pb - pa * pb
    n1, n2 = r.sample(NAMES, 2)
    q = (f"{n1} hits a target with probability {frac(pa)} and {n2}, independently, with probability {frac(pb)}. "
         f"What is the probability that both hit, and that at least one hits?")
    sol = (f"For independent events P(A and B) = P(A)P(B) = {frac(pa)} × {frac(pb)} = {frac(both)}. "
           f"By inclusion-exclusion P(A or B) = {frac(pa)} + {frac(pb)} - {frac(both)} = {frac(either)}.")
    return Problem(q, sol, f"{frac(both)} and {frac(either)}", {"kind": "independent", "pa": pa, "pb": pb,
                                                                "answer": (both, either)})


PROBABILITY = (p_dice, p_binomial, p_urn, p_expected, p_counting, p_atleast, p_bayes, p_cards, p_independent,
               p_hypergeom, p_geometric, p_table, p_variance)

GENERATORS = {"arithmetic": ARITHMETIC, "algebra": ALGEBRA, "number_theory": NUMBER_THEORY, "geometry": GEOMETRY,
              "probability": PROBABILITY}

_TITLES = {"arithmetic": ("Arithmetic practice", "Mental and written arithmetic", "Working with numbers"),
           "algebra": ("Algebra exercises", "Equations and expressions", "Algebra practice"),
           "number_theory": ("Number theory problems", "Divisibility and primes", "Elementary number theory"),
           "geometry": ("Geometry exercises", "Shapes and measurement", "Coordinate geometry practice"),
           "probability": ("Probability exercises", "Chance and counting", "Probability practice")}
_INTROS = ("Work each problem and show every step.", "Solutions follow each problem.",
           "Each solution explains the method before the arithmetic.", "Try each problem before reading the solution.",
           "")
_LABELS = (("Problem", "Solution.", "Answer:"), ("Exercise", "Worked solution:", "Answer:"),
           ("Question", "Solution:", "Final answer:"), ("Example", "Working.", "Result:"))


def problem(subfield: str, r: random.Random) -> Problem:
    return r.choice(GENERATORS[subfield])(r)


def document(subfield: str, i: int, seed: int = 1234) -> str:
    """Exercise set number `i` of a subfield: 3-7 problems with worked solutions."""
    r = random.Random(f"mathgen-{subfield}-{seed}-{i}")
    title, intro = r.choice(_TITLES[subfield]), r.choice(_INTROS)
    p, s, a = r.choice(_LABELS)
    lines = [f"{title}, set {i + 1}" + (f"\n{intro}" if intro else "")]
    for k in range(r.randint(3, 7)):
        pr = problem(subfield, r)
        lines.append(f"\n{p} {k + 1}. {pr.question}\n{s} {pr.solution}\n{a} {pr.answer}")
    return "\n".join(lines)


def documents(subfield: str, n: int, seed: int = 1234, start: int = 0) -> list[str]:
    """`n` exercise sets from index `start`: generate as much as a study needs."""
    return [document(subfield, i, seed) for i in range(start, start + n)]


def richness(text: str) -> dict[str, float]:
    """Cheap measures of how much there is to learn in `text` (use about 1 MB):
    gzip and xz compression ratios (raw bytes / compressed bytes: lower is richer) and the
    fraction of word 8-grams that are distinct (higher is richer)."""
    import gzip
    import lzma
    raw = text.encode("utf-8")
    words = text.split()
    grams = [tuple(words[i:i + 8]) for i in range(len(words) - 7)]
    return {"bytes": len(raw),
            "gzip_ratio": len(raw) / len(gzip.compress(raw, 9, mtime=0)),
            "xz_ratio": len(raw) / len(lzma.compress(raw, preset=6)),
            "distinct_8gram": len(set(grams)) / max(1, len(grams))}
