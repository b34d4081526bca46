"""Deterministic synthetic USDA NASS Quick Stats records for the local stand-in server.

Nothing is stored. A year's record count is apportioned over state → county → commodity by seeded
weights, so the count of any query is arithmetic over that hierarchy, and records are generated on
demand, leaf by leaf, as a pure function of (seed, year, revision, leaf, index). Inside a leaf the
index picks a statistic (statisticcat/unit/short_desc) and a domain category, so every record has
its own natural key. Field names, value formats and quirks follow
shared/reference/nass_quickstats.md §2.
"""

from __future__ import annotations

import operator
import random
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any, NamedTuple

from ingest_assets.kinds.nass.fields import FIELDS

DEFAULT_YEARS = range(2000, 2026)
"""Years every dataset has; `records_per_year` may add more."""

SUPPRESSION_CODES: tuple[str, ...] = ("(D)", "(Z)", "(NA)", "(X)", "(S)")

CONSTANTS: dict[str, str] = {
    "source_desc": "SURVEY",
    "sector_desc": "CROPS",
    "agg_level_desc": "COUNTY",
    "region_desc": "",
    "zip_5": "",
    "watershed_code": "00000000",
    "watershed_desc": "",
    "congr_district_code": "",
    "country_code": "9000",
    "country_name": "UNITED STATES",
    "freq_desc": "ANNUAL",
    "begin_code": "00",
    "end_code": "00",
    "reference_period_desc": "YEAR",
    "week_ending": "",
}
"""Fields with the same value in every generated record."""

FilterValue = str | int
Filters = Mapping[str, FilterValue | Sequence[FilterValue]] | Iterable[tuple[str, FilterValue]]
Record = dict[str, str | int]
Row = tuple[str, ...]


def _table(text: str) -> list[list[str]]:
    """The rows of a text table whose cells are separated by "|"."""
    return [[cell.strip() for cell in line.split("|")] for line in text.strip().splitlines()]


@dataclass(frozen=True)
class State:
    """A state and its relative share of the county crop records."""

    alpha: str
    name: str
    fips: str
    weight: float

    @cached_property
    def values(self) -> dict[str, str]:
        return {
            "state_ansi": self.fips,
            "state_fips_code": self.fips,
            "state_alpha": self.alpha,
            "state_name": self.name,
        }


STATES: tuple[State, ...] = tuple(
    State(alpha, name, fips, float(weight))
    for alpha, name, fips, weight in _table(
        """
        AL | ALABAMA        | 01 | 2.0
        AK | ALASKA         | 02 | 0.2
        AZ | ARIZONA        | 04 | 1.0
        AR | ARKANSAS       | 05 | 3.0
        CA | CALIFORNIA     | 06 | 4.0
        CO | COLORADO       | 08 | 3.0
        CT | CONNECTICUT    | 09 | 0.3
        DE | DELAWARE       | 10 | 0.5
        FL | FLORIDA        | 12 | 1.5
        GA | GEORGIA        | 13 | 3.0
        HI | HAWAII         | 15 | 0.2
        ID | IDAHO          | 16 | 2.0
        IL | ILLINOIS       | 17 | 14.0
        IN | INDIANA        | 18 | 7.0
        IA | IOWA           | 19 | 16.0
        KS | KANSAS         | 20 | 10.0
        KY | KENTUCKY       | 21 | 4.0
        LA | LOUISIANA      | 22 | 2.5
        ME | MAINE          | 23 | 0.5
        MD | MARYLAND       | 24 | 1.0
        MA | MASSACHUSETTS  | 25 | 0.3
        MI | MICHIGAN       | 26 | 5.0
        MN | MINNESOTA      | 27 | 9.0
        MS | MISSISSIPPI    | 28 | 3.0
        MO | MISSOURI       | 29 | 7.0
        MT | MONTANA        | 30 | 3.0
        NE | NEBRASKA       | 31 | 10.0
        NV | NEVADA         | 32 | 0.3
        NH | NEW HAMPSHIRE  | 33 | 0.2
        NJ | NEW JERSEY     | 34 | 0.5
        NM | NEW MEXICO     | 35 | 1.0
        NY | NEW YORK       | 36 | 3.0
        NC | NORTH CAROLINA | 37 | 4.0
        ND | NORTH DAKOTA   | 38 | 7.0
        OH | OHIO           | 39 | 6.0
        OK | OKLAHOMA       | 40 | 4.0
        OR | OREGON         | 41 | 2.0
        PA | PENNSYLVANIA   | 42 | 3.0
        RI | RHODE ISLAND   | 44 | 0.1
        SC | SOUTH CAROLINA | 45 | 2.0
        SD | SOUTH DAKOTA   | 46 | 6.0
        TN | TENNESSEE      | 47 | 4.0
        TX | TEXAS          | 48 | 9.0
        UT | UTAH           | 49 | 0.8
        VT | VERMONT        | 50 | 0.3
        VA | VIRGINIA       | 51 | 3.0
        WA | WASHINGTON     | 53 | 2.5
        WV | WEST VIRGINIA  | 54 | 0.5
        WI | WISCONSIN      | 55 | 5.0
        WY | WYOMING        | 56 | 0.8
        """
    )
)
"""The 50 states with their FIPS code and relative share of the county crop records."""


