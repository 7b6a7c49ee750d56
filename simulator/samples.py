"""Hand-written screen data in the shapes the firmware produces: a core.dosage result with
its reasons and overrides, a site summary with its core.qst score, a core.qst comparison,
settings values. The screen tests, the golden images and the UI bench draw these."""

REASONS = [
    {
        "dimension": "gauge_mm",
        "rule": "F-SENSITIVE",
        "text": "0.16 mm: fibromyalgia, a sensitive patient",
    },
    {"dimension": "needles", "rule": None, "text": "6 needles: ladder default"},
    {"dimension": "depth", "rule": "S-THORAX", "text": "superficial: thorax, pneumothorax risk"},
    {"dimension": "manipulation", "rule": "Q-HIGH", "text": "basic: a high QST score"},
    {"dimension": "e-stim", "rule": "F-EXERCISE", "text": "e-stim: recent intense exercise"},
]
AFTERCARE = [
    "No NSAIDs or ice for 24 h.",
    "Sore 24-48 h, like after a hard workout.",
    "Bruising may show; fades in days.",
    "No strenuous activity today; stretching is fine.",
]
RECOMMENDATION = {
    "status": "caution",
    "gauge_mm": 0.16,
    "needles": 6,
    "depth": "superficial",
    "manipulation": "basic",
    "adjuncts": ["e-stim"],
    "sessions_per_week": [1, 2],
    "warnings": [
        "Systemic inflammation: no pistoning, rotation or tenting",
        "Thorax: pneumothorax risk, depth capped at superficial",
    ],
    "aftercare": AFTERCARE,
    "reasons": REASONS,
    "overrides": [],
    "rules": ["F-INFLAMMATION", "F-SENSITIVE", "Q-HIGH", "F-EXERCISE", "S-THORAX"],
    "ruleset": "2026.11-r2",
}
NO_DOSE = {
    "status": "contraindicated",
    "gauge_mm": None,
    "needles": None,
    "depth": None,
    "manipulation": None,
    "adjuncts": [],
    "sessions_per_week": None,
    "warnings": [
        "Avoid needling: needle phobia",
        "No dose: needling needs a recorded clinician override",
    ],
    "aftercare": [],
    "reasons": [],
    "overrides": [],
    "rules": ["CI-NEEDLE-PHOBIA", "CI-GATE"],
    "ruleset": "2026.11-r2",
}
QST_HIGH = {
    "z": 1.23,
    "z_x100": 123,
    "z_max": None,
    "z_max_x100": None,
    "category": "high",
    "abnormal": False,
    "ref": "pan2024-thenar-m",
    "basis": "converted",
    "age_note": "reference age about 30; patient 70",
    "reason": None,
}
SITE = {
    "site": "upper_trapezius",
    "side": "R",
    "role": "local",
    "n_trials": 3,
    "n_valid": 3,
    "n_censored": 0,
    "censored": False,
    "ppt_kpa_x10": 2453,
    "ppt_min_kpa_x10": None,
    "cv_pct_x10": 82,
    "reason": None,
    "qst": QST_HIGH,
}
SITE_NO_VALUE = dict(
    SITE,
    n_valid=1,
    ppt_kpa_x10=None,
    cv_pct_x10=None,
    reason="2 valid trials needed, 1 of 3 valid (1 rate out of tolerance, 1 sensor fault)",
    qst=None,
)
COMPARISON = {
    "side_to_side": [{"site": "upper_trapezius", "diff_pct_x10": 412, "flag": True}],
    "local_to_remote": {
        "local": "upper_trapezius R",
        "remote": "thenar",
        "ratio_pct_x10": 610,
        "widespread": True,
    },
    "dosage_qst": {"z": 1.23},
}
SETTINGS = {
    "unit": 0,
    "target_kpa_s_x10": 500,
    "tolerance_pct": 20,
    "ceiling_kpa_x10": 10000,
    "trials_per_site": 3,
    "cal_id": 12,
    "clock_set": True,
}
GIVEN = {
    "gauge_mm": 0.16,
    "needles": 5,
    "depth": "superficial",
    "manipulation": "basic",
    "adjuncts": [],
}
