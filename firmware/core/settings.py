# Clinic settings and the load cell's calibration: one small file, written whole (core.atomic:
# write-temp + rename, magic + CRC), so a power cut leaves the old settings or the new ones.
# Every value is an integer with its range and default in one table; a file that is
# missing, damaged or from another version gives the defaults (and the caller says so).
# Values are attributes: settings.target_kpa_s_x10.
import struct

from micropython import const

from core import atomic
from core.vocab import AFTERCARE_ICE, QST_HIGH_Z_X100, QST_LOW_Z_X100

_VERSION = const(1)

# (name, low, high); each default is the class attribute of the same name below. The
# measurement defaults are DFNS's (DESIGN 3) and equal the trial engine's own defaults
# (core.ppt; a test keeps them equal).
FIELDS = (
    ("target_kpa_s_x10", 100, 1000),
    ("tolerance_pct", 5, 50),
    ("onset_kpa_x10", 20, 500),
    ("ceiling_kpa_x10", 1000, 20000),
    ("trials_per_site", 1, 6),
    ("min_valid", 1, 6),
    ("repeats_max", 0, 6),
    ("area_cm2_x100", 10, 1000),
    ("unit", 0, 3),
    ("qst_high_z_x100", 50, 300),
    ("qst_low_z_x100", -400, -100),
    ("aftercare_ice", 0, 1),
    ("cal_id", 0, 65535),
    ("span_counts", -8388608, 8388607),
    ("span_mass_g", 0, 20000),
    ("cal_wall_s", 0, 0x7FFFFFFF),
)
_FORMAT = "<B%di" % len(FIELDS)
_FILE_BYTES = struct.calcsize(_FORMAT) + atomic.OVERHEAD_BYTES


class SettingsError(ValueError):
    pass


class Settings:
    # The defaults (a new unit, or a settings file that is missing or damaged).
    target_kpa_s_x10 = 500  # ramp rate target: 50 kPa/s
    tolerance_pct = 20  # +-20 % around the target is "on target"
    onset_kpa_x10 = 100  # a trial starts above 10 kPa
    ceiling_kpa_x10 = 10000  # safety ceiling 1000 kPa: the trial is censored
    trials_per_site = 3
    min_valid = 2  # valid trials a site value needs
    repeats_max = 3  # extra trials after QC failures, per site
    area_cm2_x100 = 100  # probe area: 1 cm2
    unit = 0  # index into core.scale.UNITS: kPa
    qst_high_z_x100 = QST_HIGH_Z_X100  # sensitised ("high"): core.vocab
    qst_low_z_x100 = QST_LOW_Z_X100  # robust ("low"): docs/dosage-rules.md
    aftercare_ice = 0  # 0: no ice for 24 h (seed 002); 1: ice may help (seed 004)
    cal_id = 0  # 0: never calibrated
    span_counts = 0
    span_mass_g = 0
    cal_wall_s = 0  # when it was calibrated (Unix s; 0 unknown)

    def __init__(self):
        self.reset()

    def reset(self):
        """Every value back to its default."""
        for field in FIELDS:
            setattr(self, field[0], getattr(Settings, field[0]))

    def set(self, name, value):
        """Sets one value, or raises SettingsError naming the allowed range."""
        for field, low, high in FIELDS:
            if field == name:
                if type(value) is not int or not low <= value <= high:
                    raise SettingsError("%s: a whole number from %d to %d" % (name, low, high))
                old = getattr(self, name)
                setattr(self, name, value)
                try:
                    self.check()
                except SettingsError:
                    setattr(self, name, old)  # nothing refused is kept
                    raise
                return
        raise SettingsError("unknown setting %s" % name)

    def check(self):
        if self.min_valid > self.trials_per_site:
            raise SettingsError("min_valid: at most trials_per_site (%d)" % self.trials_per_site)
        if self.ceiling_kpa_x10 <= self.onset_kpa_x10:
            raise SettingsError("ceiling_kpa_x10: above onset_kpa_x10")

    def values(self):
        return tuple([getattr(self, field[0]) for field in FIELDS])

    def pack(self):
        return struct.pack(_FORMAT, _VERSION, *self.values())

    def unpack(self, payload):
        """Loads a packed payload; False (and nothing changed) if it is not a valid one."""
        if payload is None or len(payload) != struct.calcsize(_FORMAT) or payload[0] != _VERSION:
            return False
        values = struct.unpack(_FORMAT, payload)[1:]
        for i in range(len(FIELDS)):
            if not FIELDS[i][1] <= values[i] <= FIELDS[i][2]:
                return False
        for i in range(len(FIELDS)):
            setattr(self, FIELDS[i][0], values[i])
        try:
            self.check()
        except SettingsError:
            self.reset()
            return False
        return True

    def load(self, path):
        """Reads the file: True if it held valid settings, else the defaults stay."""
        return self.unpack(atomic.read(path, bytearray(_FILE_BYTES)))

    def save(self, path):
        atomic.write(path, self.pack())

    # --- what the other modules take ---

    def trial_config(self):
        """Keyword arguments for core.ppt.Trial."""
        return {
            "target_kpa_s_x10": self.target_kpa_s_x10,
            "tolerance_pct": self.tolerance_pct,
            "onset_kpa_x10": self.onset_kpa_x10,
            "ceiling_kpa_x10": self.ceiling_kpa_x10,
        }

    def dosage_config(self):
        """The clinic settings core.dosage.recommend takes."""
        return {
            "qst_high_z_x100": self.qst_high_z_x100,
            "qst_low_z_x100": self.qst_low_z_x100,
            "aftercare_ice": AFTERCARE_ICE[self.aftercare_ice],
        }

    def calibrated(self):
        return self.cal_id != 0 and self.span_mass_g != 0

    def set_calibration(self, cal_id, span_counts, span_mass_g, wall_s):
        self.cal_id = cal_id
        self.span_counts = span_counts
        self.span_mass_g = span_mass_g
        self.cal_wall_s = wall_s or 0
