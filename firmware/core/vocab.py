# The words and limits shared by the case input (core.case), the dosage rules (core.dosage),
# the QST score (core.qst) and the stored records (core.record). Records store indexes into
# these tuples: append to them, never reorder or remove (tests/test_record.py pins them).
from micropython import const

SEXES = ("F", "M", "U")
CONDITIONS = ("diabetes", "cancer", "crohns", "fibromyalgia", "chronic_fatigue")
FLAGS = ("acute_injury", "recent_illness", "high_stress", "recent_exercise", "chronic")
# Where the needles go. "shoulder" is the shoulder girdle; upper_trapezius (over the lung
# apex, the commonest site of needling pneumothorax) has its own name since ruleset r2.
# Which regions count as lung risk is the dosage table's business (core.dosage).
REGIONS = (
    "head_neck",
    "shoulder",
    "thorax",
    "upper_limb",
    "lumbar",
    "hip",
    "lower_limb",
    "upper_trapezius",
)
CONTRAINDICATIONS = (
    "needle_phobia",
    "injection_reaction",
    "lymphedema",
    "bleeding_disorder",
    "immunodeficiency",
    "pregnancy_first_trimester",
)
# The sites a PPT is measured at, and the region each lies in (the dosage rules' region when
# it is the site to be needled). The first five have reference rows (firmware/data); the
# others give the patient's own side-to-side and local-to-remote comparisons only.
# Project choices, the conservative reading where anatomy allows two: the infraspinatus and
# the middle deltoid count as the shoulder girdle (never deep: the lung lies under the
# scapula's edge), the cervical paraspinals as the neck (over the lung apex).
SITES = (
    "thenar",
    "masseter",
    "upper_trapezius",
    "infraspinatus",
    "middle_deltoid",
    "cervical_paraspinal",
    "lumbar_paraspinal",
    "gluteus_medius",
    "quadriceps",
    "tibialis_anterior",
    "gastrocnemius",
    "forearm_extensors",
)
SITE_REGIONS = (
    "upper_limb",
    "head_neck",
    "upper_trapezius",
    "shoulder",
    "shoulder",
    "head_neck",
    "lumbar",
    "hip",
    "lower_limb",
    "lower_limb",
    "lower_limb",
    "upper_limb",
)
SIDES = ("L", "R")
ROLES = ("local", "remote")  # local: the symptomatic site to be needled; remote: a reference
# How a trial ended (core.ppt) and its QC flags, bit i = FLAG_NAMES[i] (core.ppt FLAG_*).
END_NAMES = ("none", "stop", "release", "ceiling", "saturated", "fault", "abort")
FLAG_NAMES = ("rate", "short", "saturated", "fault", "censored", "aborted")
# The HX711 driver's fault codes (drivers/hx711.py FAULT_*), by name: never a reading.
SENSOR_FAULTS = ("none", "no_data_ready", "unpowered", "rail_high", "rail_low")
QST_CATEGORIES = ("high", "normal", "low")
RESPONSES = ("none", "tolerated", "flare")
STATUSES = ("ok", "caution", "contraindicated")

# Dose ladders, gentlest first: a dose is a rung on each.
GAUGES_MM_X100 = (16, 18, 20, 25, 30)  # stock filament gauges, 0.16 to 0.30 mm (seed 000)
DEPTHS = ("superficial", "intermediate", "deep")
MANIPULATIONS = ("basic", "rotation", "tenting", "pistoning")
ADJUNCTS = ("microneedling", "e-stim")
AFTERCARE_ICE = ("avoid", "allow")  # the clinic's ice after-care: seed 002 (the default) / 004
NEEDLES_MIN = const(5)  # seed 000: "Begin with 5-10 per session"
NEEDLES_MAX = const(10)

AGE_MAX_YEARS = const(120)
QST_Z_LIMIT = const(10)  # a |z| beyond this is a typing error, not a patient
# QST categories (DFNS sign: a positive z is a sensitised patient). The defaults the QST
# score and the dosage rules share; a clinic may tune them. Asymmetric on purpose: "high"
# lowers a dose, so it fires early; "low" raises a ceiling, so it needs stronger evidence.
# -1.25 is the furthest from zero that every shipped reference row reaches with a site value
# 10 % below the 1000 kPa safety ceiling (infraspinatus: z = -1.25 at 900 kPa); the DFNS
# "abnormal" -1.96 is out of reach there. Table: docs/dosage-rules.md.
QST_HIGH_Z_X100 = const(100)  # z >= 1.0: sensitised, "high"
QST_LOW_Z_X100 = const(-125)  # z <= -1.25: robust, "low" (uncensored trials only)


def qst_category(z_x100, high_x100=QST_HIGH_Z_X100, low_x100=QST_LOW_Z_X100):
    if z_x100 >= high_x100:
        return "high"
    if z_x100 <= low_x100:
        return "low"
    return "normal"
