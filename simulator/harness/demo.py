# One clinic visit on the virtual unit: the firmware's real main.run and app.App on the
# simulator's board (simulator/fakes/unit.py), driven only through the buttons, the probe
# and the patient's stop button, by a script keyed on the unit's state and screen. Runs on
# CPython (imported by `python -m simulator demo`) and on micropython. Writes lines:
#   say TEXT         the narrative a clinician reads
#   frame NAME HEX   the last frame of every screen shown (128x64 MONO_VLSB, hex)
#   link WHAT        for the laptop beside it (simulator/clinic.py), when the unit has a
#                    radio: "pairing-open", "passkey NNNNNN" (what the screen shows),
#                    "stored" (the visit is on flash; the unit waits for the laptop's pull)
#   data JSON        at the end: what the screens showed and what is stored (for tests)
# With a radio the laptop pairs, pushes the patient list and sets the clock over BLE, and
# pulls at the end; without one (the heap bench, --quiet) the list and the clock are handed
# to the unit as its BLE server would hand them.
# Arguments: --quiet (no frames).
import binascii
import sys

from unit import Board, idle, on, records, screen, state, tick
from unit import left as leaves
from unit import run as run_unit

from core import canonjson, record, ui
from core import visit as V
from core.scale import format_kpa_x10

WALL_S = 1795860000  # the clock the laptop sets (2026-11-28, 10:00 UTC)
LIST_TIME_S = WALL_S - 600
PATIENTS = (
    {
        "code": "K-0007",
        "age": 63,
        "sex": "M",
        "conditions": ("diabetes",),
        "flags": ("chronic",),
        "sessions": 3,
        "last_dose": (2, 6, 1, 1),
        "last_adjuncts": (),
    },
    {
        "code": "P-0042",
        "age": 47,
        "sex": "F",
        "conditions": ("fibromyalgia",),
        "flags": ("chronic",),
        "sessions": 0,
    },
    {"code": "A-1003", "age": 29, "sex": "F", "flags": ("recent_exercise",), "sessions": 1},
)
CHOSEN = 1  # P-0042, a new patient: no history yet
TODAY = ("high_stress",)  # ticked on the unit today
# Per site: (rate kPa/s x 10, the patient's threshold kPa x 10) of each trial; the hand is
# a little uneven, as a clinician's is.
RAMPS = (
    ((492, 1503), (515, 1561), (503, 1486)),  # upper trapezius R, the site to needle
    ((508, 1312), (487, 1259), (521, 1348)),  # thenar R, the remote reference
)
_DOWN = 1  # the buttons, as Hand.press numbers them
_SELECT = 2


