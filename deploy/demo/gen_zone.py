#!/usr/bin/python3
"""gen_zone.py -- the Kestrel Cross demo ANM zone: network model, DER register,
ANM constraints, SCADA points, and a year of half-hourly history, weather,
a day-ahead weather forecast and ensemble, and an outage schedule, all in
the formats the service ingests.

How it works, in order:
  1. The network (a MATPOWER v2 case) is built from the tables below:
     typical UK 132/33/11 kV impedances per km and per transformer rating
     (docs/demo-zone.md gives every number and where it comes from).
  2. A DC model of the case gives PTDFs and LODFs; pre-event limits (PEL)
     follow from post-fault ratings and LODFs; the sites each ANM constraint
     can curtail are those with a sensitivity of 5 % or more (NGED method).
  3. Weather is simulated per weather location on a half-hour grid from
     latent AR(1) Gaussian processes (cloud, wind, temperature anomaly),
     spatially correlated; sites and primaries turn it into MW through
     physical models (solar geometry + PV, Weibull wind + power curve,
     battery schedules, UK demand shape with temperature dependence).
  4. Branch flows come from a DC power flow of the half-hour's injections
     (outages in the schedule applied), then everything is written out.
Only the standard library is used; every random stream is seeded from
(--seed, stream name) so the same arguments give byte-identical files.

Usage: /usr/bin/python3 deploy/demo/gen_zone.py --out DIR [--year Y]
       [--seed S] [--days N] [--demo-day YYYY-MM-DD] [--model-only]
"""

import argparse
import csv
import datetime as dt
import hashlib
import json
import math
import operator
import os
import random
import sys

DEFAULT_SEED = 20250605
DEFAULT_YEAR = 2025
BASE_MVA = 100.0
SLOT = 1800                      # seconds per half-hour
ZONE_NAME = "Kestrel Cross ANM zone"
SCHEME = "KEST_ANM"

# --------------------------------------------------------------------------
# Network tables
# --------------------------------------------------------------------------

# Conductor / cable types: R, X (ohm/km), B (uS/km), winter continuous MVA at
# the voltage used, seasonal multipliers, post-fault multiplier, fault rate
# (per 100 km per year), mean repair hours.
TYPES = {
    # 33 kV overhead line, 175 mm2 ACSR "Lynx"
    "lynx33": dict(kind="line", kv=33, r=0.159, x=0.355, b=3.2, winter=30.0,
                   season=dict(winter=1.0, spring=0.92, autumn=0.92, summer=0.82),
                   post=1.05, fault=7.0, repair=10.0),
    # 33 kV overhead line, 100 mm2 ACSR "Dog"
    "dog33": dict(kind="line", kv=33, r=0.274, x=0.370, b=3.1, winter=20.6,
                  season=dict(winter=1.0, spring=0.92, autumn=0.92, summer=0.82),
                  post=1.05, fault=7.0, repair=10.0),
    # 33 kV overhead line, 70 mm2 ACSR "Mink" (older rural spur)
    "mink33": dict(kind="line", kv=33, r=0.390, x=0.380, b=3.0, winter=17.0,
                   season=dict(winter=1.0, spring=0.92, autumn=0.92, summer=0.82),
                   post=1.05, fault=7.0, repair=10.0),
    # 33 kV overhead line, 300 mm2 AAAC "Upas" (reconductored wind route)
    "upas33": dict(kind="line", kv=33, r=0.110, x=0.340, b=3.4, winter=38.0,
                   season=dict(winter=1.0, spring=0.92, autumn=0.92, summer=0.82),
                   post=1.05, fault=7.0, repair=10.0),
    # 33 kV cable, 3-core 300 mm2 Al XLPE
    "xlpe33": dict(kind="cable", kv=33, r=0.130, x=0.110, b=78.5, winter=31.0,
                   season=dict(winter=1.0, spring=0.97, autumn=0.97, summer=0.92),
                   post=1.15, fault=2.5, repair=96.0),
    # 132 kV overhead line, 175 mm2 ACSR "Lynx"
    "lynx132": dict(kind="line", kv=132, r=0.159, x=0.400, b=2.8, winter=112.0,
                    season=dict(winter=1.0, spring=0.92, autumn=0.92, summer=0.80),
                    post=1.05, fault=0.8, repair=24.0),
}

# Transformers: MVA nameplate (ONAF), impedance on own rating, X/R, faults
# per 100 transformer-years, mean repair hours.
TX_TYPES = {
    "gt90": dict(mva=90.0, z=0.22, xr=40.0, kv=(132, 33), fault=1.5, repair=240.0),
    "pt24": dict(mva=24.0, z=0.25, xr=20.0, kv=(33, 11), fault=1.0, repair=168.0),
    "pt75": dict(mva=7.5, z=0.075, xr=12.0, kv=(33, 11), fault=1.0, repair=168.0),
}
TX_SEASON = dict(winter=1.10, spring=1.05, autumn=1.05, summer=1.00)
TX_POST = 1.20
SEASONS = ("winter", "spring", "summer", "autumn")

# Buses: id, name, kV, lat, lon (coordinates for 11 kV / site buses only matter).
BUSES = [
    (1, "KEST1 Kestrel Cross GSP 132kV", 132, 52.930, -0.120),
    (2, "MARL1 Marsh Lane 132kV", 132, 52.850, 0.020),
    (10, "KEST3A Kestrel Cross 33kV section A", 33, 52.930, -0.120),
    (11, "KEST3B Kestrel Cross 33kV section B", 33, 52.930, -0.120),
    (12, "MARL3 Marsh Lane 33kV", 33, 52.850, 0.020),
    (60, "DROV3 Drove Tee 33kV", 33, 52.900, -0.300),
    (61, "MWHB3 Marsh Wind hub 33kV", 33, 52.870, -0.200),
]

# Primaries: code, name, transformer type, nominal winter peak MW, rooftop PV
# MW, lat, lon.  33 kV bus 20+k, 11 kV bus 40+k.
PRIMARIES = [
    ("NORB", "Northby", "pt24", 14.0, 1.6, 52.990, -0.160),
    ("ASHW", "Ashwell", "pt75", 5.0, 0.6, 52.985, -0.020),
    ("FENW", "Fenwick", "pt24", 16.0, 1.8, 52.950, -0.220),
    ("SALT", "Saltmarsh", "pt75", 4.5, 0.5, 52.960, 0.040),
    ("HOLF", "Holme Fen", "pt24", 12.0, 1.4, 52.905, -0.180),
    ("QUAR", "Quarry Hill", "pt75", 5.0, 0.5, 52.880, -0.330),
    ("WITB", "Witham Bridge", "pt24", 20.0, 2.4, 52.830, 0.060),
    ("SEDG", "Sedgebrook", "pt75", 5.0, 0.6, 52.800, -0.060),
    ("THOR", "Thornby", "pt24", 18.0, 2.0, 52.790, 0.080),
    ("EAST", "Eastfield", "pt75", 6.0, 0.7, 52.900, -0.020),
    ("RAVE", "Ravensmoor", "pt24", 11.0, 1.2, 52.870, 0.110),
    ("BECK", "Beckingham", "pt75", 4.0, 0.4, 52.770, -0.150),
]
PRIM_INDEX = {p[0]: i for i, p in enumerate(PRIMARIES)}


def p33(code):
    return 20 + PRIM_INDEX[code]


def p11(code):
    return 40 + PRIM_INDEX[code]


# 33/132 kV circuits: name, from bus, to bus, type, km.
CIRCUITS = [
    ("KEST-MARL-132", 1, 2, "lynx132", 18.0),
    ("KEST-NORB-1", 10, p33("NORB"), "lynx33", 8.0),
    ("KEST-NORB-2", 10, p33("NORB"), "lynx33", 8.0),
    ("NORB-ASHW", p33("NORB"), p33("ASHW"), "dog33", 6.0),
    ("ASHW-KEST", p33("ASHW"), 11, "dog33", 9.0),
    ("KEST-FENW-1", 10, p33("FENW"), "xlpe33", 4.0),
    ("KEST-FENW-2", 10, p33("FENW"), "xlpe33", 4.0),
    ("KEST-SALT", 11, p33("SALT"), "lynx33", 12.0),
    ("SALT-HOLF", p33("SALT"), p33("HOLF"), "lynx33", 7.0),
    ("KEST-HOLF", 11, p33("HOLF"), "lynx33", 15.0),
    ("HOLF-DROV", p33("HOLF"), 60, "upas33", 9.0),
    ("DROV-QUAR", 60, p33("QUAR"), "dog33", 5.0),
    ("DROV-MWHB", 60, 61, "upas33", 6.0),
    ("MWHB-MARL", 61, 12, "upas33", 10.0),
    ("MARL-WITB-1", 12, p33("WITB"), "xlpe33", 4.5),
    ("MARL-WITB-2", 12, p33("WITB"), "xlpe33", 4.5),
    ("MARL-SEDG", 12, p33("SEDG"), "dog33", 11.0),
    ("SEDG-THOR", p33("SEDG"), p33("THOR"), "lynx33", 8.0),
    ("MARL-THOR", 12, p33("THOR"), "lynx33", 13.0),
    ("KEST-EAST", 10, p33("EAST"), "lynx33", 10.0),
    ("EAST-RAVE", p33("EAST"), p33("RAVE"), "lynx33", 9.0),
    ("RAVE-MARL", p33("RAVE"), 12, "lynx33", 14.0),
    ("MARL-BECK", 12, p33("BECK"), "mink33", 16.0),
]

# Grid transformers: name, HV bus, LV bus, type, tap ratio (MATPOWER: >1
# lowers, <1 raises the LV side).  Taps sit on the 1.67 % step grid of a
# 132/33 kV on-load tap changer, where automatic voltage control would hold
# them for the nominal demand of the case (33 kV busbars near 1.01 pu).
GTS = [
    ("KEST-GT1", 1, 10, "gt90", 0.9666),
    ("KEST-GT2", 1, 11, "gt90", 0.9666),
    ("MARL-GT3", 2, 12, "gt90", 0.9499),
]

