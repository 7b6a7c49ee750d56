"""The visits as a FHIR R4 (4.0.1) transaction Bundle for a clinic's record system
(docs/export.md, "FHIR R4").

Per patient a Patient with the pseudonymous code as its only identifier (never a name), per
unit a Device, and per visit:

- an Observation per site's pressure pain threshold: UCUM kPa (">=" the ceiling bound for a
  site censored at the safety ceiling), the body site with its laterality, the method SNOMED
  CT 80314008 "Sensory testing (procedure)", the unit as device, the effective time;
  components: CV % and the number of valid trials;
- an Observation per z-score (or "<=" z bound of a censored site) against the reference
  range -1.96..1.96, with the QST category as its interpretation, derived from the PPT;
- an Observation per side-to-side difference and one for widespread sensitisation, where the
  visit has them;
- the recommendation as a ServiceRequest with intent "proposal" (the unit proposes, the
  clinician decides), requester the Device, doNotPerform when no needling is recommended
  (contraindicated), the rule ids as reason codes of the ruleset's code system version;
- the dose given as a Procedure based on that ServiceRequest ("not-done" when no needling
  was recorded), with the response the patient reported at the next visit as its outcome.

There is no LOINC code for a pressure pain threshold, so the codes are this project's own
code systems under a system base (DEFAULT_SYSTEM_BASE, or the clinic's own). Every entry is
a conditional create (ifNoneExist on its identifier: unit + seq of the record), so sending
the same export twice creates nothing twice.
"""

import uuid

from core.vocab import SITES
from host_sync.export import when

# RFC 2606 reserves .invalid: this base can never be anyone's real address. A clinic that
# publishes the code systems passes its own base (--fhir-base); the codes stay the same.
DEFAULT_SYSTEM_BASE = "https://algodose.invalid/fhir"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
SENSORY_TESTING = {"system": SNOMED, "code": "80314008", "display": "Sensory testing (procedure)"}
LATERALITY = {
    "L": {"system": SNOMED, "code": "7771000", "display": "Left (qualifier value)"},
    "R": {"system": SNOMED, "code": "24028007", "display": "Right (qualifier value)"},
}
GENDERS = {"F": "female", "M": "male", "U": "unknown"}

# The project's code systems: (path under the base, title, {code: display}).
OBSERVATION_CODES = {
    "ppt": "Pressure pain threshold",
    "ppt-z": "Pressure pain threshold z-score (DFNS sign: positive = lower threshold)",
    "ppt-cv": "Coefficient of variation of the valid trials",
    "ppt-valid-trials": "Number of valid trials",
    "ppt-side-difference": "Side-to-side difference of pressure pain thresholds",
    "widespread-sensitisation": "Widespread sensitisation (remote reference site sensitised)",
}
QST_CATEGORY_DISPLAY = {
    "high": "Sensitised (z at or above the high cut-off)",
    "normal": "Within the cut-offs",
    "low": "Robust (z at or below the low cut-off)",
}
RESPONSE_DISPLAY = {
    "none": "No change after the last session",
    "tolerated": "Tolerated the last session",
    "flare": "Flare after the last session",
}
CODE_SYSTEMS = (
    ("observation", "AlgoDose observations", OBSERVATION_CODES),
    ("site", "AlgoDose measurement sites", {s: s.replace("_", " ") for s in SITES}),
    ("qst-category", "AlgoDose QST categories", QST_CATEGORY_DISPLAY),
    ("response", "AlgoDose response to the last session", RESPONSE_DISPLAY),
    ("procedure", "AlgoDose procedures", {"dry-needling": "Dry needling"}),
)
_CODE_TABLES = {name: codes for name, _title, codes in CODE_SYSTEMS}  # coding()'s look-up
# Identifier systems and extensions under the base.
PATIENT_CODE = "/NamingSystem/patient-code"
DEVICE_SERIAL = "/NamingSystem/device-serial"
RECORD = "/NamingSystem/record"  # value: "<unit>/<seq>", a record's key
RULE = "/CodeSystem/dosage-rule"  # codes: core.dosage.RULES ids, version: the ruleset
EXT_LATERALITY = "/StructureDefinition/laterality"
EXT_DOSE = "/StructureDefinition/needling-dose"
EXT_STATUS = "/StructureDefinition/recommendation-status"
EXT_TIME_SOURCE = "/StructureDefinition/time-source"


