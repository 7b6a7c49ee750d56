"""Bad input on every writable characteristic: the control point, the patient list and
Current Time get hypothesis-generated writes; the unit answers only with defined RACP
responses (or a patient-list verdict) or ignores them, keeps serving, and its store is
unchanged (only a valid "delete <= N" may acknowledge).

The bulk (5 000 writes per characteristic, on an authenticated link, and a share on an
unauthenticated one) runs in process on CPython against the real GATT server
(firmware/ble.py on the simulator's `bluetooth` module, core.sync, the real store). The
radio under it is a recorder, a stand-in for the air only: it delivers each write as the
simulator's radio does (cut to the characteristic's buffer, IRQ 3) and confirms every
indication at once, so thousands of writes take seconds; Bumble's ATT layer is exercised by
the smaller sample sent over the real stack, through the bridge to `micropython` too
(test_a_sample_over_the_air_on_both_runtimes).
"""

import asyncio
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sync_rig import run, sync_device

from core import protocol, record
from host_sync.ble import uuid16
from simulator.ble import bluetooth_module

WRITES = 5000
DEVICE_ID = "F00D0000BEEF"
_counts = {}


class RecorderRadio:
    """The radio's interface (simulator/ble/peripheral.py) with no air: what the firmware
    sends is recorded; every notification and indication is sent at once."""

    def __init__(self):
        self.sent = []
        self.state = None
        self._handles = 0

    def attach(self, state):
        self.state = state

    def activate(self, config):
        return (1, bytes(6))

    def configure(self, changes):
        pass

    def irq_registered(self):
        pass

    def deactivate(self):
        pass

    def register(self, spec):
        out = []
        for _service, chars in spec:
            handles = []
            for _uuid, _flags, descriptors in chars:
                self._handles += 2  # declaration and value
                handles.append(self._handles)
                for _ in descriptors:
                    self._handles += 1
                    handles.append(self._handles)
            out.append(handles)
        return out

    def advertise(self, *args):
        pass

    def notify(self, conn, handle, data, update=False):
        self.sent.append(("notify", handle, bytes(data)))
        self.state.on_event("credit", [1])

    def indicate(self, conn, handle, data):
        self.sent.append(("indicate", handle, bytes(data)))
        self.state.on_event("credit", [1])
        self.state.on_event("indicate_done", [conn, handle, 0])

    def disconnect(self, conn):
        self.sent.append(("disconnect", conn, b""))

    def pair(self, conn):
        pass

    def passkey(self, conn, action, passkey):
        pass


class Bench:
    """The unit, connected: one authenticated link, 30 trials stored."""

    def __init__(self, root):
        self.radio = RecorderRadio()
        bluetooth = bluetooth_module()
        self.now = 0
        # The test unit (tests/device/sync_device.py) on the recorder, with 30 trials.
        self.unit = sync_device.Unit(
            bluetooth, bluetooth.BLE(self.radio), root, DEVICE_ID, None, self.clock
        )
        self.unit.add(30)
        self.store = self.unit.store
        self.server = self.unit.server
        self.times = self.unit.times
        self.lists = self.unit.lists
        self.server.start()
        self.state = self.radio.state
        self.state.on_event("connect", [1, 0, bytes(6)])
        self.secure(True)
        self.digest = self.records()
        self.acked = 0

    def clock(self):
        return self.now

    def secure(self, on):
        self.state.on_event("encryption", [1, on, on, on, 16 if on else 0])
        self.run()

    def records(self):
        return [bytes(view) for _seq, view in self.store.records()]

    def run(self):
        for _ in range(1000):
            self.now += 1
            self.server._service(self.now)
            if not self.server.sync.busy and not self.server._head - self.server._tail:
                return
        raise AssertionError("the unit never went idle")

    def write(self, handle, data):
        self.radio.sent.clear()
        self.state.on_event("write", [1, handle, data])
        self.run()
        return self.radio.sent


_BENCHES = {}


def bench(tmp_path_factory):
    if "bench" not in _BENCHES:
        _BENCHES["bench"] = Bench(str(tmp_path_factory.mktemp("fuzz")))
    return _BENCHES["bench"]