# Primary transformer taps (1.43 % steps of a 33/11 kV tap changer), set
# the same way for 11 kV busbars near 1.00 pu at nominal demand.
PT_TAPS = dict(NORB=0.9857, ASHW=1.0, FENW=1.0, SALT=1.0, HOLF=0.9857, QUAR=0.9857,
               WITB=0.9714, SEDG=0.9714, THOR=0.9571, EAST=0.9857, RAVE=0.9857, BECK=0.9857)

# DER sites: id, name, fuel mix [(fuel, installed MW, extra)], export MW,
# connection bus or (primary/tee bus, connection cable km), enquiry tranches
# [(MW, firm, enquiry year)], import MW.
#   bus: an int = connect at that bus; ("cust", parent_bus, km, type) =
#   own 33 kV customer substation on a connection circuit.
SITES = [
    # 33 kV solar farms
    ("S01", "Fen Farm Solar", [("solar", 38.0, dict(tilt=20))], 30.0, ("cust", p33("HOLF"), 3.0, "xlpe33"), [(30.0, False, 2016)], 0.2),
    ("S02", "Saltings Solar", [("solar", 25.0, dict(tilt=25))], 20.0, ("cust", p33("SALT"), 2.0, "xlpe33"), [(20.0, False, 2017)], 0.1),
    ("S03", "Drove Lane Solar", [("solar", 32.0, dict(tilt=20))], 25.0, ("cust", 60, 4.0, "xlpe33"), [(25.0, False, 2019)], 0.2),
    ("S04", "Ashwell Solar Park", [("solar", 19.0, dict(tilt=25))], 15.0, ("cust", p33("ASHW"), 1.5, "xlpe33"), [(15.0, False, 2016)], 0.1),
    ("S05", "Quarry Solar", [("solar", 16.0, dict(tilt=25, azimuth=170))], 12.5, ("cust", p33("QUAR"), 2.0, "xlpe33"), [(12.5, False, 2020)], 0.1),
    ("S06", "Sedge Solar", [("solar", 25.0, dict(tilt=20))], 20.0, ("cust", p33("SEDG"), 3.0, "xlpe33"), [(20.0, False, 2021)], 0.1),
    ("S07", "Beck Solar", [("solar", 16.0, dict(tilt=25, azimuth=190))], 12.0, ("cust", p33("BECK"), 2.5, "xlpe33"), [(12.0, False, 2022)], 0.1),
    ("S08", "Eastfield Solar", [("solar", 25.0, dict(tilt=20))], 20.0, ("cust", p33("EAST"), 2.0, "xlpe33"), [(20.0, False, 2018)], 0.1),
    # 33 kV wind farms (W03 has a firm original tranche and a non-firm extension)
    ("W01", "Marsh Wind", [("wind", 27.6, dict(hub=80, turbines=12))], 27.6, 61, [(27.6, False, 2016)], 0.3),
    ("W02", "Ravensmoor Wind", [("wind", 20.7, dict(hub=80, turbines=9))], 20.0, ("cust", p33("RAVE"), 5.0, "xlpe33"), [(20.0, False, 2018)], 0.2),
    ("W03", "North Fen Wind", [("wind", 20.0, dict(hub=90, turbines=8))], 20.0, ("cust", p33("NORB"), 4.0, "xlpe33"), [(10.0, True, 2011), (10.0, False, 2017)], 0.2),
    ("W04", "Drove Wind Extension", [("wind", 13.8, dict(hub=100, turbines=4))], 13.8, 61, [(13.8, False, 2022)], 0.1),
    # batteries
    ("B01", "Kestrel BESS", [("battery", 30.0, dict(hours=2.0))], 30.0, ("cust", 11, 1.0, "xlpe33"), [(30.0, False, 2020)], 30.0),
    ("B02", "Witham BESS", [("battery", 20.0, dict(hours=1.0))], 20.0, ("cust", p33("WITB"), 1.5, "xlpe33"), [(20.0, False, 2021)], 20.0),
    ("B03", "Sedgebrook BESS", [("battery", 10.0, dict(hours=2.0))], 10.0, p11("SEDG"), [(10.0, False, 2022)], 10.0),
    # hybrid: solar + co-located battery behind one export limit, two tranches
    ("H01", "Sutton Fen Solar and Storage", [("solar", 19.0, dict(tilt=20)), ("battery", 5.0, dict(hours=2.0))], 15.0,
     ("cust", p33("RAVE"), 3.0, "xlpe33"), [(10.0, False, 2019), (5.0, False, 2023)], 5.0),
    # other non-firm
    ("G01", "Thornby Gas Peaker", [("gas", 20.0, {})], 20.0, ("cust", p33("THOR"), 1.0, "xlpe33"), [(20.0, False, 2019)], 0.3),
    ("A01", "Fenwick Anaerobic Digestion", [("biomass", 5.0, {})], 4.8, p11("FENW"), [(4.8, False, 2017)], 0.1),
    # 11 kV solar and wind
    ("S09", "Northby Solar", [("solar", 6.0, dict(tilt=25))], 5.0, p11("NORB"), [(5.0, False, 2016)], 0.05),
    ("S10", "Ashwell Road Solar", [("solar", 6.0, dict(tilt=25))], 5.0, p11("ASHW"), [(5.0, False, 2018)], 0.05),
    ("S11", "Fenwick Solar", [("solar", 6.0, dict(tilt=25))], 5.0, p11("FENW"), [(5.0, False, 2017)], 0.05),
    ("S12", "Salt Lane Solar", [("solar", 5.0, dict(tilt=25, azimuth=200))], 4.0, p11("SALT"), [(4.0, False, 2021)], 0.05),
    ("S13", "Holme Solar", [("solar", 6.0, dict(tilt=25))], 5.0, p11("HOLF"), [(5.0, False, 2020)], 0.05),
    ("S14", "Quarry Lane Solar", [("solar", 3.8, dict(tilt=30))], 3.0, p11("QUAR"), [(3.0, False, 2023)], 0.05),
    ("S15", "Eastfield Farm Solar", [("solar", 6.0, dict(tilt=25))], 5.0, p11("EAST"), [(5.0, False, 2019)], 0.05),
    ("S16", "Raven Solar", [("solar", 5.0, dict(tilt=25))], 4.0, p11("RAVE"), [(4.0, False, 2022)], 0.05),
    ("S17", "Beck Lane Solar", [("solar", 6.0, dict(tilt=25))], 5.0, p11("BECK"), [(5.0, False, 2023)], 0.05),
    ("S18", "Ashwell Grange Solar", [("solar", 5.0, dict(tilt=25))], 4.0, p11("ASHW"), [(4.0, False, 2022)], 0.05),
    ("W05", "Sedgebrook Wind", [("wind", 4.6, dict(hub=80, turbines=2))], 4.6, p11("SEDG"), [(4.6, False, 2017)], 0.05),
    ("W06", "Beckingham Wind", [("wind", 2.3, dict(hub=80, turbines=1))], 2.3, p11("BECK"), [(2.3, False, 2018)], 0.05),
    ("W07", "Thornby Wind", [("wind", 3.0, dict(hub=60, turbines=2))], 3.0, p11("THOR"), [(3.0, False, 2020)], 0.05),
    # firm sites (connected before ANM)
    ("F01", "Marsh Lane Biomass", [("biomass", 26.0, {})], 25.0, ("cust", 12, 2.0, "xlpe33"), [(25.0, True, 2010)], 1.0),
    ("F02", "Witham CHP", [("chp", 8.0, {})], 8.0, p11("WITB"), [(8.0, True, 2012)], 0.5),
    ("F03", "Quarry Landfill Gas", [("other", 3.0, {})], 3.0, p11("QUAR"), [(3.0, True, 2009)], 0.05),
    ("F04", "Ashwell Old Solar", [("solar", 5.0, dict(tilt=30))], 5.0, p11("ASHW"), [(5.0, True, 2014)], 0.05),
]

# Weather locations (Open-Meteo grid points covering the zone).
WX_LOCS = [
    ("kestrel-nw", 52.97, -0.25, 4.0),
    ("kestrel-ne", 52.97, 0.05, 3.0),
    ("kestrel-sw", 52.81, -0.20, 6.0),
    ("kestrel-se", 52.81, 0.08, 2.0),
]

# ANM constraints: id, description, kind, anm, kV, branch names with sign,
# boundary limit MW (boundary only).  Signs make export the positive sense.
CONSTRAINTS = [
    ("KEST_ASHW_PT", "Ashwell primary T1 reverse power", "transformer", "DANM", 11, [("ASHW-T1", -1)], None),
    ("KEST_HOLF_DROV", "Holme Fen - Drove Tee 33kV circuit", "branch", "DANM", 33, [("HOLF-DROV", -1)], None),
    ("KEST_MWHB_MARL", "Marsh Wind hub - Marsh Lane 33kV circuit", "branch", "DANM", 33, [("MWHB-MARL", 1)], None),
    ("KEST_NORB_ASHW", "Northby - Ashwell 33kV circuit", "branch", "DANM", 33, [("NORB-ASHW", -1)], None),
    ("KEST_MARL_BECK", "Marsh Lane - Beckingham 33kV circuit", "branch", "DANM", 33, [("MARL-BECK", -1)], None),
    ("KEST_GT1", "Kestrel Cross GT1 132/33kV reverse power", "transformer", "DANM", 33, [("KEST-GT1", -1)], None),
    ("KEST_GT2", "Kestrel Cross GT2 132/33kV reverse power", "transformer", "DANM", 33, [("KEST-GT2", -1)], None),
    ("KEST_GT3", "Marsh Lane GT3 132/33kV reverse power", "transformer", "DANM", 33, [("MARL-GT3", -1)], None),
    ("KEST_MARL_132", "Kestrel Cross - Marsh Lane 132kV circuit", "branch", "DANM", 132, [("KEST-MARL-132", -1)], None),
    ("KEST_GSP_CARPL", "Kestrel Cross GSP reverse power (CARPL, Technical Limit)", "boundary", "TANM", 132,
     [("KEST-GT1", -1), ("KEST-GT2", -1), ("KEST-MARL-132", -1)], 165.0),
]