class Builder:
    """Builds the Bundle's entries; one per export."""

    def __init__(self, base=DEFAULT_SYSTEM_BASE, tz=None):
        self.base = base.rstrip("/")
        self.tz = tz
        self.entries = []
        self._patients = {}
        self._devices = {}
        self.skipped = 0  # visits whose session start is not in the database

    # --- plumbing ----------------------------------------------------------------------------

    def system(self, path):
        return self.base + path

    def coding(self, name, code):
        display = _CODE_TABLES[name][code]
        return {"system": self.system("/CodeSystem/" + name), "code": code, "display": display}

    def _add(self, rtype, key, resource, identifier):
        full_url = "urn:uuid:%s" % uuid.uuid5(uuid.NAMESPACE_URL, self.base + "/" + key)
        resource = dict(resourceType=rtype, identifier=[identifier], **resource)
        self.entries.append(
            {
                "fullUrl": full_url,
                "resource": _pruned(resource),
                "request": {
                    "method": "POST",
                    "url": rtype,
                    "ifNoneExist": "identifier=%s|%s"
                    % (identifier["system"], identifier["value"]),
                },
            }
        )
        return {"reference": full_url}

    def _record_id(self, rec, suffix=""):
        value = "%s/%d%s" % (rec["device_id"], rec["seq"], suffix)
        return {"system": self.system(RECORD), "value": value}

    def _time(self, rec):
        source = {"url": self.system(EXT_TIME_SOURCE), "valueCode": rec["time_source"]}
        return when(rec["time_s"], self.tz) or None, source

    # --- who and what --------------------------------------------------------------------------

    def patient(self, code, sex):
        if code not in self._patients:
            identifier = {"system": self.system(PATIENT_CODE), "value": code}
            self._patients[code] = self._add(
                "Patient",
                "patient/" + code,
                {"active": True, "gender": GENDERS.get(sex)},
                identifier,
            )
        return self._patients[code]

    def device(self, device):
        device_id = device["device_id"]
        if device_id not in self._devices:
            versions = [
                {"type": {"text": "firmware"}, "value": device.get("firmware")},
                {"type": {"text": "dosage ruleset"}, "value": device.get("ruleset")},
            ]
            self._devices[device_id] = self._add(
                "Device",
                "device/" + device_id,
                {
                    "status": "active",
                    "serialNumber": device_id,
                    "deviceName": [{"name": device.get("model"), "type": "model-name"}]
                    if device.get("model")
                    else None,
                    "type": {"text": "Pressure algometer"},
                    "version": [v for v in versions if v["value"]],
                },
                {"system": self.system(DEVICE_SERIAL), "value": device_id},
            )
        return self._devices[device_id]

    def body_site(self, site, side):
        concept = {
            "coding": [self.coding("site", site)],
            "text": site.replace("_", " ") + {"L": ", left", "R": ", right"}.get(side, ""),
        }
        if side in LATERALITY:
            concept["extension"] = [
                {
                    "url": self.system(EXT_LATERALITY),
                    "valueCodeableConcept": {"coding": [LATERALITY[side]]},
                }
            ]
        return concept

    def code(self, code):
        return {"coding": [self.coding("observation", code)], "text": OBSERVATION_CODES[code]}

    # --- a visit ---------------------------------------------------------------------------------

    def visit(self, visit, device):
        if visit["session"] is None:
            self.skipped += 1
            return
        subject = self.patient(visit["code"], visit["session"]["sex"])
        unit = self.device(device)
        ppt_refs = {}
        z_refs = {}
        for site in visit["sites"]:
            ppt_refs[(site["site"], site["side"])] = ref = self.ppt(site, subject, unit)
            z_ref = self.z_score(site, subject, unit, ref)
            if z_ref is not None:
                z_refs[site["role"]] = z_ref
        comparison = visit["comparison"] or {}
        for pair in comparison.get("side_to_side", ()):
            self.side_difference(visit, pair, subject, unit, ppt_refs)
        remote = comparison.get("local_to_remote")
        if remote is not None and remote["widespread"] is not None:
            self.widespread(visit, remote, subject, unit, z_refs)
        request = None
        if visit["recommendation"] is not None:
            request = self.recommendation(visit, subject, unit, list(ppt_refs.values()), z_refs)
        if visit["dose"] is not None:
            self.procedure(visit, subject, request)

    def _observation(self, rec, suffix, code, subject, unit, **fields):
        effective, source = self._time(rec)
        resource = {
            "extension": [source],
            "status": "final",
            "category": [
                {"coding": [{"system": OBSERVATION_CATEGORY, "code": "exam", "display": "Exam"}]}
            ],
            "code": self.code(code),
            "subject": subject,
            "effectiveDateTime": effective,
            "device": unit,
        }
        resource.update(fields)
        key = "observation/%s/%d%s" % (rec["device_id"], rec["seq"], suffix)
        return self._add("Observation", key, resource, self._record_id(rec, suffix))

    def ppt(self, site, subject, unit):
        value = site["ppt_kpa_x10"]
        fields = {
            "method": {"coding": [SENSORY_TESTING]},
            "bodySite": self.body_site(site["site"], site["side"]),
        }
        if value is not None:
            fields["valueQuantity"] = _kpa(value)
        elif site["ppt_min_kpa_x10"] is not None:
            fields["valueQuantity"] = dict(_kpa(site["ppt_min_kpa_x10"]), comparator=">=")
            fields["note"] = [{"text": "Censored at the safety ceiling: the threshold is at "
                               "least this pressure."}]  # fmt: skip
        else:
            fields["dataAbsentReason"] = {
                "coding": [{"system": DATA_ABSENT, "code": "error", "display": "Error"}],
                "text": "fewer valid trials than a site value needs",
            }
        components = [
            {
                "code": self.code("ppt-valid-trials"),
                "valueQuantity": {"value": site["n_valid"], "unit": "trials", "system": UCUM,
                                  "code": "{trials}"},
            }
        ]  # fmt: skip
        if site["cv_pct_x10"] is not None:
            components.append(
                {
                    "code": self.code("ppt-cv"),
                    "valueQuantity": {"value": site["cv_pct_x10"] / 10, "unit": "%",
                                      "system": UCUM, "code": "%"},
                }
            )  # fmt: skip
        fields["component"] = components
        return self._observation(site, "", "ppt", subject, unit, **fields)

    def z_score(self, site, subject, unit, ppt_ref):
        z = site["z_x100"]
        bound = site["z_max_x100"]
        if z is None and bound is None:
            return None  # no reference row for this site: no z, never an invented norm
        value = _z(z if z is not None else bound)
        if z is None:
            value["comparator"] = "<="
        fields = {
            "method": {"coding": [SENSORY_TESTING]},
            "bodySite": self.body_site(site["site"], site["side"]),
            "valueQuantity": value,
            "referenceRange": [
                {"low": _z(-196), "high": _z(196), "text": "95 % of the reference group"}
            ],
            "derivedFrom": [ppt_ref],
        }
        if site["category"] is not None:
            fields["interpretation"] = [
                {
                    "coding": [self.coding("qst-category", site["category"])],
                    "text": site["category"],
                }
            ]
        return self._observation(site, "/z", "ppt-z", subject, unit, **fields)

    def side_difference(self, visit, pair, subject, unit, ppt_refs):
        if pair["diff_pct_x10"] is None:
            return
        sites = [s for s in visit["sites"] if s["site"] == pair["site"] and s["side"] == "R"]
        anchor = sites[0]
        fields = {
            "method": {"coding": [SENSORY_TESTING]},
            "bodySite": self.body_site(pair["site"], None),
            "valueQuantity": {"value": pair["diff_pct_x10"] / 10, "unit": "%", "system": UCUM,
                              "code": "%"},
            "interpretation": [{"text": "over 35 %" if pair["flag"] else "within 35 %"}],
            "derivedFrom": [ppt_refs[(pair["site"], "L")], ppt_refs[(pair["site"], "R")]],
        }  # fmt: skip
        self._observation(anchor, "/side", "ppt-side-difference", subject, unit, **fields)

    def widespread(self, visit, remote, subject, unit, z_refs):
        anchors = [s for s in visit["sites"] if s["role"] == "remote"] or visit["sites"]
        fields = {
            "valueBoolean": remote["widespread"],
            "derivedFrom": [z_refs[role] for role in ("local", "remote") if role in z_refs],
        }
        self._observation(anchors[-1], "/widespread", "widespread-sensitisation", subject, unit,
                          **fields)  # fmt: skip

    def _dose_extension(self, dose):
        parts = []
        if dose["gauge_mm"] is not None:
            parts.append({"url": "gauge-mm", "valueDecimal": dose["gauge_mm"]})
        if dose["needles"] is not None:
            parts.append({"url": "needles", "valueInteger": dose["needles"]})
        for name in ("depth", "manipulation"):
            if dose[name] is not None:
                parts.append({"url": name, "valueCode": dose[name]})
        for adjunct in dose["adjuncts"]:
            parts.append({"url": "adjunct", "valueCode": adjunct})
        return {"url": self.system(EXT_DOSE), "extension": parts} if parts else None

    def _needling(self):
        return {"coding": [self.coding("procedure", "dry-needling")], "text": "Dry needling"}

    def _local_site(self, visit):
        for site in visit["sites"]:
            if site["role"] == "local":
                return self.body_site(site["site"], site["side"])
        return None

    def recommendation(self, visit, subject, unit, ppt_refs, z_refs):
        rec = visit["recommendation"]
        authored, source = self._time(rec)
        rule_system = self.system(RULE)
        reason_of = {r["rule"]: r["text"] for r in rec["reasons"] or () if r["rule"]}
        reason_codes = [
            {"coding": [{"system": rule_system, "version": rec["ruleset"], "code": rule}],
             "text": reason_of.get(rule, rule)}
            for rule in rec["rules"] or ()
        ]  # fmt: skip
        if rec["rules"] is None:  # another ruleset's record: its rule bits, unresolved here
            reason_codes = [
                {"text": "rule bits %s of ruleset %s" % (rec["rule_bits"], rec["ruleset"])}
            ]
        per_week = rec["sessions_per_week"]
        resource = {
            "extension": [
                source,
                {"url": self.system(EXT_STATUS), "valueCode": rec["status"]},
                self._dose_extension(rec),
            ],
            "status": "completed" if visit["dose"] is not None else "active",
            "intent": "proposal",
            "code": self._needling(),
            "doNotPerform": rec["needles"] is None,
            "subject": subject,
            "authoredOn": authored,
            "requester": unit,
            "bodySite": [self._local_site(visit)],
            "occurrenceTiming": None
            if per_week is None
            else {"repeat": {"frequency": per_week[0], "frequencyMax": per_week[1], "period": 1,
                             "periodUnit": "wk"}},
            "reasonCode": reason_codes,
            "reasonReference": [z_refs["local"]] if "local" in z_refs else None,
            "supportingInfo": ppt_refs,
            "instantiatesUri": [self.system("/ruleset/" + rec["ruleset"])],
            "note": [{"text": r["text"]} for r in rec["reasons"] or ()]
            + [{"text": "Contraindication overridden by the clinician: " + o.replace("_", " ")}
               for o in rec["overrides"]],
        }  # fmt: skip
        key = "servicerequest/%s/%d" % (rec["device_id"], rec["seq"])
        return self._add("ServiceRequest", key, resource, self._record_id(rec))

    def procedure(self, visit, subject, request):
        dose = visit["dose"]
        performed, source = self._time(dose)
        given = dose["needles"] is not None
        outcome = visit["outcome"]
        resource = {
            "extension": [source, self._dose_extension(dose)],
            "status": "completed" if given else "not-done",
            "statusReason": None if given else {"text": "No needling recorded at this visit"},
            "code": self._needling(),
            "subject": subject,
            "performedDateTime": performed,
            "basedOn": [request] if request is not None else None,
            "bodySite": [self._local_site(visit)],
            "outcome": None
            if outcome is None
            else {"coding": [self.coding("response", outcome["response"])],
                  "text": "reported at the next visit: " + outcome["response"]},
        }  # fmt: skip
        key = "procedure/%s/%d" % (dose["device_id"], dose["seq"])
        self._add("Procedure", key, resource, self._record_id(dose))


