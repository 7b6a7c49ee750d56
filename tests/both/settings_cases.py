# core.settings on both runtimes: the file written whole, read back, refused when damaged.
from rig import storage_root

from core import atomic, settings


def round_trip():
    root, _flash = storage_root("cfg")
    path = root + "-settings"
    s = settings.Settings()
    missing = s.load(path)
    s.set("target_kpa_s_x10", 400)
    s.set("aftercare_ice", 1)
    s.set_calibration(12, -430001, 2000, 1796083200)
    s.save(path)
    again = settings.Settings()
    loaded = again.load(path)
    out = {"missing": missing, "loaded": loaded, "values": list(again.values())}
    # a damaged file: the defaults, never half of it
    payload = bytearray(s.pack())
    payload[0] = 99  # another version
    atomic.write(path, payload)
    third = settings.Settings()
    out["other_version"] = third.load(path)
    out["defaults_kept"] = list(third.values()) == list(settings.Settings().values())
    payload = bytearray(s.pack())
    payload[1 + 4 * 4] = 0x7F  # trials_per_site far out of range (its low byte), CRC fine
    atomic.write(path, payload)
    out["out_of_range"] = third.load(path)
    out["dosage"] = again.dosage_config()
    out["trial"] = again.trial_config()
    return out


def refused():
    s = settings.Settings()
    out = []
    for name, value in (("tolerance_pct", 51), ("tolerance_pct", 4), ("unit", True),
                        ("colour", 1), ("min_valid", 4), ("ceiling_kpa_x10", 20.5)):  # fmt: skip
        try:
            s.set(name, value)
            out.append(None)
        except settings.SettingsError as err:
            out.append(str(err))
    out.append(list(s.values()) == list(settings.Settings().values()))
    return out