def _requests():
    # Random bytes, and bytes near the request format (ops and operators around the valid
    # ones, filter 1, small operands) so the parser's every branch is reached.
    near = st.builds(
        lambda op, oper, rest: bytes((op, oper)) + rest,
        st.integers(0, 8),
        st.integers(0, 8),
        st.one_of(
            st.binary(max_size=12),
            st.builds(
                lambda f, a, b: bytes((f,)) + a.to_bytes(4, "little") + b,
                st.integers(0, 2),
                st.integers(0, 40) | st.integers(0, 0xFFFFFFFF),
                st.binary(max_size=4),
            ),
        ),
    )
    return st.one_of(st.binary(max_size=40), near)


def _check_control(b, data, sent):
    sent = [s for s in sent if s[0] != "notify" or s[1] == b.server._h_records]
    answers = [protocol.parse_response(s[2]) for s in sent if s[0] == "indicate"]
    assert len(answers) <= 1
    if not answers:
        # Ignored: only when the write was longer than the control point keeps and the
        # four answer slots were full, which one write at a time never makes.
        raise AssertionError("no answer to %r" % data)
    answer = answers[0]
    if answer[0] == "response":
        assert answer[2] in protocol.RESPONSE_NAMES, answer
    try:
        op, low, high = protocol.parse_request(data[:32])
    except protocol.ProtocolError as error:
        assert answer == ("response", data[0] if data else 0, error.code)
        assert not [s for s in sent if s[0] == "notify"]
        return
    if op == protocol.OP_DELETE:
        if data[1] == protocol.OPER_LE and high <= b.store.stored_seq:
            b.acked = max(b.acked, high)
            assert answer == ("response", op, protocol.RSP_SUCCESS)
    elif op == protocol.OP_REPORT_NUMBER:
        expected = sum(1 for r in b.digest if low <= record.seq_of(r, 0) <= high)
        assert answer == ("number", expected)
    elif op == protocol.OP_REPORT:
        rx = protocol.Reassembler(record.check)
        got = []
        for s in sent:
            if s[0] == "notify":
                got.extend(rx.feed(s[2]))
        assert got == [r for r in b.digest if low <= record.seq_of(r, 0) <= high]


def _count(name):
    _counts[name] = _counts.get(name, 0) + 1


def _fuzz_settings(n):
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def test_control_point_writes(tmp_path_factory):
    b = bench(tmp_path_factory)

    @_fuzz_settings(WRITES)
    @given(_requests())
    def one(data):
        _count("control")
        sent = b.write(b.server._h_control, data)
        _check_control(b, data, sent)

    one()
    assert _counts["control"] >= WRITES
    assert b.records() == b.digest and b.store.acked_seq == b.acked


def _patient_writes():
    message = protocol.patient_list(
        [{"code": "P-%04d" % i, "age": 20 + i, "sex": "F"} for i in range(30)], 1796083200
    )
    chunks = protocol.patient_chunks(message, 100)

    def mutated(index, flips):
        chunk = bytearray(chunks[index % len(chunks)])
        for at, value in flips:
            chunk[at % len(chunk)] = value
        return bytes(chunk)

    return st.one_of(
        st.binary(max_size=260),
        st.builds(
            mutated,
            st.integers(0, 10),
            st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=3),
        ),
        st.sampled_from(chunks),
    )


def test_patient_list_writes(tmp_path_factory):
    b = bench(tmp_path_factory)

    @_fuzz_settings(WRITES)
    @given(_patient_writes())
    def one(data):
        _count("patients")
        before = len(b.lists)
        sent = b.write(b.server._h_patients, data)
        assert [s for s in sent if s[0] != "disconnect"] == []  # nothing sent for it
        value = b.state.values[b.server._h_patients].data
        verdict = protocol.parse_patients_result(value)
        if len(b.lists) > before:
            time_s, patients = b.lists[-1]
            assert verdict == (protocol.PATIENTS_ACCEPTED, time_s, len(patients))
            for p in patients:
                record.check_code(p["code"])  # only what the record rules take

    one()
    assert _counts["patients"] >= WRITES
    assert b.records() == b.digest and b.store.acked_seq == b.acked


