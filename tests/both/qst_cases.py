# core.qst on both runtimes: cases for tests/test_qst.py (docs/developing.md, "Tests on both
# runtimes").
from core import qst


def z_table(reference_path):
    """Per reference row: [id, mean_log10, sd_log10 to 9 decimals], then z x 100 from 5 to
    2000 kPa in steps of 9.7 kPa."""
    table = qst.load_reference(reference_path)
    out = []
    for row in table["rows"]:
        out.append([row["id"], "%.9f" % row["mean_log10"], "%.9f" % row["sd_log10"]])
        out.append([qst.z_x100(ppt, row) for ppt in range(50, 20000, 97)])
    return out