def _kpa(kpa_x10):
    return {"value": round(kpa_x10 / 10, 1), "unit": "kPa", "system": UCUM, "code": "kPa"}


def _z(z_x100):
    return {
        "value": round(z_x100 / 100, 2),
        "unit": "z-score",
        "system": UCUM,
        "code": "{Z-score}",
    }


def _pruned(value):
    """Without the None values and the empty lists and objects FHIR does not allow (ele-1)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = _pruned(item)
            if item is not None and item != [] and item != {}:
                out[key] = item
        return out
    if isinstance(value, list):
        return [item for item in (_pruned(v) for v in value) if item is not None and item != {}]
    return value


def bundle(data, base=DEFAULT_SYSTEM_BASE, tz=None, now_s=None):
    """The export as a FHIR R4 transaction Bundle (a dict), and how many visits were left out
    because their session start is not in the database (no patient to file them under)."""
    builder = Builder(base, tz)
    devices = {d["device_id"]: d for d in data["devices"]}
    for visit in data["visits"]:
        builder.visit(visit, devices.get(visit["device_id"], {"device_id": visit["device_id"]}))
    out = {"resourceType": "Bundle", "type": "transaction", "entry": builder.entries}
    if now_s is not None:
        out["timestamp"] = when(now_s, tz)
    return out, builder.skipped


def code_systems(base=DEFAULT_SYSTEM_BASE):
    """The project's code systems as FHIR R4 CodeSystem resources, for a clinic that
    publishes them on its terminology server (docs/export.md lists them too)."""
    base = base.rstrip("/")
    out = []
    for name, title, codes in CODE_SYSTEMS:
        out.append(
            {
                "resourceType": "CodeSystem",
                "url": base + "/CodeSystem/" + name,
                "name": "AlgoDose" + "".join(p.title() for p in name.split("-")),
                "title": title,
                "status": "active",
                "content": "complete",
                "caseSensitive": True,
                "concept": [{"code": code, "display": display} for code, display in codes.items()],
            }
        )
    return out
