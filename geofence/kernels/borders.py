"""Border rules of the many-devices kernel: each fix's country, confirmed border
crossings (milestones) and crossings away from the itinerary's offices (border_bypass).

A fix where no country is loaded (sea, no data) keeps the previous fix's
country: it never changes it. A change is confirmed once the fixes have been
in the new country for ``confirm_ms`` (fix time), so GPS scatter along a
border does not cross it back and forth.
"""

from __future__ import annotations

from typing import NamedTuple

from numba import njit

from geofence.kernels.countries import country_at
from geofence.kernels.events import BORDER_BYPASS, BORDER_CROSSED, emit
from geofence.types import FloatArray, IntArray


class BorderState(NamedTuple):
    """DeviceState's country fields (countries as indices, -1 for none), updated in place."""

    fix_country: IntArray
    country: IntArray
    cand: IntArray
    cand_t: IntArray
    cand_lon: FloatArray
    cand_lat: FloatArray
    post_seen: IntArray


@njit(cache=True)
def fix_countries(fx, dev_start, first, stop, countries, st, pt_country):  # type: ignore[no-untyped-def]
    """Each new point's country into ``pt_country`` (the previous fix's where none is
    loaded), and the previous fix's too; ``countries``: ``country_at``'s arrays."""
    lon, lat = fx.lon, fx.lat
    for d in range(first.shape[0]):
        if first[d] > dev_start[d]:  # the previous fix
            pt_country[first[d] - 1] = st.fix_country[d]
        for i in range(first[d], stop[d]):
            c = country_at(lon[i], lat[i], *countries)
            if c >= 0:
                st.fix_country[d] = c
            pt_country[i] = st.fix_country[d]


@njit(cache=True)
def border_rule(fx, first, stop, pt_country, pt_office, confirm_ms, grace_ms, st, ev, ne):  # type: ignore[no-untyped-def]
    """Crossings of each device d over its new points ``[first[d], stop[d])``: the
    first country seen is where it is, a change confirmed after ``confirm_ms`` is a
    ``border_crossed`` milestone (at the first fix in the new country); it is also a
    ``border_bypass`` unless the truck was in an itinerary office zone (``pt_office``)
    within ``grace_ms`` before that fix (or since)."""
    t, lon, lat = fx.t, fx.lon, fx.lat
    for d in range(first.shape[0]):
        for i in range(first[d], stop[d]):
            if pt_office[i] >= 0:
                st.post_seen[d] = t[i]
            c = pt_country[i]
            if c < 0:
                continue
            if st.country[d] < 0:
                st.country[d] = c
            if c == st.country[d]:
                st.cand[d] = -1
                continue
            if st.cand[d] != c:
                st.cand[d] = c
                st.cand_t[d] = t[i]
                st.cand_lon[d] = lon[i]
                st.cand_lat[d] = lat[i]
            if t[i] - st.cand_t[d] < confirm_ms:
                continue
            before = st.country[d]
            st.country[d] = c
            st.cand[d] = -1
            ne = emit(ev, ne, d, BORDER_CROSSED, st.cand_t[d], -1, t[i], st.cand_lon[d], st.cand_lat[d], i, c,
                      float(before))
            if st.post_seen[d] < 0 or st.post_seen[d] < st.cand_t[d] - grace_ms:
                ne = emit(ev, ne, d, BORDER_BYPASS, st.cand_t[d], t[i], t[i], st.cand_lon[d], st.cand_lat[d], i,
                          c, float(before))
    return ne