class Demo:
    def __init__(self, write, quiet):
        self.write = write
        self.quiet = quiet
        self.key = None  # the screen whose frame is kept
        self.frame = bytearray(1024)
        self.names = []
        self.shown = {"trials": [], "sites": [], "recommendation": None, "dose": None}
        self.board = None

    def say(self, text):
        self.write("say " + text + "\n")

    def link(self, text):
        self.write("link " + text + "\n")

    # --- frames: the last one of each screen ----------------------------------------------

    def on_frame(self, buf):
        if self.quiet:
            return
        unit = self.board.unit if self.board is not None else None
        if unit is None:
            return
        key = _screen_key(unit)
        if key != self.key:
            self.flush_frame()
            self.key = key
        self.frame[:] = buf

    def flush_frame(self):
        if self.key is not None:
            name = "%02d-%s" % (len(self.names) + 1, self.key)
            self.names.append(name)
            self.write("frame %s %s\n" % (name, binascii.hexlify(self.frame).decode()))
            self.key = None

    # --- the visit, as the clinician performs it ------------------------------------------

    def script(self, hand):
        say = self.say
        yield on("home")
        unit = hand.unit
        if unit.server is not None:
            yield from self.pair(hand)
        else:
            unit.on_time_set(WALL_S)
            unit.on_patients(LIST_TIME_S, [dict(p) for p in PATIENTS])
            codes = ", ".join([p["code"] for p in PATIENTS])
            say("The unit gets the clinic's clock and patient list: %s." % codes)
        yield hand.after(500)
        nav = unit.nav
        say("Home screen: " + " / ".join([r for r in screen(unit)[1:6] if r]) + ".")
        hand.press(_SELECT)
        yield on("patients")
        hand.press(_DOWN, CHOSEN)
        hand.press(_SELECT)
        yield on("factors")
        patient = nav.patient
        known = ", ".join([ui.label(n) for n in nav.ticked]) or "none"
        say(
            "Patient %s chosen from the list: %d y, %s; known to the laptop: %s."
            % (patient["code"], patient["age"], patient["sex"], known)
        )
        names = ui.factor_names()
        at = tick(hand, names, TODAY)
        hand.press(_DOWN, len(names) - 1 - at)
        hand.press(_SELECT)
        yield on("contraindications")
        say("Factors ticked today: %s." % ", ".join([ui.label(n) for n in TODAY]))
        hand.press(_DOWN, len(ui.contraindication_rows(())) - 1)
        hand.press(_SELECT)
        yield on("plan")
        say("Contraindications: none ticked.")
        sites = nav.plan_sites()
        local, remote = sites[0], sites[-1]
        say(
            "Site plan: %s (to be needled), %s (remote reference)."
            % (_site(local[0], local[1]), _site(remote[0], remote[1]))
        )
        hand.press(_DOWN, 2)
        hand.press(_SELECT)
        visit = unit.visit
        yield state(V.ZERO)
        for number in range(len(RAMPS)):
            yield from self.site(hand, visit, RAMPS[number])
        yield on("recommendation")
        rec = visit.recommendation
        self.shown["recommendation"] = _dose_view(rec)
        self.say_recommendation(rec)
        for _ in range(nav.pages - 1):
            hand.press(_DOWN)
            yield idle
        hand.press(_SELECT)
        yield on("dose")
        hand.press(_SELECT)  # "Confirm this dose"
        yield on("aftercare")
        self.shown["dose"] = _dose_view(visit.dose)
        say("Dose given: as recommended, confirmed on the unit and stored.")
        say("After-care shown: " + " ".join(rec["aftercare"]))
        hand.press(_SELECT)
        yield on("home")
        yield hand.after(300)
        if unit.server is not None:
            yield from self.synced(hand)
        self.flush_frame()
        if not self.quiet:  # the simulator's own check, not the unit's work
            self.report(unit)

    # --- the laptop beside the unit (when it has a radio) ---------------------------------

    def pair(self, hand):
        """Menu, pair a laptop: the clinician opens the window and reads the passkey to the
        laptop; the laptop then pushes the patient list and sets the clock."""
        unit = hand.unit
        server = unit.server
        hand.board.set_realtime(True)  # the laptop works in real time
        hand.press(_UP)
        yield on("menu")
        hand.press(_DOWN, 2)
        hand.press(_SELECT)
        yield on("pairing")
        self.say("The clinician opens the pairing window on the unit (Menu, Pair a laptop).")
        self.link("pairing-open")
        yield _passkey_shown
        self.link("passkey %06d" % server.passkey)
        self.say(
            "The laptop asks to pair; the unit shows the passkey %06d, typed on the laptop."
            % server.passkey
        )
        yield _list_and_clock
        hand.back()
        yield on("home")
        codes = ", ".join([p["code"] for p in unit.patients])
        self.say("Paired. The laptop pushed its patient list (%s) and set the clock." % codes)
        hand.board.set_realtime(False)

    def synced(self, hand):
        """The visit is on flash: the laptop pulls it; the unit waits until the laptop has
        acknowledged every record (they may then be freed when space is needed)."""
        hand.board.set_realtime(True)
        self.link("stored")
        self.say("End of the clinic day: the laptop pulls the new records over Bluetooth.")
        yield _acknowledged
        store = hand.unit.store
        self.say(
            "The laptop committed them and acknowledged up to seq %d: the unit may free them"
            " when it needs the space." % store.acked_seq
        )

    def site(self, hand, visit, ramps):
        site, side, role = visit.site()
        name = _site(site, side)
        self.say("%s: the probe held still in the air, the unit zeroes." % _capital(name))
        hand.hold_still()
        yield state(V.ARMED)
        for rate, threshold in ramps:
            count = len(visit.trials)
            hand.trial(rate, threshold)
            yield _trial_done(count + 1)
            trial = visit.trials[-1]
            self.shown["trials"].append(trial["ppt_kpa_x10"])
            self.say(
                "  Trial %d: pressed at %s kPa/s; the patient pressed stop at %s kPa (%s)."
                % (
                    trial["trial"],
                    _one(trial["rate_kpa_s_x10"]),
                    _one(trial["ppt_kpa_x10"]),
                    "saved" if visit.saved else "NOT saved",
                )
            )
        yield on("site_result")
        result = visit.site_results[-1]
        self.shown["sites"].append(_site_view(result))
        qst = result["qst"] or {}
        words = {"high": "sensitised", "normal": "normal", "low": "robust"}
        self.say(
            "  Result: PPT %s kPa, CV %s %%, z %s: %s."
            % (
                _one(result["ppt_kpa_x10"]),
                _one(result["cv_pct_x10"]),
                _z(qst.get("z_x100")),
                words.get(qst.get("category"), "no reference"),
            )
        )
        hand.press(_SELECT)
        yield leaves("site_result")

    def say_recommendation(self, rec):
        say = self.say
        if rec["needles"] is None:
            say("Recommendation (%s): no needling." % _STATUS[rec["status"]])
        else:
            say(
                "Recommendation (%s): %s mm needles, %d of them, %s, %s."
                % (
                    _STATUS[rec["status"]],
                    ui.gauge_text(rec["gauge_mm"]),
                    rec["needles"],
                    rec["depth"],
                    ui.label(rec["manipulation"]) + " insertion"
                    if rec["manipulation"] == "basic"
                    else ui.label(rec["manipulation"]),
                )
            )
        for reason in rec["reasons"]:
            say("  Why: " + reason["text"] + ".")
        for warning in rec["warnings"]:
            say("  Warning: " + warning + ".")

    # --- what is stored --------------------------------------------------------------------

    def report(self, unit):
        found = records(unit.store)
        types = {}
        for r in found:
            types[r["type"]] = types.get(r["type"], 0) + 1
        stored = {
            "trials": [r["ppt_kpa_x10"] for r in found if r["type"] == "trial"],
            "sites": [_site_view(r) for r in found if r["type"] == "site"],
            "recommendation": None,
            "dose": None,
        }
        for r in found:
            if r["type"] == "recommendation":
                stored["recommendation"] = _dose_view(r)
            elif r["type"] == "dose":
                stored["dose"] = _dose_view(r)
        match = stored == self.shown
        counts = ", ".join(["%d %s" % (types[t], t) for t in record.TYPE_NAMES if t in types])
        self.say(
            "Stored on the unit's flash: %d records, seq %d to %d (%s)."
            % (len(found), found[0]["seq"], found[-1]["seq"], counts)
        )
        synced = unit.store.acked_seq >= found[-1]["seq"]
        self.say(
            "The trials, site results, recommendation and dose on flash %s what the screens "
            "showed. %s"
            % (
                "equal" if match else "DO NOT equal",
                "The laptop has them all." if synced else "They wait for the laptop's sync.",
            )
        )
        out = {
            "shown": self.shown,
            "stored": stored,
            "match": match,
            "types": [r["type"] for r in found],
            "events": [[r["code"], r["detail"]] for r in found if r["type"] == "event"],
            "screens": self.names,
            "state": V.STATE_NAMES[unit.visit.state],
        }
        self.write("data " + canonjson.dumps(out) + "\n")