class Statistic(NamedTuple):
    """One measured item of a commodity; `kind` selects how its `Value` looks."""

    statisticcat_desc: str
    unit_desc: str
    short_desc: str
    kind: str

    @property
    def values(self) -> dict[str, str]:
        return {
            "statisticcat_desc": self.statisticcat_desc,
            "unit_desc": self.unit_desc,
            "short_desc": self.short_desc,
        }


@dataclass(frozen=True)
class Commodity:
    """A crop commodity, the states that grow it (None: all) and its relative record share."""

    desc: str
    group: str
    class_desc: str
    util_practice: str
    production_unit: str
    yield_unit: str
    weight: float
    grown_in: frozenset[str] | None = None

    @cached_property
    def values(self) -> dict[str, str]:
        return {
            "group_desc": self.group,
            "commodity_desc": self.desc,
            "class_desc": self.class_desc,
            "prodn_practice_desc": "ALL PRODUCTION PRACTICES",
            "util_practice_desc": self.util_practice,
        }

    @cached_property
    def statistics(self) -> tuple[Statistic, ...]:
        qualifiers = (self.class_desc, self.util_practice)
        name = ", ".join([self.desc, *(q for q in qualifiers if not q.startswith("ALL "))])
        return (
            Statistic("AREA PLANTED", "ACRES", f"{name} - ACRES PLANTED", "area"),
            Statistic("AREA HARVESTED", "ACRES", f"{name} - ACRES HARVESTED", "area"),
            Statistic(
                "PRODUCTION",
                self.production_unit,
                f"{name} - PRODUCTION, MEASURED IN {self.production_unit}",
                "production",
            ),
            Statistic(
                "YIELD", self.yield_unit, f"{name} - YIELD, MEASURED IN {self.yield_unit}", "yield"
            ),
        )