def test_current_time_writes(tmp_path_factory):
    b = bench(tmp_path_factory)
    valid = st.builds(
        lambda y, mo, d, h, mi, s, rest: bytes((y & 0xFF, y >> 8, mo, d, h, mi, s)) + rest,
        st.integers(2000, 2200),
        st.integers(0, 14),
        st.integers(0, 33),
        st.integers(0, 25),
        st.integers(0, 61),
        st.integers(0, 61),
        st.binary(min_size=3, max_size=3),
    )

    @_fuzz_settings(WRITES)
    @given(st.one_of(st.binary(max_size=30), valid))
    def one(data):
        _count("time")
        before = len(b.times)
        sent = b.write(b.server._h_time, data)
        assert [s for s in sent if s[0] != "disconnect"] == []
        try:
            expected = protocol.parse_current_time(data[:20])
        except protocol.ProtocolError:
            expected = None
        assert b.times[before:] == ([] if expected is None else [expected])

    one()
    assert _counts["time"] >= WRITES
    assert b.records() == b.digest


def test_an_unauthenticated_link_gets_only_refusals(tmp_path_factory):
    b = bench(tmp_path_factory)
    b.secure(False)
    lists, times = len(b.lists), len(b.times)

    @_fuzz_settings(1000)
    @given(st.sampled_from(["control", "patients", "time"]), _requests())
    def one(which, data):
        handle = {
            "control": b.server._h_control,
            "patients": b.server._h_patients,
            "time": b.server._h_time,
        }[which]
        sent = b.write(handle, data)
        assert not [s for s in sent if s[0] == "notify"]
        for s in sent:
            if s[0] == "indicate":
                assert protocol.parse_response(s[2])[2] == protocol.RSP_NOT_AUTHENTICATED

    try:
        one()
    finally:
        b.secure(True)
    assert (len(b.lists), len(b.times)) == (lists, times)
    assert b.records() == b.digest


def test_the_unit_still_serves_after_the_fuzz(tmp_path_factory):
    b = bench(tmp_path_factory)
    sent = b.write(b.server._h_control, protocol.request("count", "all"))
    assert protocol.parse_response(sent[-1][2]) == ("number", 31)
    sent = b.write(b.server._h_control, protocol.request("report", "all"))
    rx = protocol.Reassembler(record.check)
    got = [r for s in sent if s[0] == "notify" for r in rx.feed(s[2])]
    assert got == b.digest


def test_a_sample_over_the_air_on_both_runtimes(runtime, tmp_path):
    """200 random writes per characteristic through Bumble's ATT (and the bridge)."""
    rng = random.Random(10)
    samples = []
    for _ in range(200):
        for uuid in (
            protocol.CONTROL_POINT_UUID,
            protocol.PATIENTS_UUID,
            uuid16(protocol.CURRENT_TIME_UUID16),
        ):
            n = rng.choice((0, 1, 2, 3, 7, 11, 19, 20, 21, 40, 100, 244))
            data = bytes(rng.getrandbits(8) for _ in range(n))
            if uuid == protocol.CONTROL_POINT_UUID and data[:1] == b"\x02":
                data = b"\x07" + data[1:]  # no delete among them: the store stays as it is
            samples.append((uuid, data))

    async def body(rig, device, laptop):
        await device.command("add 20")
        await laptop.pair()
        before = await device.digest()
        link = await laptop.link()
        answers = []
        with laptop.bleak():
            client = link.client
            await client.start_notify(
                protocol.CONTROL_POINT_UUID, lambda _c, d: answers.append(bytes(d))
            )
            written = 0
            for uuid, data in samples:
                if uuid == protocol.CONTROL_POINT_UUID and data[:1] == b"\x01":
                    continue  # a report would stream; counted and checked above in process
                await client.write_gatt_char(uuid, data, response=True)
                if uuid == protocol.CONTROL_POINT_UUID:
                    written += 1  # a RACP client waits for the answer before the next
                    for _ in range(400):
                        if len(answers) == written:
                            break
                        await asyncio.sleep(0.005)
            await link.close()
        for answer in answers:
            kind = protocol.parse_response(answer)
            assert kind[0] == "number" or kind[2] in protocol.RESPONSE_NAMES
        assert len(answers) == written > 150
        assert await device.digest() == before
        assert (await device.state())["acked"] == 0
        assert (await laptop.pull()).received == 21  # still serving

    run(runtime, tmp_path, body)