# Voltage constraints (sql/006_voltage.sql): id, description, monitored bus,
# vmax, vmin (p.u., ESQCR 2002 reg. 27: +-6 % for 1 kV to 132 kV), and the
# sites the ANM may curtail for it (those downstream of the bus).
# Beckingham's 33 kV busbar sits at the end of 16 km of 70 mm2 "Mink"
# (r = 0.57, x = 0.56 p.u. on 100 MVA): exporting its solar and wind raises
# it by about 0.5 % per MW, so sunny middays push it over +6 % and nights,
# cloud and its own demand do not.
VOLTAGE_CONSTRAINTS = [
    ("KEST_BECK_V", "Beckingham 33kV busbar overvoltage", p33("BECK"), 1.06, 0.94, ("S07", "S17", "W06")),
]

# Branches with a SCADA MW point (besides GTs, which always have one).
METERED = ["KEST-MARL-132", "ASHW-T1", "HOLF-DROV", "MWHB-MARL", "NORB-ASHW", "MARL-BECK",
           "KEST-HOLF", "SALT-HOLF", "DROV-MWHB", "RAVE-MARL", "EAST-RAVE"]

SENS_MIN = 0.05          # NGED 5.1.1/5.1.2: sites with >= 5 % sensitivity


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def rng(seed, name):
    """An independent random stream per (seed, name), stable across runs."""
    h = hashlib.sha256(("%d:%s" % (seed, name)).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "big"))