# --- words and views -----------------------------------------------------------------------


def _screen_key(unit):
    nav = unit.nav
    name = nav.name()
    if name == "measurement":
        visit = unit.visit
        return "site%d-trial%d-%s" % (
            visit.site_index + 1,
            min(visit.trial_number + 1, visit.settings.trials_per_site),
            V.STATE_NAMES[visit.state],
        )
    if name in ("site_result", "recommendation", "aftercare", "notice"):
        return "%s-%d" % (name, nav.page + 1)
    return name


_STATUS = {"ok": "dose OK", "caution": "CAUTION", "contraindicated": "CONTRAINDICATED"}
_UP = 0


def _passkey_shown(hand):
    return hand.unit.server.passkey is not None


def _list_and_clock(hand):
    # Paired (the passkey is gone from the screen), the list and the clock have arrived.
    unit = hand.unit
    return unit.server.passkey is None and len(unit.patients) > 0 and unit.clock.valid


def _acknowledged(hand):
    store = hand.unit.store
    return store.stored_seq > 0 and store.acked_seq >= store.stored_seq


def _trial_done(count):
    # The trial is stored and the probe is off the skin again.
    def done(hand):
        visit = hand.unit.visit
        return (
            len(visit.trials) >= count
            and visit.state != V.RAMP
            and hand.board.now_ms() >= hand.busy_ms
        )

    return done


def _capital(text):
    return text[0].upper() + text[1:]


def _site(site, side):
    return ui.label(site) + (" " + side if side else "")


def _one(value_x10):
    if value_x10 is None:
        return "-"
    return format_kpa_x10(value_x10)


def _z(z_x100):
    if z_x100 is None:
        return "-"
    return ("+" if z_x100 > 0 else "-") + "%d.%02d" % (abs(z_x100) // 100, abs(z_x100) % 100)


def _site_view(s):
    return [s["site"], s["side"], s["ppt_kpa_x10"], s["cv_pct_x10"], s["z_x100"], s["category"]]


def _dose_view(d):
    keys = ("gauge_mm", "needles", "depth", "manipulation", "adjuncts")
    view = [d.get(k) for k in keys]
    if "status" in d:
        view.append(d["status"])
        view.append(list(d["rules"]))
    return view


def run(write, quiet=False, flash=None):
    """The visit; write(line) takes the output; flash: the FakeFlash to use (micropython).
    On micropython the unit has a radio when the simulator's BLE bridge is there."""
    demo, board = setup(write, quiet, flash)
    run_unit(demo.script, board)
    return finish(demo, board)


def setup(write, quiet=False, flash=None, radio=None):
    """The demo and its calibrated board (radio: CPython's simulated radio, or None)."""
    demo = Demo(write, quiet)
    board = Board(noise_counts=40, seed=11, on_frame=demo.on_frame, flash=flash, radio=radio)
    demo.board = board
    board.calibrated()  # with a 2 kg mass, at the start of the clinic day
    demo.say(
        "AlgoDose, the virtual bedside unit: one clinic visit, from a patient to stored data."
    )
    return demo, board


def finish(demo, board):
    if board.unit is None or not board.hand.done:
        raise RuntimeError("the unit stopped before the visit was over")
    board.power_cut()
    return demo


def main(argv, stdin, stdout, stderr):
    run(stdout.write, "--quiet" in argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], sys.stdin, sys.stdout, sys.stderr))