_GROWN_ONLY_IN = {
    "COTTON": "AL AZ AR CA FL GA KS LA MS MO NM NC OK SC TN TX VA",
    "RICE": "AR CA LA MS MO TX",
    "PEANUTS": "AL FL GA MS NC NM OK SC TX VA",
}
_COMMODITY_TABLE = """
CORN      | 3.0 | FIELD CROPS | ALL CLASSES | GRAIN                     | BU           | BU / ACRE
SOYBEANS  | 3.0 | FIELD CROPS | ALL CLASSES | ALL UTILIZATION PRACTICES | BU           | BU / ACRE
WHEAT     | 2.0 | FIELD CROPS | WINTER      | ALL UTILIZATION PRACTICES | BU           | BU / ACRE
HAY       | 2.0 | FIELD CROPS | ALFALFA     | ALL UTILIZATION PRACTICES | TONS         | TONS / ACRE
SORGHUM   | 1.2 | FIELD CROPS | ALL CLASSES | GRAIN                     | BU           | BU / ACRE
COTTON    | 1.2 | FIELD CROPS | UPLAND      | ALL UTILIZATION PRACTICES | 480 LB BALES | LB / ACRE
OATS      | 0.8 | FIELD CROPS | ALL CLASSES | ALL UTILIZATION PRACTICES | BU           | BU / ACRE
BARLEY    | 0.8 | FIELD CROPS | ALL CLASSES | ALL UTILIZATION PRACTICES | BU           | BU / ACRE
RICE      | 0.5 | FIELD CROPS | ALL CLASSES | ALL UTILIZATION PRACTICES | CWT          | LB / ACRE
PEANUTS   | 0.5 | FIELD CROPS | ALL CLASSES | ALL UTILIZATION PRACTICES | LB           | LB / ACRE
SUNFLOWER | 0.5 | FIELD CROPS | OIL TYPE    | ALL UTILIZATION PRACTICES | LB           | LB / ACRE
POTATOES  | 0.5 | VEGETABLES  | ALL CLASSES | ALL UTILIZATION PRACTICES | CWT          | CWT / ACRE
"""
COMMODITIES: tuple[Commodity, ...] = tuple(
    Commodity(
        desc,
        group,
        class_desc,
        util,
        production_unit,
        yield_unit,
        float(weight),
        frozenset(_GROWN_ONLY_IN[desc].split()) if desc in _GROWN_ONLY_IN else None,
    )
    for desc, weight, group, class_desc, util, production_unit, yield_unit in _table(
        _COMMODITY_TABLE
    )
)
"""Crops: group, class, utilization practice, units and relative record share."""


_STATISTICS_PER_LEAF = 4  # every commodity has AREA PLANTED, AREA HARVESTED, PRODUCTION, YIELD
_KEY_ORDER_BITS = 4  # shuffled records use 2**4 key orders
_PER_RECORD = dict.fromkeys(
    (
        "statisticcat_desc",
        "unit_desc",
        "short_desc",
        "domain_desc",
        "domaincat_desc",
        "Value",
        "CV (%)",
    ),
    "",
)

_COUNTY_NAMES = [
    name
    for row in _table(
        """
        ADAMS | ALLEN | BENTON | BOONE | BROWN | BUTLER | CALHOUN | CARROLL | CASS | CLARK
        CLAY | CLINTON | CRAWFORD | DALLAS | DOUGLAS | FAYETTE | FRANKLIN | FULTON | GRANT
        GREENE | HAMILTON | HANCOCK | HARRISON | HENRY | HOWARD | JACKSON | JEFFERSON | JOHNSON
        KNOX | LAKE | LAWRENCE | LEE | LINCOLN | LOGAN | MADISON | MARION | MARSHALL | MONROE
        MONTGOMERY | MORGAN | PERRY | PIKE | POLK | PUTNAM | SCOTT | SHELBY | UNION | WARREN
        WASHINGTON | WAYNE
        """
    )
    for name in row
]

_DISTRICTS = (
    "NORTHWEST",
    "NORTH CENTRAL",
    "NORTHEAST",
    "WEST CENTRAL",
    "CENTRAL",
    "EAST CENTRAL",
    "SOUTHWEST",
    "SOUTH CENTRAL",
    "SOUTHEAST",
)
_DOMAINS = (
    ("AREA HARVESTED", "({lo:,} TO {hi:,} ACRES)", 100),
    ("AREA OPERATED", "({lo:,} TO {hi:,} ACRES)", 250),
    ("ECONOMIC CLASS", "(${lo:,} TO ${hi:,})", 5_000),
)

_ROW_POSITIONS = tuple(map(FIELDS.index, _PER_RECORD))
"""Where a row (a tuple in FIELDS order) holds the fields of _PER_RECORD, in its order."""

# Hierarchy levels; each filterable field is fixed at exactly one of them.
_CONSTANT, _YEAR, _STATE, _COUNTY, _COMMODITY, _STATISTIC, _CATEGORY = range(7)
_LEVELS: dict[str, int] = {
    **dict.fromkeys(CONSTANTS, _CONSTANT),
    "year": _YEAR,
    **dict.fromkeys((*STATES[0].values, "load_time"), _STATE),
    **dict.fromkeys(
        ("asd_code", "asd_desc", "county_ansi", "county_code", "county_name", "location_desc"),
        _COUNTY,
    ),
    **dict.fromkeys(COMMODITIES[0].values, _COMMODITY),
    **dict.fromkeys(COMMODITIES[0].statistics[0].values, _STATISTIC),
    "domain_desc": _CATEGORY,
    "domaincat_desc": _CATEGORY,
}
"""Filterable fields (all but `Value` and `CV (%)`, as in the real API) and their level."""

