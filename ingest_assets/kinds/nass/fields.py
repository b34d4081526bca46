"""The Quick Stats record layout, declared once for the client, the cleaner and the stand-in.

The 39 fields in the canonical order of the CSV header (reference §2.1); JSON records carry the
same names in an unstable order. Every field but the two measures is also a query parameter.
"""

FIELDS: tuple[str, ...] = (
    "source_desc",
    "sector_desc",
    "group_desc",
    "commodity_desc",
    "class_desc",
    "prodn_practice_desc",
    "util_practice_desc",
    "statisticcat_desc",
    "unit_desc",
    "short_desc",
    "domain_desc",
    "domaincat_desc",
    "agg_level_desc",
    "state_ansi",
    "state_fips_code",
    "state_alpha",
    "state_name",
    "asd_code",
    "asd_desc",
    "county_ansi",
    "county_code",
    "county_name",
    "region_desc",
    "zip_5",
    "watershed_code",
    "watershed_desc",
    "congr_district_code",
    "country_code",
    "country_name",
    "location_desc",
    "year",
    "freq_desc",
    "begin_code",
    "end_code",
    "reference_period_desc",
    "week_ending",
    "load_time",
    "Value",
    "CV (%)",
)
MEASURES: tuple[str, ...] = ("Value", "CV (%)")

# Filter names the API knows (reference §1.2). The API silently ignores unknown names — a typo
# would fetch the unfiltered database — so the catalog refuses them instead.
QUERY_PARAMETERS = frozenset(FIELDS) - frozenset(MEASURES)
