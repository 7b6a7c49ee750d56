# The records one clinic visit stores, in the order the app stores them, for the store's
# workloads (tests/mp/workloads.py: the power-loss and device-error sweeps) and its bench
# (bench/mp/store_eval.py): a session start, sites x trials (each trial optionally with its
# pressure curve) and a site summary per site, the recommendation and the response. Field
# values are fixed but realistic in size; the caller stores them and decides when to flush.
from core import dosage, record
from core.vocab import SIDES, SITES

RECOMMENDATION = (
    "caution",
    0.16,
    5,
    "superficial",
    "basic",
    [],
    [1, 2],
    [],
    [{"rule": None}] * 4,
    [],
    dosage.RULESET,
)


def session(put, trial_end, number, sites=2, trials=3, curves=False):
    """put(rtype, fields) stores one record and returns its seq; trial_end() is called after
    the session start and after each trial (where the app flushes). Returns the session's
    seq."""
    start = put(
        record.TYPE_SESSION,
        ("P-%04d" % (number % 10000), 40 + number % 30, "F", ["fibromyalgia"], ["chronic"],
         [], [], "lumbar", 120, None, number, "tolerated", [3, 6, 1, 1]),
    )  # fmt: skip
    trial_end()
    for site in range(sites):
        name = SITES[site]
        side = SIDES[site % 2]
        for n in range(1, trials + 1):
            fields = (name, side, n, "stop", 0, 2500 + number + n, 2600, 500, 9000 + n)
            seq = put(record.TYPE_TRIAL, fields)
            if curves:
                put(record.TYPE_CURVE, (seq, 0, 100, [(i * 37 + n) % 4000 for i in range(40)]))
            trial_end()
        put(
            record.TYPE_SITE,
            (name, side, "local", trials, trials, 0, 2502, None, 41, 130, None, "high"),
        )
    put(record.TYPE_RECOMMENDATION, RECOMMENDATION)
    put(record.TYPE_RESPONSE, ("tolerated", start))
    return start