_OPERATORS = frozenset(("GE", "GT", "LE", "LT", "NE", "LIKE", "NOT_LIKE"))
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "GE": operator.ge,
    "GT": operator.gt,
    "LE": operator.le,
    "LT": operator.lt,
}
_MASK = (1 << 64) - 1

Predicate = Callable[[str | int], bool]


def _splitmix(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _hash(*parts: int) -> int:
    h = 0
    for part in parts:
        h = _splitmix(h ^ part)
    return h


def _apportion(total: int, weights: Sequence[float]) -> tuple[int, ...]:
    """Split `total` in proportion to `weights` (largest remainder method): exact and stable."""
    scale = sum(weights)
    if not total or not scale:
        return (0,) * len(weights)
    quotas = [total * w / scale for w in weights]
    shares = [int(q) for q in quotas]
    by_remainder = sorted(range(len(weights)), key=lambda i: shares[i] - quotas[i])
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return tuple(shares)


@lru_cache(maxsize=1 << 16)
def _category(index: int) -> tuple[str, str]:
    """(domain_desc, domaincat_desc) of a leaf's index-th domain category; 0 is the total."""
    if index == 0:
        return "TOTAL", "NOT SPECIFIED"
    domain, pattern, width = _DOMAINS[(index - 1) % len(_DOMAINS)]
    low = (index - 1) // len(_DOMAINS) * width
    return domain, f"{domain}: {pattern.format(lo=low, hi=low + width - 1)}"


def _category_values(index: int) -> dict[str, str]:
    domain, domaincat = _category(index)
    return {"domain_desc": domain, "domaincat_desc": domaincat}


def _value(kind: str, h: int) -> str:
    if h % 1000 < 50:  # about 5 % suppressed, a quarter of those padded as in old data
        code = SUPPRESSION_CODES[(h >> 10) % len(SUPPRESSION_CODES)]
        return code.rjust(20) if (h >> 13) & 3 == 0 else code
    x = h >> 16
    if kind == "yield":
        return f"{20 + x % 30_000 / 10:,.1f}"
    if kind == "area":
        return f"{100 + x % 250_000:,}"
    return f"{1_000 + x % 60_000_000:,}"


def _cv(h: int) -> str:
    r = (h >> 40) % 100
    if r < 60:
        return ""
    if r < 94:
        return f"{(h >> 48) % 999 / 10 + 0.1:.1f}"
    return "(H)" if r < 97 else "(L)"


def _revised(h: int, revision: int) -> int:
    """The value hash after `revision` revisions: each one redraws about a quarter of them."""
    for r in range(revision, 0, -1):
        if _splitmix(h ^ r) & 3 == 0:
            return _splitmix(h + r)
    return h


def _load_time(year: int, revision: int, state: int) -> str:
    stamp = datetime(year + 1, 2, 1, 8) + timedelta(
        days=45 * revision, minutes=7 * state, seconds=(7 * year + 13 * state) % 60
    )
    if year < 2015 and not revision:  # loaded by the old backend: no milliseconds
        return f"{stamp:%Y-%m-%d %H:%M:%S}"
    return f"{stamp:%Y-%m-%d %H:%M:%S}.000"


def _district(index: int, count: int) -> tuple[str, str]:
    slot = index * 8 // (count - 1) if count > 1 else 4
    return f"{(slot + 1) * 10}", _DISTRICTS[slot]


def _pairs(filters: Filters) -> Iterator[tuple[str, str]]:
    items = filters.items() if isinstance(filters, Mapping) else filters
    for name, value in items:
        if isinstance(value, str | int):
            yield name, str(value)
        else:
            yield from ((name, str(v)) for v in value)


def _predicate(field: str, op: str, raw: list[str]) -> Predicate:
    """Test for one field/operator; repeated values OR for EQ and LIKE, AND for the others."""
    if op in _COMPARISONS:
        compare = _COMPARISONS[op]
        if field != "year":
            bounds = [v.upper() for v in raw]
            return lambda value: all(compare(str(value).upper(), b) for b in bounds)
        try:
            years = [int(v) for v in raw]
        except ValueError:
            return lambda _value: False
        return lambda value: all(compare(value, y) for y in years)
    wanted = {v.upper() for v in raw}
    if op == "EQ":
        return lambda value: str(value).upper() in wanted
    if op == "NE":
        return lambda value: str(value).upper() not in wanted
    if op == "LIKE":
        return lambda value: any(w in str(value).upper() for w in wanted)
    return lambda value: not any(w in str(value).upper() for w in wanted)


class _Query:
    """Filters compiled and grouped by the hierarchy level that fixes each field.

    Unknown names (and operators) are ignored, like the real API does. Matching is
    case-insensitive; LIKE is a substring test.
    """

    def __init__(self, filters: Filters) -> None:
        grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
        for name, value in _pairs(filters):
            field, _, op = name.rpartition("__")
            if field in _LEVELS and op in _OPERATORS:
                grouped[field, op].append(value)
            elif name in _LEVELS:
                grouped[name, "EQ"].append(value)
        self._checks: dict[int, list[tuple[str, Predicate]]] = defaultdict(list)
        for (field, op), raw in grouped.items():
            self._checks[_LEVELS[field]].append((field, _predicate(field, op, raw)))
        self.deepest = max(self._checks, default=_CONSTANT)
        self._statistics: dict[int, tuple[int, ...]] = {}
        self._categories_below = [0]

    def accepts(self, level: int, values: Mapping[str, str | int]) -> bool:
        return all(check(values[field]) for field, check in self._checks.get(level, ()))

    def statistics(self, commodity: int) -> tuple[int, ...]:
        """Indices of the commodity's statistics that the filters accept."""
        if commodity not in self._statistics:
            self._statistics[commodity] = tuple(
                i
                for i, statistic in enumerate(COMMODITIES[commodity].statistics)
                if self.accepts(_STATISTIC, statistic.values)
            )
        return self._statistics[commodity]

    def category_ok(self, index: int) -> bool:
        return self.accepts(_CATEGORY, _category_values(index))

    def categories_below(self, end: int) -> int:
        """How many of the categories 0..end-1 the filters accept."""
        if _CATEGORY not in self._checks:
            return end
        prefix = self._categories_below
        while len(prefix) <= end:
            prefix.append(prefix[-1] + self.category_ok(len(prefix) - 1))
        return prefix[end]

    def statistic_count(self, statistic: int, size: int) -> int:
        """Accepted records of one statistic in a leaf of `size` records."""
        if size <= statistic:
            return 0
        return self.categories_below(-(-(size - statistic) // _STATISTICS_PER_LEAF))

    def leaf_count(self, commodity: int, size: int) -> int:
        if self.deepest < _STATISTIC:
            return size
        return sum(self.statistic_count(i, size) for i in self.statistics(commodity))

    def leaf_indices(self, commodity: int, size: int) -> Iterable[int]:
        if self.deepest < _STATISTIC:
            return range(size)
        return self._filtered_indices(commodity, size)

    def _filtered_indices(self, commodity: int, size: int) -> Iterator[int]:
        statistics = self.statistics(commodity)
        for category in range(-(-size // _STATISTICS_PER_LEAF)):
            if self.category_ok(category):
                for i in statistics:
                    index = category * _STATISTICS_PER_LEAF + i
                    if index < size:
                        yield index


_Cells = tuple[Statistic, tuple[str, str], str, str]


class _Plan(NamedTuple):
    """How a year's records are apportioned: per state, per county, per (county, commodity)."""

    total: int
    states: tuple[int, ...]
    counties: tuple[tuple[int, ...], ...]
    leaves: tuple[tuple[tuple[int, ...], ...], ...]


class _Node(NamedTuple):
    """A node of the hierarchy; `size` is its record count before statistic/category filters."""

    year: int
    revision: int
    size: int
    state: int = -1
    county: int = -1
    commodity: int = -1


class NassDataset:
    """Synthetic Quick Stats CROPS county records: SURVEY, ANNUAL, reference period YEAR.

    Each year holds `records_per_year[year]` records (else `default_records`) spread by seeded
    weights: Iowa, Illinois, Nebraska and Kansas are the big states, and inside every state one
    county dominates, so with 1,000,000 records a year several states and at least one county
    exceed 50,000 records while every (county, commodity) leaf stays well under it. Each state
    also has county 998 "OTHER (COMBINED) COUNTIES" with a blank `county_ansi`.
    """

    def __init__(
        self,
        records_per_year: dict[int, int] | None = None,
        default_records: int = 2_000,
        seed: int = 0,
    ) -> None:
        self.seed = seed
        self.default_records = default_records
        self._lock = threading.Lock()
        self._totals: dict[int, int] = dict.fromkeys(DEFAULT_YEARS, default_records)
        self._totals.update(records_per_year or {})
        self._revisions: dict[int, int] = {}
        self._generation = 0
        self._plans: dict[int, _Plan] = {}
        rng = random.Random(seed)
        orders = [tuple(rng.sample(FIELDS, len(FIELDS))) for _ in range(1 << _KEY_ORDER_BITS)]
        self._key_orders = [(order, operator.itemgetter(*order)) for order in [*orders, FIELDS]]
        self._state_weights = [
            state.weight * random.Random(_hash(seed, s)).uniform(0.9, 1.1)
            for s, state in enumerate(STATES)
        ]
        self._counties: list[list[dict[str, str]]] = []
        self._county_weights: list[list[float]] = []
        self._commodity_weights: list[list[list[float]]] = []
        for s, state in enumerate(STATES):
            self._add_counties(state, random.Random(_hash(seed, s, 1)))

    def _add_counties(self, state: State, rng: random.Random) -> None:
        count = rng.randint(5, 20)
        names = sorted(rng.sample(_COUNTY_NAMES, count))
        districts = min(count, rng.randint(3, 9))
        counties = []
        for j, name in enumerate(names):
            asd_code, asd_desc = _district(j * districts // count, districts)
            code = f"{2 * j + 1:03d}"
            counties.append((asd_code, asd_desc, code, code, name))
        asd_code, asd_desc = _district(districts - 1, districts)
        counties.append((asd_code, asd_desc, "", "998", "OTHER (COMBINED) COUNTIES"))
        self._counties.append(
            [
                {
                    "asd_code": asd_code,
                    "asd_desc": asd_desc,
                    "county_ansi": ansi,
                    "county_code": code,
                    "county_name": name,
                    "location_desc": f"{state.name}, {asd_desc}, {name}",
                }
                for asd_code, asd_desc, ansi, code, name in counties
            ]
        )
        ranks = rng.sample(range(count), count)  # which county dominates is seeded
        weights = [rng.uniform(0.8, 1.2) / (rank + 1) ** 2.5 for rank in ranks]
        self._county_weights.append([*weights, 0.03 * rng.uniform(0.5, 1.5)])
        self._commodity_weights.append(
            [
                [
                    c.weight * rng.uniform(0.3, 1.7)
                    if c.grown_in is None or state.alpha in c.grown_in
                    else 0.0
                    for c in COMMODITIES
                ]
                for _ in counties
            ]
        )

    @property
    def years(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(sorted(self._totals))

    def revision(self, year: int) -> int:
        with self._lock:
            return self._revisions.get(year, 0)

    @property
    def generation(self) -> int:
        """A number that changes whenever the data changes (every `revise()`); anything derived
        from the records is stale once it moves.
        """
        with self._lock:
            return self._generation

    def revise(self, year: int, records: int | None = None) -> None:
        """Simulate NASS revising `year`: new load_time, about a quarter of the Values redrawn,
        and optionally a new record count (which may also add a year).
        """
        with self._lock:
            self._revisions[year] = self._revisions.get(year, 0) + 1
            self._generation += 1
            if records is not None:
                self._totals[year] = records
            self._totals.setdefault(year, 0)

    def count(self, filters: Filters = ()) -> int:
        """Number of records matching `filters`, computed without generating records."""
        query = _Query(filters)
        depth = min(max(query.deepest, _YEAR), _COMMODITY)
        return sum(self._node_count(query, node) for node in self._walk(query, depth))

    def records(
        self, filters: Filters = (), shuffle: random.Random | None = None
    ) -> Iterator[Record]:
        """Stream the matching records, `year` an int and the fields in canonical order.

        With `shuffle`, each record's keys come instead in one of 16 orders picked with it, as the
        real API's JSON key order is not stable.
        """
        query = _Query(filters)
        for node in self._walk(query, _COMMODITY):
            yield from self._leaf_records(query, node, shuffle)

    def rows(self, filters: Filters = ()) -> Iterator[Row]:
        """Stream the matching records as tuples of strings in `FIELDS` order (`year` a string
        too, as in CSV): the records of `records(filters)`, in the same order, without the cost
        of building a dict per record.
        """
        query = _Query(filters)
        for node in self._walk(query, _COMMODITY):
            yield from self._leaf_rows(query, node)

    def param_values(self, param: str, filters: Filters = ()) -> list[str | int]:
        """Sorted distinct values of `param` among the records matching `filters`.

        Raises KeyError when `param` is not a filterable field.
        """
        level = _LEVELS[param]
        query = _Query(filters)
        found: set[str | int] = set()
        categories_end = 0
        for node in self._walk(query, min(max(query.deepest, level, _YEAR), _COMMODITY)):
            if level == _STATISTIC:
                statistics = COMMODITIES[node.commodity].statistics
                found.update(
                    statistics[i].values[param]
                    for i in query.statistics(node.commodity)
                    if query.statistic_count(i, node.size)
                )
            elif level == _CATEGORY:
                accepted = query.statistics(node.commodity)
                if accepted and node.size > accepted[0]:
                    end = -(-(node.size - accepted[0]) // _STATISTICS_PER_LEAF)
                    categories_end = max(categories_end, end)
            elif self._node_count(query, node):
                found.add(self._node_value(node, param, level))
        if level == _CATEGORY:
            found.update(
                _category_values(c)[param] for c in range(categories_end) if query.category_ok(c)
            )
        return sorted(found)

    def _plan(self, year: int) -> tuple[int, _Plan]:
        with self._lock:
            revision = self._revisions.get(year, 0)
            total = self._totals.get(year, 0)
            plan = self._plans.get(total)
        if plan is None:
            states = _apportion(total, self._state_weights)
            counties = tuple(
                _apportion(n, w) for n, w in zip(states, self._county_weights, strict=True)
            )
            leaves = tuple(
                tuple(_apportion(n, w) for n, w in zip(row, weights, strict=True))
                for row, weights in zip(counties, self._commodity_weights, strict=True)
            )
            plan = _Plan(total, states, counties, leaves)
            with self._lock:
                self._plans[total] = plan
        return revision, plan

    def _state_values(self, year: int, revision: int, state: int) -> dict[str, str]:
        return {**STATES[state].values, "load_time": _load_time(year, revision, state)}

    def _walk(self, query: _Query, depth: int) -> Iterator[_Node]:
        """Nodes at `depth` (year to commodity) that have records and pass the filters of their
        own and upper levels; one level per method, each descending only when asked to.
        """
        if not query.accepts(_CONSTANT, CONSTANTS):
            return
        for year in self.years:
            if not query.accepts(_YEAR, {"year": year}):
                continue
            revision, plan = self._plan(year)
            if depth == _YEAR:
                if plan.total:
                    yield _Node(year, revision, plan.total)
                continue
            yield from self._walk_states(query, depth, year, revision, plan)

    def _walk_states(
        self, query: _Query, depth: int, year: int, revision: int, plan: _Plan
    ) -> Iterator[_Node]:
        for s, state_size in enumerate(plan.states):
            if not state_size or not query.accepts(_STATE, self._state_values(year, revision, s)):
                continue
            if depth == _STATE:
                yield _Node(year, revision, state_size, s)
                continue
            yield from self._walk_counties(query, depth, year, revision, plan, s)

    def _walk_counties(
        self, query: _Query, depth: int, year: int, revision: int, plan: _Plan, s: int
    ) -> Iterator[_Node]:
        for c, county_size in enumerate(plan.counties[s]):
            if not county_size or not query.accepts(_COUNTY, self._counties[s][c]):
                continue
            if depth == _COUNTY:
                yield _Node(year, revision, county_size, s, c)
                continue
            for m, size in enumerate(plan.leaves[s][c]):
                if size and query.accepts(_COMMODITY, COMMODITIES[m].values):
                    yield _Node(year, revision, size, s, c, m)

    @staticmethod
    def _node_count(query: _Query, node: _Node) -> int:
        if node.commodity < 0:  # no filters below this node's level
            return node.size
        return query.leaf_count(node.commodity, node.size)

    def _node_value(self, node: _Node, param: str, level: int) -> str | int:
        if level == _CONSTANT:
            return CONSTANTS[param]
        if level == _YEAR:
            return node.year
        if level == _STATE:
            return self._state_values(node.year, node.revision, node.state)[param]
        if level == _COUNTY:
            return self._counties[node.state][node.county][param]
        return COMMODITIES[node.commodity].values[param]

    def _leaf_fixed(self, node: _Node) -> Record:
        """The values every record of a leaf shares, with blanks for the per-record fields."""
        return {
            **_PER_RECORD,
            **CONSTANTS,
            "year": node.year,
            **self._state_values(node.year, node.revision, node.state),
            **self._counties[node.state][node.county],
            **COMMODITIES[node.commodity].values,
        }

    def _leaf_cells(self, query: _Query, node: _Node) -> list[_Cells]:
        """The per-record part of a leaf's matching records: statistic, (domain_desc,
        domaincat_desc), Value and CV (%). The one place record values are drawn, and the hot
        loop of every body: a list, as resuming a generator per record costs more.
        """
        key = _hash(self.seed, node.year, node.state, node.county, node.commodity)
        statistics = COMMODITIES[node.commodity].statistics
        revision = node.revision
        cells = []
        for index in query.leaf_indices(node.commodity, node.size):
            category, i = divmod(index, _STATISTICS_PER_LEAF)
            statistic = statistics[i]
            h = _splitmix(key + index)
            value = _value(statistic.kind, _revised(h, revision) if revision else h)
            cells.append((statistic, _category(category), value, _cv(h)))
        return cells

    def _leaf_records(
        self, query: _Query, node: _Node, shuffle: random.Random | None
    ) -> Iterator[Record]:
        fixed = self._leaf_fixed(node)
        templates: dict[int, Record] = {}  # by key order, built as needed
        for statistic, category, value, cv in self._leaf_cells(query, node):
            order = shuffle.getrandbits(_KEY_ORDER_BITS) if shuffle else -1  # -1: canonical
            template = templates.get(order)
            if template is None:
                fields, values = self._key_orders[order]
                template = templates[order] = dict(zip(fields, values(fixed), strict=True))
            record = template.copy()  # assigning existing keys below keeps their order
            record["statisticcat_desc"] = statistic.statisticcat_desc
            record["unit_desc"] = statistic.unit_desc
            record["short_desc"] = statistic.short_desc
            record["domain_desc"], record["domaincat_desc"] = category
            record["Value"] = value
            record["CV (%)"] = cv
            yield record

    def _leaf_rows(self, query: _Query, node: _Node) -> Iterator[Row]:
        fixed = self._leaf_fixed(node)
        template = [str(fixed[f]) for f in FIELDS]
        stat, unit, short, domain, domaincat, value_at, cv_at = _ROW_POSITIONS
        for statistic, category, value, cv in self._leaf_cells(query, node):
            row = template.copy()
            row[stat] = statistic.statisticcat_desc
            row[unit] = statistic.unit_desc
            row[short] = statistic.short_desc
            row[domain], row[domaincat] = category
            row[value_at] = value
            row[cv_at] = cv
            yield tuple(row)