def phi(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def fmt(v, nd=3):
    s = "%.*f" % (nd, v)
    if s.startswith("-") and float(s) == 0.0:
        s = s[1:]
    return s


def last_sunday(year, month):
    d = dt.date(year, month + 1, 1) - dt.timedelta(days=1) if month < 12 else dt.date(year, 12, 31)
    return d - dt.timedelta(days=(d.weekday() + 1) % 7)


def bst_window(year):
    """UTC epoch seconds [start, end) of British Summer Time in a year."""
    s = last_sunday(year, 3)
    e = last_sunday(year, 10)
    t0 = int(dt.datetime(s.year, s.month, s.day, 1, tzinfo=dt.timezone.utc).timestamp())
    t1 = int(dt.datetime(e.year, e.month, e.day, 1, tzinfo=dt.timezone.utc).timestamp())
    return t0, t1


def uk_offset(t):
    y = dt.datetime.fromtimestamp(t, dt.timezone.utc).year
    a, b = bst_window(y)
    return 3600 if a <= t < b else 0


def iso_local(t):
    off = uk_offset(t)
    d = dt.datetime.fromtimestamp(t + off, dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ("+01:00" if off else "+00:00")


def easter(year):
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def bank_holidays(year):
    """England and Wales bank holidays (substitute days included)."""
    hol = set()
    nyd = dt.date(year, 1, 1)
    while nyd.weekday() >= 5:
        nyd += dt.timedelta(days=1)
    hol.add(nyd)
    e = easter(year)
    hol.add(e - dt.timedelta(days=2))
    hol.add(e + dt.timedelta(days=1))
    may1 = dt.date(year, 5, 1)
    hol.add(may1 + dt.timedelta(days=(7 - may1.weekday()) % 7))
    hol.add(last_sunday(year, 5) + dt.timedelta(days=1) if last_sunday(year, 5).month == 5 and
            last_sunday(year, 5).day <= 30 else last_sunday(year, 5) - dt.timedelta(days=6))
    hol.add(last_sunday(year, 8) + dt.timedelta(days=1) if last_sunday(year, 8).day <= 30 else
            last_sunday(year, 8) - dt.timedelta(days=6))
    xmas = dt.date(year, 12, 25)
    box = dt.date(year, 12, 26)
    if xmas.weekday() == 5:
        hol.update([dt.date(year, 12, 27), dt.date(year, 12, 28)])
    elif xmas.weekday() == 6:
        hol.update([box, dt.date(year, 12, 27)])
    elif box.weekday() == 5:
        hol.update([xmas, dt.date(year, 12, 28)])
    else:
        hol.update([xmas, box])
    return hol


def season_of(month):
    """Rating seasons as ENA ER P27 groups months."""
    if month in (11, 12, 1, 2):
        return "winter"
    if month in (3, 4):
        return "spring"
    if month in (5, 6, 7, 8):
        return "summer"
    return "autumn"


# --------------------------------------------------------------------------
# 1. Network
# --------------------------------------------------------------------------

class Net:
    """Buses, branches and the DC sensitivities of the zone."""

    def __init__(self):
        self.buses = []          # dict(id, name, kv, lat, lon)
        self.branches = []       # dict(name, f, t, r, x, b, rate, tap, kind, ...)
        self.sites = []
        self.bus_by_id = {}

    def add_bus(self, bid, name, kv, lat, lon):
        b = dict(id=bid, name=name, kv=kv, lat=lat, lon=lon)
        self.buses.append(b)
        self.bus_by_id[bid] = b

    def add_line(self, name, f, t, typ, km):
        ty = TYPES[typ]
        zb = ty["kv"] ** 2 / BASE_MVA
        ratings = {s: ty["winter"] * ty["season"][s] for s in SEASONS}
        self.branches.append(dict(
            name=name, f=f, t=t, kind=ty["kind"], typ=typ, km=km,
            r=ty["r"] * km / zb, x=ty["x"] * km / zb, b=ty["b"] * 1e-6 * km * zb,
            tap=0.0, ratings=ratings, post=ty["post"],
            fault=ty["fault"] * km / 100.0, repair=ty["repair"]))

    def add_tx(self, name, f, t, typ, tap):
        ty = TX_TYPES[typ]
        z = ty["z"] * BASE_MVA / ty["mva"]
        xr = ty["xr"]
        r = z / math.sqrt(1 + xr * xr)
        ratings = {s: ty["mva"] * TX_SEASON[s] for s in SEASONS}
        self.branches.append(dict(
            name=name, f=f, t=t, kind="transformer", typ=typ, km=0.0,
            r=r, x=r * xr, b=0.0, tap=tap, ratings=ratings, post=TX_POST,
            fault=ty["fault"] / 100.0, repair=ty["repair"]))

    def index(self, name):
        for i, br in enumerate(self.branches):
            if br["name"] == name:
                return i
        raise KeyError(name)


def build_net(seed):
    net = Net()
    for b in BUSES:
        net.add_bus(*b)
    for code, name, typ, peak, pv, lat, lon in PRIMARIES:
        net.add_bus(p33(code), "%s3 %s 33kV" % (code, name), 33, lat, lon)
    for code, name, typ, peak, pv, lat, lon in PRIMARIES:
        net.add_bus(p11(code), "%s1 %s 11kV" % (code, name), 11, lat, lon)
    for name, f, t, typ, tap in GTS:
        net.add_tx(name, f, t, typ, tap)
    # bus section breaker between the two Kestrel Cross 33 kV sections:
    # closed, modelled as a very short low-impedance link.
    net.branches.append(dict(name="KEST-BS", f=10, t=11, kind="line", typ="bs", km=0.0,
                             r=0.0001, x=0.0005, b=0.0, tap=0.0,
                             ratings={s: 60.0 for s in SEASONS}, post=1.0,
                             fault=0.002, repair=12.0))
    for c in CIRCUITS:
        net.add_line(*c)
    for code, name, typ, peak, pv, lat, lon in PRIMARIES:
        for k in (1, 2):
            net.add_tx("%s-T%d" % (code, k), p33(code), p11(code), typ, PT_TAPS[code])
    r = rng(seed, "sites")
    cust_bus = 70
    for sid, name, machines, export, conn, tranches, imp in SITES:
        if isinstance(conn, tuple):
            _, parent, km, typ = conn
            pb = net.bus_by_id[parent]
            lat = pb["lat"] + r.uniform(-0.02, 0.02)
            lon = pb["lon"] + r.uniform(-0.03, 0.03)
            net.add_bus(cust_bus, "%s3 %s 33kV" % (sid, name), 33, lat, lon)
            net.add_line("%s-%s" % (parent_code(net, parent), sid), parent, cust_bus, typ, km)
            bus = cust_bus
            cust_bus += 1
        else:
            bus = conn
            pb = net.bus_by_id[bus]
            lat = pb["lat"] + r.uniform(-0.02, 0.02)
            lon = pb["lon"] + r.uniform(-0.03, 0.03)
        net.sites.append(dict(id=sid, name=name, machines=machines, export=export, bus=bus,
                              tranches=tranches, imp=imp, lat=round(lat, 4), lon=round(lon, 4)))
    return net


def parent_code(net, bus):
    return net.bus_by_id[bus]["name"].split()[0][:4]


# ---- DC sensitivities ----------------------------------------------------

def invert(m):
    """Gauss-Jordan inverse with partial pivoting (small dense matrices)."""
    n = len(m)
    a = [row[:] + [1.0 if i == j else 0.0 for j in range(n)] for i, row in enumerate(m)]
    for c in range(n):
        p = max(range(c, n), key=lambda i: abs(a[i][c]))
        if abs(a[p][c]) < 1e-12:
            raise ValueError("singular susceptance matrix (islanded network)")
        a[c], a[p] = a[p], a[c]
        piv = a[c][c]
        a[c] = [v / piv for v in a[c]]
        for i in range(n):
            if i != c and a[i][c] != 0.0:
                f = a[i][c]
                ai, ac = a[i], a[c]
                a[i] = [x - f * y for x, y in zip(ai, ac)]
    return [row[n:] for row in a]


def ptdf(net, out=()):
    """PTDF[branch][bus index]: MW on the branch (from->to) per MW injected at
    the bus and withdrawn at the reference bus (the GSP, index 0).  Branches
    in `out` are open.  DC model as MATPOWER's makeBdc: b = 1/(x*tap)."""
    ids = [b["id"] for b in net.buses]
    pos = {bid: i for i, bid in enumerate(ids)}
    n = len(ids)
    bmat = [[0.0] * n for _ in range(n)]
    bb = []
    for k, br in enumerate(net.branches):
        tap = br["tap"] or 1.0
        bk = 0.0 if k in out else 1.0 / (br["x"] * tap)
        bb.append(bk)
        i, j = pos[br["f"]], pos[br["t"]]
        bmat[i][i] += bk
        bmat[j][j] += bk
        bmat[i][j] -= bk
        bmat[j][i] -= bk
    red = [row[1:] for row in bmat[1:]]
    xi = invert(red)
    x = [[0.0] * n] + [[0.0] + row for row in xi]
    res = []
    for k, br in enumerate(net.branches):
        i, j = pos[br["f"]], pos[br["t"]]
        res.append([bb[k] * (x[i][m] - x[j][m]) for m in range(n)])
    return res, pos


def export_pattern(net, pt, pos):
    """Base flows of the design export case the PELs are set for: every
    non-storage site at 80 % of its export capacity, batteries idle,
    demand at 35 % of its nominal peak."""
    inj = [0.0] * len(pos)
    for s in net.sites:
        if s["machines"][0][0] != "battery":
            inj[pos[s["bus"]]] += 0.8 * s["export"]
    for p in PRIMARIES:
        inj[pos[p11(p[0])]] -= 0.35 * p[3]
    return [sum(map(operator.mul, row, inj)) for row in pt]


def set_pels(net, pt, pos):
    """PEL of each branch: the intact flow at which, with flows scaled along
    the design export pattern, the worst credible single outage (any other
    non-bridge branch k) would load it to its post-fault rating:
        PEL = post-fault * |f_b| / max_k |f_b + LODF(b,k) f_k|,
    left empty when no outage makes the branch worse than intact (radial
    branches, series elements), capped at the continuous rating and floored
    at 60 % of it (a branch that carries little in the design pattern would
    otherwise get a meaningless PEL).  For
    identical parallel circuits this is the textbook half of the post-fault
    rating."""
    f0 = export_pattern(net, pt, pos)
    nb = len(net.branches)
    worst = [abs(v) for v in f0]
    for k, bk in enumerate(net.branches):
        fk, tk = pos[bk["f"]], pos[bk["t"]]
        den = 1.0 - (pt[k][fk] - pt[k][tk])
        if abs(den) < 1e-6:
            continue            # a bridge: its loss islands something
        for b in range(nb):
            if b != k:
                worst[b] = max(worst[b], abs(f0[b] + (pt[b][fk] - pt[b][tk]) / den * f0[k]))
    for b, br in enumerate(net.branches):
        br["pel"] = {}
        ratio = abs(f0[b]) / worst[b] if worst[b] > 1e-9 else 1.0
        for s in SEASONS:
            cont = br["ratings"][s]
            pel = max(0.6 * cont, cont * br["post"] * ratio)
            br["pel"][s] = None if ratio > 0.999 or pel >= cont else round(pel, 2)


def constraint_sens(net, pt, pos, con):
    """Sensitivity of a constraint's signed flow to each site's injection."""
    out = {}
    for s in net.sites:
        m = pos[s["bus"]]
        v = 0.0
        for bname, sign in con[5]:
            v += sign * pt[net.index(bname)][m]
        out[s["id"]] = v
    return out


# --------------------------------------------------------------------------
# Register and model files
# --------------------------------------------------------------------------

def enquiries(net, seed):
    """Tranches with dates; LIFO position = order of enquiry date among
    non-firm tranches (1 = oldest, curtailed last)."""
    r = rng(seed, "enquiries")
    rows = []
    for s in net.sites:
        for k, (mw, firm, year) in enumerate(s["tranches"]):
            ed = dt.date(year, 1, 1) + dt.timedelta(days=r.randrange(0, 360))
            cd = ed + dt.timedelta(days=r.randrange(420, 1000))
            if cd >= dt.date(DEFAULT_YEAR, 1, 1) - dt.timedelta(days=1):
                cd = dt.date(DEFAULT_YEAR - 1, 12, 1) - dt.timedelta(days=r.randrange(0, 60))
            if cd < ed:
                cd = ed + dt.timedelta(days=200)
            rows.append(dict(site=s["id"], mw=mw, firm=firm, ed=ed, cd=cd, k=k))
    nonfirm = sorted((e for e in rows if not e["firm"]), key=lambda e: (e["ed"], e["site"]))
    for i, e in enumerate(nonfirm, 1):
        e["lifo"] = i
        e["anm"] = "DANM+TANM" if e["ed"] >= dt.date(2020, 6, 1) else "DANM"
    for e in rows:
        if e["firm"]:
            e["lifo"] = None
            e["anm"] = "NONE"
        e["id"] = "ENQ-%d-%s%s" % (e["ed"].year, e["site"], "" if e["k"] == 0 else chr(ord("a") + e["k"]))
    return rows


def write_csv(path, header, rows):
    """RFC 4180 CSV (fields quoted only when they need it), LF line ends."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow(["" if v is None else v for v in row])


def num(v, nd=4):
    """A short decimal for model files: no trailing zeros."""
    s = ("%.*f" % (nd, v)).rstrip("0").rstrip(".")
    return s if s not in ("-0", "") else "0"


def write_case(path, net, demand_mean):
    """MATPOWER v2 case: buses with nominal (annual mean) demand, one slack
    generator at the GSP (the transmission infeed), every branch."""
    lines = ["function mpc = kestrel_cross",
             "%KESTREL_CROSS  Demo ANM zone: Kestrel Cross GSP (132 kV), 3 x 90 MVA 132/33 kV grid",
             "%   transformers, meshed 33 kV network, 12 primaries (2 x 33/11 kV each).",
             "%   Generated by deploy/demo/gen_zone.py; see docs/demo-zone.md.  Bus Pd/Qd hold the",
             "%   annual mean demand of each primary at 0.95 pf (a nominal snapshot); DER sites are",
             "%   in the DER register, not in mpc.gen.",
             "mpc.version = '2';", "mpc.baseMVA = 100;", "",
             "%% bus data",
             "%\tbus_i\ttype\tPd\tQd\tGs\tBs\tarea\tVm\tVa\tbaseKV\tzone\tVmax\tVmin",
             "mpc.bus = ["]
    tanphi = math.tan(math.acos(0.95))
    for b in net.buses:
        pd = demand_mean.get(b["id"], 0.0)
        vmax, vmin = (1.10, 0.90) if b["kv"] == 132 else (1.06, 0.94)
        lines.append("\t%d\t%d\t%s\t%s\t0\t0\t1\t1\t0\t%d\t1\t%s\t%s;" % (
            b["id"], 3 if b["id"] == 1 else 1, num(pd, 3), num(pd * tanphi, 3), b["kv"],
            num(vmax), num(vmin)))
    lines += ["];", "", "%% generator data",
              "%\tbus\tPg\tQg\tQmax\tQmin\tVg\tmBase\tstatus\tPmax\tPmin",
              "mpc.gen = [", "\t1\t0\t0\t500\t-500\t1\t100\t1\t500\t-500;", "];", "",
              "%% branch data",
              "%\tfbus\ttbus\tr\tx\tb\trateA\trateB\trateC\tratio\tangle\tstatus\tangmin\tangmax",
              "mpc.branch = ["]
    for br in net.branches:
        w = br["ratings"]["winter"]
        lines.append("\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t0\t1\t-360\t360;" % (
            br["f"], br["t"], num(br["r"], 6), num(br["x"], 6), num(br["b"], 6),
            num(w, 2), num(w * br["post"], 2), num(w * br["post"], 2), num(br["tap"], 4)))
    lines += ["];", "", "%%-----  OPF Data  -----%%", "%% generator cost data",
              "%\t2\tstartup\tshutdown\tn\tc(n-1)\t...\tc0",
              "mpc.gencost = [", "\t2\t0\t0\t3\t0\t1\t0;", "];", "",
              "%% bus names", "mpc.bus_name = {"]
    for b in net.buses:
        lines.append("\t'%s';" % b["name"].split()[0])
    lines.append("};")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_model(zdir, net, enq, sens, points):
    os.makedirs(zdir, exist_ok=True)
    demand_mean = {p11(p[0]): p[3] * 0.62 for p in PRIMARIES}
    write_case(os.path.join(zdir, "kestrel_cross.m"), net, demand_mean)
    write_csv(os.path.join(zdir, "sites.csv"),
              ["site_id", "name", "bus", "export_capacity_mw", "import_capacity_mw", "latitude", "longitude"],
              [(s["id"], s["name"], s["bus"], num(s["export"]), num(s["imp"]), num(s["lat"]), num(s["lon"]))
               for s in net.sites])
    write_csv(os.path.join(zdir, "enquiries.csv"),
              ["enquiry_id", "site_id", "capacity_mw", "firm", "lifo_position", "anm_type", "status",
               "enquiry_date", "connection_date"],
              [(e["id"], e["site"], num(e["mw"]), "yes" if e["firm"] else "no", e["lifo"], e["anm"],
                "connected", e["ed"].isoformat(), e["cd"].isoformat())
               for e in sorted(enq, key=lambda e: (e["lifo"] or 0, e["id"]))])
    mrows = []
    for s in net.sites:
        for k, (fuel, mw, extra) in enumerate(s["machines"]):
            hub = extra.get("hub") if fuel == "wind" else None
            tilt = extra.get("tilt") if fuel == "solar" else None
            az = extra.get("azimuth", 180) if fuel == "solar" else None
            mrows.append(("M-%s-%d" % (s["id"], k + 1), s["id"], fuel, num(mw), hub, tilt, az))
    write_csv(os.path.join(zdir, "machines.csv"),
              ["machine_id", "site_id", "fuel_type", "installed_capacity_mw", "hub_height_m", "tilt_deg",
               "azimuth_deg"], mrows)
    write_csv(os.path.join(zdir, "branches.csv"),
              ["branch", "name", "kind", "fault_rate_per_year", "mean_repair_hours"],
              [(i + 1, br["name"], br["kind"], num(br["fault"], 4), num(br["repair"]))
               for i, br in enumerate(net.branches)])
    rrows = []
    for br in net.branches:
        for s in SEASONS:
            cont = br["ratings"][s]
            pel = br["pel"][s]
            rrows.append((br["name"], s, num(cont, 2), None if pel is None else num(min(pel, cont), 2),
                          num(cont * br["post"], 2)))
    write_csv(os.path.join(zdir, "ratings.csv"),
              ["branch", "season", "continuous_mva", "pel_mva", "post_fault_mva"], rrows)
    write_csv(os.path.join(zdir, "constraints.csv"),
              ["constraint_id", "scheme_id", "description", "kind", "anm_type", "voltage_kv", "limit_mw",
               "trim_pct", "release_pct"],
              [(c[0], SCHEME, c[1], c[2], c[3], c[4], None if c[6] is None else num(c[6]), 100, 95)
               for c in CONSTRAINTS])
    write_csv(os.path.join(zdir, "constraint_branches.csv"), ["constraint_id", "branch", "sign"],
              [(c[0], b, sg) for c in CONSTRAINTS for b, sg in c[5]])
    crow = []
    anm_of = {}
    for e in enq:
        if not e["firm"]:
            anm_of.setdefault(e["site"], set()).update(e["anm"].split("+"))
    for c in CONSTRAINTS:
        for s in net.sites:
            if c[3] in anm_of.get(s["id"], ()) and sens[c[0]][s["id"]] >= SENS_MIN:
                crow.append((c[0], s["id"]))
    write_csv(os.path.join(zdir, "voltage_constraints.csv"),
              ["constraint_id", "scheme_id", "description", "anm_type", "bus", "vmax_pu", "vmin_pu", "trim_pct",
               "release_pct"],
              [(v[0], SCHEME, v[1], "DANM", v[2], num(v[3]), num(v[4]), 100, 95) for v in VOLTAGE_CONSTRAINTS])
    crow += [(v[0], sid) for v in VOLTAGE_CONSTRAINTS for sid in v[5]]
    write_csv(os.path.join(zdir, "constraint_sites.csv"), ["constraint_id", "site_id"], crow)
    write_csv(os.path.join(zdir, "points.csv"),
              ["point_id", "quantity", "element", "branch", "branch_end", "bus", "site_id", "scale"],
              [p["row"] for p in points])
    write_csv(os.path.join(zdir, "weather_locations.csv"),
              ["location_id", "latitude", "longitude", "elevation_m"],
              [(l[0], num(l[1]), num(l[2]), num(l[3])) for l in WX_LOCS])
    return crow


def make_points(net):
    """SCADA points: every site's output, every primary's demand, GT and
    metered circuit flows.  11 kV sites report kW (scale 0.001)."""
    pts = []
    for s in net.sites:
        kw = net.bus_by_id[s["bus"]]["kv"] == 11
        pts.append(dict(id="%s_P" % s["id"], kind="site", ref=s["id"], kw=kw,
                        row=("%s_P" % s["id"], "p_mw", "site", None, None, None, s["id"], "0.001" if kw else "1")))
    for p in PRIMARIES:
        pid = "%s_DEM_P" % p[0]
        pts.append(dict(id=pid, kind="demand", ref=p[0], kw=False,
                        row=(pid, "p_mw", "bus", None, None, p11(p[0]), None, "1")))
    for name in [g[0] for g in GTS] + METERED:
        pid = "%s_P" % name
        pts.append(dict(id=pid, kind="branch", ref=name, kw=False,
                        row=(pid, "p_mw", "branch", name, "from", None, None, "1")))
    return pts


# --------------------------------------------------------------------------
# 3. Weather
# --------------------------------------------------------------------------

class Time:
    def __init__(self, year, days):
        self.t0 = int(dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp())
        ndays = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
        self.days = min(days, ndays) if days else ndays
        self.n = self.days * 48
        self.t = [self.t0 + i * SLOT for i in range(self.n)]
        self.mid = [t + SLOT // 2 for t in self.t]
        self.off = [uk_offset(t) for t in self.t]
        self.iso = [iso_local(t) for t in self.t]
        self.doy = []
        self.utc_h = []
        self.local = []          # (date, local hour float)
        for t, o in zip(self.mid, self.off):
            d = dt.datetime.fromtimestamp(t, dt.timezone.utc)
            self.doy.append(d.timetuple().tm_yday)
            self.utc_h.append(d.hour + d.minute / 60.0)
            ld = dt.datetime.fromtimestamp(t + o, dt.timezone.utc)
            self.local.append((ld.date(), ld.hour + ld.minute / 60.0))
        # Sun: declination, equation of time (Spencer 1971), extraterrestrial.
        self.decl, self.eot, self.i0 = [], [], []
        for doy, h in zip(self.doy, self.utc_h):
            g = 2 * math.pi / 365.0 * (doy - 1 + (h - 12) / 24.0)
            self.eot.append(229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
                                      - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g)))
            self.decl.append(0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g)
                             - 0.006758 * math.cos(2 * g) + 0.000907 * math.sin(2 * g)
                             - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))
            self.i0.append(1361.0 * (1.00011 + 0.034221 * math.cos(g) + 0.00128 * math.sin(g)
                                     + 0.000719 * math.cos(2 * g) + 0.000077 * math.sin(2 * g)))


def sun(tm, i, lat, lon):
    """cos(zenith), azimuth (rad from north, clockwise) at slot i's midpoint."""
    ha = math.radians((tm.utc_h[i] * 60.0 + tm.eot[i] + 4.0 * lon) / 4.0 - 180.0)
    la = math.radians(lat)
    d = tm.decl[i]
    cz = math.sin(la) * math.sin(d) + math.cos(la) * math.cos(d) * math.cos(ha)
    az = math.atan2(math.sin(ha), math.cos(ha) * math.sin(la) - math.tan(d) * math.cos(la)) + math.pi
    return cz, az


def irradiance(cz, i0, cloud):
    """GHI, DNI, DHI (W/m2): Haurwitz clear sky, Kasten-Czeplak cloud
    attenuation, Erbs diffuse fraction."""
    if cz <= 0.01:
        return 0.0, 0.0, 0.0
    cs = 1098.0 * cz * math.exp(-0.057 / cz)
    okta = cloud / 12.5
    ghi = cs * (1.0 - 0.75 * (okta / 8.0) ** 3.4)
    kt = min(ghi / (i0 * cz), 1.0)
    if kt <= 0.22:
        fd = 1.0 - 0.09 * kt
    elif kt <= 0.8:
        fd = 0.9511 - 0.1604 * kt + 4.388 * kt ** 2 - 16.638 * kt ** 3 + 12.336 * kt ** 4
    else:
        fd = 0.165
    dhi = ghi * fd
    dni = (ghi - dhi) / cz
    return ghi, dni, dhi


def ar1(r, n, phi_, sd=1.0):
    """Stationary AR(1) with marginal N(0, sd^2)."""
    out = [0.0] * n
    x = r.gauss(0.0, 1.0)
    s = math.sqrt(1.0 - phi_ * phi_)
    for i in range(n):
        x = phi_ * x + s * r.gauss(0.0, 1.0)
        out[i] = sd * x
    return out


def mix(common, local, rho):
    a, b = math.sqrt(rho), math.sqrt(1.0 - rho)
    return [a * c + b * l for c, l in zip(common, local)]


class Latent:
    """The latent weather state of each location: Gaussian cloud and wind
    indices and a temperature anomaly, on the half-hour grid."""

    def __init__(self, tm, seed):
        n = tm.n
        cc = ar1(rng(seed, "cloud-common"), n, 0.965)
        wc = ar1(rng(seed, "wind-common"), n, 0.988)
        tc = ar1(rng(seed, "temp-common"), n, 0.996, 2.6)
        dc = ar1(rng(seed, "dir-common"), n, 0.99, 60.0)
        self.cloud, self.wind, self.temp, self.wdir = [], [], [], []
        for k, loc in enumerate(WX_LOCS):
            self.cloud.append(mix(cc, ar1(rng(seed, "cloud-%d" % k), n, 0.95), 0.80))
            self.wind.append(mix(wc, ar1(rng(seed, "wind-%d" % k), n, 0.97), 0.92))
            self.temp.append([v + d for v, d in zip(tc, ar1(rng(seed, "temp-%d" % k), n, 0.98, 0.6))])
            self.wdir.append([225.0 + v + 8.0 * k for v in dc])


def weather_at(tm, i, loc, z_cloud, z_wind, t_anom, wdir):
    """Observable weather at slot i for a location from its latent state."""
    _, lat, lon, _ = loc
    doy = tm.doy[i]
    seas = math.cos(2 * math.pi * (doy - 15) / 365.25)        # +1 mid-January
    cloud = 100.0 * phi(2.0 * z_cloud + 1.0 + 0.15 * seas)
    cz, az = sun(tm, i, lat, lon)
    ghi, dni, dhi = irradiance(cz, tm.i0[i], cloud)
    # local solar hour for diurnal shapes
    sh = (tm.utc_h[i] + (tm.eot[i] + 4.0 * lon) / 60.0) % 24.0
    clear = 1.0 - cloud / 100.0
    amp = (2.0 + 3.0 * clear) * (1.0 - 0.35 * seas)
    temp = 10.3 - 6.2 * seas + amp * math.cos(2 * math.pi * (sh - 15.0) / 24.0) + t_anom
    # wind: Weibull at 10 m via the probability integral transform
    k = 1.9
    c10 = 5.2 * (1.0 + 0.17 * seas)
    u = min(max(phi(z_wind), 1e-9), 1 - 1e-9)
    v10 = c10 * (-math.log(1.0 - u)) ** (1.0 / k)
    day = max(0.0, min(1.0, cz * 4.0 + 0.2))                 # 0 night .. 1 day
    v10 *= 1.0 + 0.12 * day * (1.0 - 0.5 * seas) - 0.06 * (1.0 - day)
    # hub-height shear: stable nights shear more (alpha 0.12 day, up to 0.30)
    alpha = 0.12 + 0.18 * (1.0 - day) * (0.4 + 0.6 * clear)
    return dict(cloud=cloud, ghi=ghi, dni=dni, dhi=dhi, cz=cz, az=az, temp=temp,
                v10=v10, alpha=alpha, wdir=wdir % 360.0)


def weather_series(tm, lat_state):
    """Observable weather per location per slot."""
    out = []
    for k, loc in enumerate(WX_LOCS):
        out.append([weather_at(tm, i, loc, lat_state.cloud[k][i], lat_state.wind[k][i],
                               lat_state.temp[k][i], lat_state.wdir[k][i]) for i in range(tm.n)])
    return out


def nearest_loc(lat, lon):
    return min(range(len(WX_LOCS)),
               key=lambda k: (WX_LOCS[k][1] - lat) ** 2 + ((WX_LOCS[k][2] - lon) * 0.6) ** 2)


# --------------------------------------------------------------------------
# 3b. Injections
# --------------------------------------------------------------------------

POWER_CURVE = [(3.0, 0.0), (4.0, 0.04), (5.0, 0.10), (6.0, 0.18), (7.0, 0.29), (8.0, 0.43),
               (9.0, 0.59), (10.0, 0.75), (11.0, 0.88), (12.0, 0.96), (13.0, 1.0), (25.0, 1.0)]


def power_curve(v):
    if v < POWER_CURVE[0][0] or v > 25.0:
        return 0.0
    for (v0, p0), (v1, p1) in zip(POWER_CURVE, POWER_CURVE[1:]):
        if v <= v1:
            return p0 + (p1 - p0) * (v - v0) / (v1 - v0)
    return 1.0


def pv_power(w, tilt, az_deg, pdc, temp_noise=0.0, trans=1.0):
    """AC MW of a PV array: isotropic-sky plane-of-array irradiance,
    NOCT cell temperature, -0.4 %/K, 0.88 system efficiency."""
    if w["ghi"] <= 0.0:
        return 0.0
    b = math.radians(tilt)
    a = math.radians(az_deg)
    sz = math.sqrt(max(0.0, 1.0 - w["cz"] ** 2))
    cos_aoi = w["cz"] * math.cos(b) + sz * math.sin(b) * math.cos(w["az"] - a)
    ghi, dni, dhi = w["ghi"] * trans, w["dni"] * trans, w["dhi"] * trans
    poa = max(0.0, dni * cos_aoi) + dhi * (1 + math.cos(b)) / 2 + 0.2 * ghi * (1 - math.cos(b)) / 2
    tc = w["temp"] + temp_noise + poa * (45.0 - 20.0) / 800.0
    return max(0.0, pdc * poa / 1000.0 * (1.0 - 0.004 * (tc - 25.0)) * 0.88)


def wind_farm(w, hub, cap, avail, fac):
    v = w["v10"] * fac * (hub / 10.0) ** w["alpha"]
    return cap * power_curve(v) * 0.92 * avail, v


def battery_profile(tm, seed, sid, pmax, hours):
    """A daily arbitrage cycle: charge overnight (winter) or over the solar
    midday (summer), discharge into the evening peak; 88 % round trip.
    Output MW, positive export, negative import."""
    r = rng(seed, "batt-" + sid)
    out = [0.0] * tm.n
    e_cap = pmax * hours
    day_slots = {}
    for i, (d, h) in enumerate(tm.local):
        day_slots.setdefault(d, []).append(i)
    for d, idx in sorted(day_slots.items()):
        if r.random() < 0.08:
            continue            # idle (maintenance, no price spread)
        depth = r.uniform(0.6, 0.95)
        summer = 4 <= d.month <= 9
        ch = (11.0, 15.0) if summer else (1.0, 5.0)
        dis = (17.5, 20.5) if summer else (16.0, 19.0)
        e_in = e_cap * depth
        pc = min(pmax, e_in / (ch[1] - ch[0]))
        pd = min(pmax, e_in * 0.88 / (dis[1] - dis[0]))
        for i in idx:
            h = tm.local[i][1]
            if ch[0] <= h < ch[1]:
                out[i] = -pc * (1.0 + r.gauss(0.0, 0.03))
            elif dis[0] <= h < dis[1]:
                out[i] = pd * (1.0 + r.gauss(0.0, 0.03))
            else:
                out[i] = r.gauss(0.0, 0.01 * pmax)      # frequency-response dither
    return out


DEM_PROFILE = {
    ("w", 0): [0.62, 0.58, 0.55, 0.54, 0.54, 0.57, 0.66, 0.78, 0.84, 0.84, 0.83, 0.82,
               0.81, 0.80, 0.80, 0.83, 0.92, 1.00, 0.98, 0.93, 0.87, 0.80, 0.72, 0.66],
    ("w", 1): [0.64, 0.59, 0.56, 0.54, 0.53, 0.54, 0.57, 0.63, 0.71, 0.77, 0.80, 0.81,
               0.80, 0.78, 0.77, 0.80, 0.89, 0.97, 0.95, 0.90, 0.85, 0.78, 0.71, 0.66],
    ("s", 0): [0.50, 0.46, 0.44, 0.43, 0.43, 0.46, 0.53, 0.62, 0.67, 0.68, 0.68, 0.68,
               0.68, 0.67, 0.66, 0.66, 0.67, 0.69, 0.70, 0.70, 0.70, 0.69, 0.62, 0.55],
    ("s", 1): [0.51, 0.47, 0.45, 0.43, 0.42, 0.43, 0.45, 0.50, 0.56, 0.61, 0.63, 0.64,
               0.64, 0.63, 0.62, 0.62, 0.63, 0.65, 0.66, 0.67, 0.67, 0.66, 0.60, 0.54],
}


def dem_shape(kind, weekend, h):
    prof = DEM_PROFILE[(kind, weekend)]
    a = int(h) % 24
    f = h - int(h)
    return prof[a] * (1 - f) + prof[(a + 1) % 24] * f


def injections(tm, wx, net, seed, enq):
    """MW per site and per primary demand, per slot.  A site exports
    nothing before its first tranche's connection date (only matters for
    --year before 2025: the register is as of the end of 2024)."""
    connected = {}
    for e in enq:
        connected[e["site"]] = min(connected.get(e["site"], e["cd"]), e["cd"])
    site_mw = {}
    years = {d.year for d, _ in tm.local}
    hols = set()
    for y in years:
        hols |= bank_holidays(y)
    for s in net.sites:
        k = nearest_loc(s["lat"], s["lon"])
        w = wx[k]
        r = rng(seed, "site-" + s["id"])
        tot = [0.0] * tm.n
        for fuel, mw, extra in s["machines"]:
            if fuel == "solar":
                tilt, az = extra.get("tilt", 25), extra.get("azimuth", 180)
                trans = ar1(r, tm.n, 0.9, 0.06)
                down = set()
                for _ in range(r.randrange(0, 3)):      # inverter faults: a few days a year
                    d0 = r.randrange(0, tm.days)
                    down.update(range(d0 * 48, min(tm.n, (d0 + r.randrange(1, 4)) * 48)))
                for i in range(tm.n):
                    f = 0.7 if i in down else 1.0
                    tot[i] += f * pv_power(w[i], tilt, az, mw, trans=min(1.15, max(0.6, 1.0 + trans[i])))
            elif fuel == "wind":
                fac = ar1(r, tm.n, 0.95, 0.05)
                nt = extra.get("turbines", 1)
                avail = [1.0] * tm.n
                for _ in range(r.randrange(1, 5)):      # turbine outages
                    d0 = r.randrange(0, tm.days)
                    for i in range(d0 * 48, min(tm.n, (d0 + r.randrange(1, 6)) * 48)):
                        avail[i] = (nt - 1) / nt
                hub = extra.get("hub", 80)
                for i in range(tm.n):
                    tot[i] += wind_farm(w[i], hub, mw, avail[i], 1.0 + fac[i])[0]
            elif fuel == "battery":
                prof = battery_profile(tm, seed, s["id"] + fuel, mw, extra.get("hours", 2.0))
                for i in range(tm.n):
                    tot[i] += prof[i]
            elif fuel == "gas":                          # peaker: cold weekday evenings
                for i, (d, h) in enumerate(tm.local):
                    if 16.5 <= h < 19.5 and d.weekday() < 5 and w[i]["temp"] < 6.0:
                        tot[i] += mw * 0.97
            elif fuel == "biomass":
                stop = r.randrange(200, 280)
                base = 0.88 if mw > 10 else 0.92
                noise = ar1(r, tm.n, 0.98, 0.02)
                for i in range(tm.n):
                    day = i // 48
                    on = not (stop <= day < stop + 14)
                    tot[i] += mw * base * (1 + noise[i]) if on else 0.0
            elif fuel == "chp":                          # heat-led, daytime
                for i, (d, h) in enumerate(tm.local):
                    if 6.0 <= h < 22.0 and d.weekday() < 6:
                        seas = math.cos(2 * math.pi * (tm.doy[i] - 15) / 365.25)
                        tot[i] += mw * (0.72 + 0.18 * seas)
            else:                                        # landfill gas: flat
                for i in range(tm.n):
                    tot[i] += mw * (0.80 - 0.04 * i / tm.n) * (1 + r.gauss(0, 0.01))
        cap = s["export"]
        site_mw[s["id"]] = [min(cap, max(-s["imp"], v)) if tm.local[i][0] >= connected[s["id"]] else 0.0
                            for i, v in enumerate(tot)]
    dem = {}
    for code, name, typ, peak, pv, lat, lon in PRIMARIES:
        k = nearest_loc(lat, lon)
        w = wx[k]
        r = rng(seed, "dem-" + code)
        noise = ar1(r, tm.n, 0.92, 0.025)
        shift = r.uniform(-0.5, 0.5)
        vals = [0.0] * tm.n
        for i, (d, h) in enumerate(tm.local):
            we = 1 if (d.weekday() >= 5 or d in hols) else 0
            sw = 0.5 * (1 + math.cos(2 * math.pi * (tm.doy[i] - 15) / 365.25))
            hh = h + shift
            shape = sw * dem_shape("w", we, hh) + (1 - sw) * dem_shape("s", we, hh)
            if (d.month == 12 and d.day >= 24) or (d.month == 1 and d.day <= 1):
                shape *= 0.93
            heat = 1.0 + 0.012 * max(0.0, 14.0 - w[i]["temp"])
            roof = pv_power(w[i], 35, 180, pv * 1.0)
            vals[i] = peak * shape * heat * (1 + noise[i]) - roof
        dem[code] = vals
    return site_mw, dem


# --------------------------------------------------------------------------
# 4. Flows, exceedances
# --------------------------------------------------------------------------

def flows(tm, net, site_mw, dem, outages):
    """DC branch flows (MW, from->to) of the branches named in CONSTRAINTS
    and METERED, per slot, with the scheduled outages applied."""
    names = sorted({b for c in CONSTRAINTS for b, _ in c[5]} | set(METERED) | {g[0] for g in GTS})
    bidx = [net.index(n) for n in names]
    cols = sorted({s["bus"] for s in net.sites} | {p11(p[0]) for p in PRIMARIES})
    topo = {(): ptdf(net)}
    slot_out = [()] * tm.n
    for o in outages:
        if o["status"] == "cancelled":
            continue
        k = net.index(o["equipment_id"])
        for i in range(tm.n):
            if o["s"] <= tm.t[i] < o["e"]:
                slot_out[i] = tuple(sorted(set(slot_out[i]) | {k}))
    for key in set(slot_out):
        if key not in topo:
            topo[key] = ptdf(net, key)
    rows = {}
    for key, (pt, pos) in topo.items():
        rows[key] = [[pt[b][pos[c]] for c in cols] for b in bidx]
    inj_sites = {c: [s["id"] for s in net.sites if s["bus"] == c] for c in cols}
    inj_dem = {c: [p[0] for p in PRIMARIES if p11(p[0]) == c] for c in cols}
    out = {n: [0.0] * tm.n for n in names}
    for i in range(tm.n):
        inj = [sum(site_mw[s][i] for s in inj_sites[c]) - sum(dem[p][i] for p in inj_dem[c]) for c in cols]
        for n, row in zip(names, rows[slot_out[i]]):
            out[n][i] = sum(map(operator.mul, row, inj))
    return out


def exceedances(tm, net, fl):
    """Per constraint, per slot: True when the intact flow exceeds the limit
    the ANM applies (PEL where set, else continuous rating; boundary limit)."""
    res = {}
    for c in CONSTRAINTS:
        ex = [False] * tm.n
        for i in range(tm.n):
            f = sum(sg * fl[b][i] for b, sg in c[5])
            if c[2] == "boundary":
                ex[i] = f > c[6]
            else:
                br = net.branches[net.index(c[5][0][0])]
                s = season_of(tm.local[i][0].month)
                lim = br["pel"][s] if br["pel"][s] is not None else br["ratings"][s]
                ex[i] = abs(f) > lim
        res[c[0]] = ex
    return res


def pick_demo_day(tm, ex):
    """The summer day on which the most constraints need the ANM (sun and
    wind together), with ANM acting for part of the day rather than all of
    it: score = 10 x distinct constraints exceeded - |exceeded half-hours -
    16|; earliest on ties.  Outside summer when the history has no summer."""
    counts, names = {}, {}
    for i in range(tm.n):
        d = tm.local[i][0]
        counts.setdefault(d, 0)
        names.setdefault(d, set())
        hit = [c for c in ex if ex[c][i]]
        if hit:
            counts[d] += 1
            names[d].update(hit)
    days = sorted(counts)[1:-2]           # D-1 and D+1 must be in the history
    summer = [d for d in days if 5 <= d.month <= 8] or days
    return min(summer, key=lambda d: (-(10 * len(names[d]) - abs(counts[d] - 16)), d))


# --------------------------------------------------------------------------
# Outputs: SCADA, weather, forecasts, outages
# --------------------------------------------------------------------------

def write_scada(odir, tm, pts, site_mw, dem, fl, seed):
    """One historian CSV per UTC month; rows in time order.  A few values are
    missing (rows absent, and one RTU offline for hours) or flagged bad /
    uncertain / substituted, as real historian exports have."""
    r = rng(seed, "scada")
    os.makedirs(odir, exist_ok=True)
    rtu_pt = r.choice([p["id"] for p in pts if p["kind"] == "site"])
    rtu_start = r.randrange(0, max(1, tm.n - 48))
    rtu_off = set(range(rtu_start, rtu_start + 14))
    files = []
    cur_month, f = None, None
    stats = dict(rows=0, missing=0, bad=0, uncertain=0, substituted=0)
    for i in range(tm.n):
        d = dt.datetime.fromtimestamp(tm.t[i], dt.timezone.utc)
        if (d.year, d.month) != cur_month:
            if f:
                f.close()
            cur_month = (d.year, d.month)
            path = os.path.join(odir, "historian_%04d-%02d.csv" % cur_month)
            files.append(path)
            f = open(path, "w", newline="")
            f.write("timestamp,point_id,value,quality\n")
        ts = tm.iso[i]
        buf = []
        for p in pts:
            if p["kind"] == "site":
                v = site_mw[p["ref"]][i]
            elif p["kind"] == "demand":
                v = dem[p["ref"]][i]
            else:
                v = fl[p["ref"]][i]
            u = r.random()
            if u < 0.0008 or (p["id"] == rtu_pt and i in rtu_off):
                stats["missing"] += 1
                continue
            v *= 1.0 + r.gauss(0.0, 0.003)
            q = "good"
            if u < 0.0011:
                q, v = "bad", 0.0
                stats["bad"] += 1
            elif u < 0.0016:
                q = "uncertain"
                stats["uncertain"] += 1
            elif u < 0.0018:
                q = "substituted"
                stats["substituted"] += 1
            val = fmt(v * 1000.0, 1) if p["kw"] else fmt(v, 3)
            buf.append("%s,%s,%s,%s\n" % (ts, p["id"], val, q))
            stats["rows"] += 1
        f.write("".join(buf))
    if f:
        f.close()
    return files, stats


WX_VARS = [("temperature_2m", "°C"), ("cloud_cover", "%"), ("wind_speed_10m", "km/h"),
           ("wind_speed_100m", "km/h"), ("wind_direction_100m", "°"), ("shortwave_radiation", "W/m²"),
           ("direct_radiation", "W/m²"), ("diffuse_radiation", "W/m²")]


def hourly_values(w, i):
    """Open-Meteo hourly values for the hour ending at slot i's start (slot i
    begins at the valid time T): instants averaged from the two slots around
    T, radiation averaged over the two slots of the preceding hour."""
    a, b = w[max(i - 1, 0)], w[min(i, len(w) - 1)]
    p1, p2 = w[max(i - 2, 0)], w[max(i - 1, 0)]
    v10 = 0.5 * (a["v10"] + b["v10"])
    alpha = 0.5 * (a["alpha"] + b["alpha"])
    ghi = 0.5 * (p1["ghi"] + p2["ghi"])
    dirh = 0.5 * (p1["dni"] * max(p1["cz"], 0) + p2["dni"] * max(p2["cz"], 0))
    return {
        "temperature_2m": round(0.5 * (a["temp"] + b["temp"]), 1),
        "cloud_cover": int(round(0.5 * (a["cloud"] + b["cloud"]))),
        "wind_speed_10m": round(v10 * 3.6, 1),
        "wind_speed_100m": round(v10 * 10.0 ** alpha * 3.6, 1),
        "wind_direction_100m": int(round(b["wdir"])) % 360,
        "shortwave_radiation": round(ghi, 1),
        "direct_radiation": round(dirh, 1),
        "diffuse_radiation": round(max(0.0, ghi - dirh), 1),
    }


def om_object(k, loc, tz, times_local, series, variables, gen_ms):
    """One Open-Meteo response object with keys in the server's order."""
    lid, lat, lon, elev = loc
    obj = {"latitude": lat, "longitude": lon, "generationtime_ms": gen_ms,
           "utc_offset_seconds": tz[0], "timezone": tz[1], "timezone_abbreviation": tz[2],
           "elevation": elev}
    if k > 0:
        obj["location_id"] = k
    units = {"time": "iso8601"}
    hourly = {"time": times_local}
    for name, unit in variables:
        units[name] = unit
        hourly[name] = series[name]
    obj["hourly_units"] = units
    obj["hourly"] = hourly
    return obj


def dump_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def write_archive(odir, tm, wx, issue):
    """Historical weather as the Open-Meteo archive API returns it for a
    comma-separated list of the zone's locations, one file per UTC month,
    timezone=GMT, hourly values for every whole hour of the history.
    Hours up to the day-ahead forecast's issue time go to odir; later ones
    (the weather that actually happened on and after the demo day) go to
    odir/after_issue, so a demo can give the engine only what was known
    when the forecast was issued and load the rest afterwards to back-test."""
    files = []
    groups = {}
    for i in range(0, tm.n, 2):
        d = dt.datetime.fromtimestamp(tm.t[i], dt.timezone.utc)
        sub = "" if tm.t[i] <= issue else "after_issue"
        groups.setdefault((sub, d.year, d.month), []).append(i)
    for (sub, y, m), idx in sorted(groups.items()):
        times = [dt.datetime.fromtimestamp(tm.t[i], dt.timezone.utc).strftime("%Y-%m-%dT%H:%M") for i in idx]
        objs = []
        for k, loc in enumerate(WX_LOCS):
            vals = [hourly_values(wx[k], i) for i in idx]
            series = {n: [v[n] for v in vals] for n, _ in WX_VARS}
            objs.append(om_object(k, loc, (0, "GMT", "GMT"), times, series, WX_VARS, 41.7))
        os.makedirs(os.path.join(odir, sub), exist_ok=True)
        path = os.path.join(odir, sub, "archive_%04d-%02d.json" % (y, m))
        dump_json(path, objs)
        files.append(path)
    return files


def forecast_latent(tm, lat_state, r, issue, lo, hi, scale):
    """Perturbed copies of the latent state over slots lo..hi: errors grow
    with lead time from the issue time and are smooth in time (AR(1))."""
    out = []
    for k in range(len(WX_LOCS)):
        ec = ar1(r, hi - lo, 0.93)
        ew = ar1(r, hi - lo, 0.95)
        et = ar1(r, hi - lo, 0.95)
        cl, wi, te = [], [], []
        for j, i in enumerate(range(lo, hi)):
            lead = max(0.0, (tm.t[i] - issue) / 3600.0)
            g = scale * (1.0 - math.exp(-lead / 40.0))
            cl.append(lat_state.cloud[k][i] + (0.12 + 0.75 * g) * ec[j])
            wi.append(lat_state.wind[k][i] + (0.08 + 0.45 * g) * ew[j])
            te.append(lat_state.temp[k][i] + (0.3 + 1.6 * g) * et[j])
        out.append((cl, wi, te))
    return out


def forecast_series(tm, lat_state, pert, lo, hi):
    res = []
    for k, loc in enumerate(WX_LOCS):
        cl, wi, te = pert[k]
        res.append([weather_at(tm, i, loc, cl[i - lo], wi[i - lo], te[i - lo], lat_state.wdir[k][i])
                    for i in range(lo, hi)])
    return res


def write_forecasts(odir, tm, lat_state, demo_day, seed):
    """Day-ahead deterministic forecast and ensemble for the demo day, as
    Open-Meteo /v1/forecast and /v1/ensemble return them when asked on
    D-1 at 06:00 UTC with timezone=Europe/London and forecast_days=3."""
    os.makedirs(odir, exist_ok=True)
    d0 = demo_day - dt.timedelta(days=1)
    issue = int(dt.datetime(d0.year, d0.month, d0.day, 6, tzinfo=dt.timezone.utc).timestamp())
    off = uk_offset(issue)
    tz = (off, "Europe/London", "GMT+1" if off else "GMT")
    start_utc = int(dt.datetime(d0.year, d0.month, d0.day, tzinfo=dt.timezone.utc).timestamp()) - off
    lo = max(0, (start_utc - tm.t0) // SLOT - 2)
    hi = min(tm.n, lo + 2 + 72 * 2 + 2)
    hours = [i for i in range((start_utc - tm.t0) // SLOT, (start_utc - tm.t0) // SLOT + 144, 2)
             if lo + 2 <= i < hi]
    times = [dt.datetime.fromtimestamp(tm.t[i] + off, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M")
             for i in hours]
    r = rng(seed, "forecast")
    # deterministic forecast
    det = forecast_series(tm, lat_state, forecast_latent(tm, lat_state, r, issue, lo, hi, 1.0), lo, hi)
    objs = []
    for k, loc in enumerate(WX_LOCS):
        vals = [hourly_values(det[k], i - lo) for i in hours]
        series = {n: [v[n] for v in vals] for n, _ in WX_VARS}
        objs.append(om_object(k, loc, tz, times, series, WX_VARS, 12.3))
    fpath = os.path.join(odir, "forecast_%s.json" % demo_day.isoformat())
    dump_json(fpath, objs)
    # ensemble: a centre (the control run) off the truth by one error draw,
    # members off the centre by independent draws of the same spread, so the
    # truth is statistically one more member.
    nmem = 10
    ens_vars = [v for v in WX_VARS if v[0] in ("temperature_2m", "cloud_cover", "wind_speed_10m",
                                               "wind_speed_100m", "shortwave_radiation")]
    centre = forecast_latent(tm, lat_state, r, issue, lo, hi, 0.7)
    members = [forecast_series(tm, lat_state, centre, lo, hi)]
    for m in range(nmem):
        pert = forecast_latent(tm, lat_state, r, issue, lo, hi, 0.7)
        mixed = []
        for k in range(len(WX_LOCS)):
            truth = (lat_state.cloud[k][lo:hi], lat_state.wind[k][lo:hi], lat_state.temp[k][lo:hi])
            mixed.append(tuple([c + p - t for c, p, t in zip(centre[k][j], pert[k][j], truth[j])]
                               for j in range(3)))
        members.append(forecast_series(tm, lat_state, mixed, lo, hi))
    objs = []
    for k, loc in enumerate(WX_LOCS):
        series, variables = {}, []
        for name, unit in ens_vars:
            for m in range(nmem + 1):
                key = name if m == 0 else "%s_member%02d" % (name, m)
                variables.append((key, unit))
                series[key] = [hourly_values(members[m][k], i - lo)[name] for i in hours]
        objs.append(om_object(k, loc, tz, times, series, variables, 55.1))
    epath = os.path.join(odir, "ensemble_%s.json" % demo_day.isoformat())
    dump_json(epath, objs)
    return [fpath, epath], issue


def make_outages(tm, demo_day):
    """The outage schedule around the demo day (project JSON format,
    docs/ingest.md): a confirmed planned outage on the day itself, a
    provisional one later, a cancelled one and a past fault."""
    def at(day, h, m=0):
        t = int(dt.datetime(day.year, day.month, day.day, h, m, tzinfo=dt.timezone.utc).timestamp())
        return t - uk_offset(t)
    dd = dt.timedelta(days=1)
    y = demo_day.year
    return [
        dict(outage_id="OUT-%d-0412" % y, revision=2, equipment_id="SALT-HOLF", kind="planned",
             status="confirmed", s=at(demo_day, 8), e=at(demo_day, 16),
             description="Saltmarsh - Holme Fen 33kV: pole replacement"),
        dict(outage_id="OUT-%d-0419" % y, revision=1, equipment_id="MARL-GT3", kind="planned",
             status="planned", s=at(demo_day + 2 * dd, 8), e=at(demo_day + 4 * dd, 17),
             description="Marsh Lane GT3: tap changer maintenance"),
        dict(outage_id="OUT-%d-0397" % y, revision=3, equipment_id="KEST-GT2", kind="planned",
             status="cancelled", s=at(demo_day - 7 * dd, 8), e=at(demo_day - 6 * dd, 16),
             description="Kestrel Cross GT2: cancelled, resource clash"),
        dict(outage_id="FLT-%d-0031" % y, revision=1, equipment_id="DROV-MWHB", kind="unplanned",
             status="completed", s=at(demo_day - 20 * dd, 4, 10), e=at(demo_day - 20 * dd, 15, 40),
             description="Drove Tee - Marsh Wind hub 33kV: tripped, conductor clash in high wind"),
    ]


def write_outages(path, outs):
    recs = []
    for o in outs:
        recs.append({"outage_id": o["outage_id"], "revision": o["revision"],
                     "equipment_id": o["equipment_id"], "kind": o["kind"], "status": o["status"],
                     "start": iso_local(o["s"]), "end": iso_local(o["e"]),
                     "description": o["description"]})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"outages": recs}, f, indent=1)
        f.write("\n")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(description="Generate the Kestrel Cross demo ANM zone.")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--year", type=int, default=DEFAULT_YEAR, help="history year (default %(default)s)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)")
    ap.add_argument("--days", type=int, default=0, help="history length in days from 1 January (default: the year)")
    ap.add_argument("--demo-day", default=None, help="demo day YYYY-MM-DD (default: chosen from the history)")
    ap.add_argument("--model-only", action="store_true", help="write only the model files (zone/)")
    a = ap.parse_args(argv)
    if not 2000 <= a.year <= 2100:
        ap.error("--year must be in 2000..2100")
    if a.days and not 4 <= a.days <= 366:
        ap.error("--days must be in 4..366")
    if not 0 <= a.seed < 2 ** 63:
        ap.error("--seed must be in 0..2^63-1")

    net = build_net(a.seed)
    pt, pos = ptdf(net)
    set_pels(net, pt, pos)
    sens = {c[0]: constraint_sens(net, pt, pos, c) for c in CONSTRAINTS}
    enq = enquiries(net, a.seed)
    pts = make_points(net)
    zdir = os.path.join(a.out, "zone")
    csites = write_model(zdir, net, enq, sens, pts)
    manifest = dict(generator="deploy/demo/gen_zone.py", seed=a.seed, year=a.year, zone_name=ZONE_NAME,
                    buses=len(net.buses), branches=len(net.branches), sites=len(net.sites),
                    non_firm_sites=len({e["site"] for e in enq if not e["firm"]}),
                    constraints=len(CONSTRAINTS), voltage_constraints=len(VOLTAGE_CONSTRAINTS),
                    constraint_sites=len(csites), points=len(pts))
    if not a.model_only:
        tm = Time(a.year, a.days)
        lat_state = Latent(tm, a.seed)
        wx = weather_series(tm, lat_state)
        site_mw, dem = injections(tm, wx, net, a.seed, enq)
        fl0 = flows(tm, net, site_mw, dem, [])
        ex = exceedances(tm, net, fl0)
        if a.demo_day:
            try:
                demo = dt.date.fromisoformat(a.demo_day)
            except ValueError:
                ap.error("--demo-day must be a date YYYY-MM-DD")
            if not (tm.local[0][0] < demo < tm.local[-1][0]):
                ap.error("--demo-day must lie inside the history, not on its first or last day")
        else:
            demo = pick_demo_day(tm, ex)
        outs = make_outages(tm, demo)
        fl = flows(tm, net, site_mw, dem, outs)
        ex = exceedances(tm, net, fl)
        files, sstats = write_scada(os.path.join(a.out, "scada"), tm, pts, site_mw, dem, fl, a.seed)
        ff, issue = write_forecasts(os.path.join(a.out, "weather"), tm, lat_state, demo, a.seed)
        files += write_archive(os.path.join(a.out, "weather"), tm, wx, issue)
        files += ff
        opath = os.path.join(a.out, "outages", "outages.json")
        write_outages(opath, outs)
        files.append(opath)
        any_ex = [any(ex[c][i] for c in ex) for i in range(tm.n)]
        mid = [i for i in range(tm.n) if 10.0 <= tm.local[i][1] < 16.0]
        night = [i for i in range(tm.n) if tm.local[i][1] >= 22.0 or tm.local[i][1] < 6.0]
        summer = [i for i in range(tm.n) if 5 <= tm.local[i][0].month <= 8]
        frac = lambda idx: round(sum(any_ex[i] for i in idx) / max(1, len(idx)), 4)
        manifest.update(
            days=tm.days, half_hours=tm.n, demo_day=demo.isoformat(),
            forecast_issued_utc=dt.datetime.fromtimestamp(issue, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            scada=sstats,
            demo_day_exceeded_half_hours={c: sum(1 for i in range(tm.n) if ex[c][i] and tm.local[i][0] == demo)
                                          for c in ex},
            exceedance_fraction=dict(any=frac(range(tm.n)), midday_10_16=frac(mid), night_22_06=frac(night),
                                     summer=frac(summer), demo_day=frac([i for i in range(tm.n)
                                                                        if tm.local[i][0] == demo]),
                                     per_constraint={c: round(sum(ex[c]) / tm.n, 4) for c in ex},
                                     per_month={"%02d" % m: frac([i for i in range(tm.n)
                                                                  if tm.local[i][0].month == m])
                                                for m in sorted({d.month for d, _ in tm.local})}),
            energy_mwh=dict(sites={s: round(sum(v) * 0.5, 1) for s, v in sorted(site_mw.items())}))
    allf = sorted(os.path.join(zdir, f) for f in os.listdir(zdir))
    if not a.model_only:
        allf += files
    manifest["files"] = [dict(path=os.path.relpath(p, a.out), bytes=os.path.getsize(p), sha256=sha256(p))
                         for p in allf]
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
