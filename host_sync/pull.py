"""pull: bring a unit's new records into the database, then acknowledge them (docs/protocol.md,
"The host's pull").

1. count the device's records from the host's own highest seq + 1 (for the progress bar);
2. report them: whole records arrive CRC-checked (protocol.Reassembler, core.record.check);
3. commit them in ONE transaction (db.ingest, idempotent on device id + seq);
4. only then "delete <= the highest seq the database holds for the device".

A dropped link keeps the records that arrived whole before it (committed, never
acknowledged on the device); the next pull asks from after them. Nothing is acknowledged on
the device that is not committed here.
"""

from core import protocol
from host_sync.transport import DeviceRefused, LinkLost


class PullResult:
    def __init__(self, device_id):
        self.device_id = device_id
        self.offered = 0  # records the device said it had from our highest seq + 1
        self.received = 0
        self.new = 0
        self.duplicates = 0
        self.undecodable = 0
        self.acked_through = 0  # 0: nothing acknowledged in this pull
        self.warnings = []


async def pull(transport, db, progress=None):
    """Runs one pull over `transport` into `db`; progress(done, total) as records arrive.
    Returns a PullResult. Raises SyncError subclasses (LinkLost, NotPaired, ...) after
    committing whatever arrived whole."""
    info = await transport.device_info()
    device_id = info["device_id"]
    db.device_seen(info, transport.address)
    result = PullResult(device_id)
    start = db.highest_seq(device_id) + 1
    result.offered = await transport.count(start)
    received = []

    def on_records(raws):
        received.extend(raws)
        if progress is not None:
            progress(len(received), result.offered)

    try:
        if result.offered:
            code = await transport.report(start, on_records)
            if code == protocol.RSP_RECORDS_GONE:
                # Another laptop acknowledged records this database never had, and the
                # device has since reused their space: they are on that laptop only.
                result.warnings.append(
                    "records from %d on were acknowledged by another computer and are no"
                    " longer on the device; fetching from its oldest record" % start
                )
                await transport.report_all(on_records)
    except LinkLost:
        _commit(db, device_id, received, result)
        raise
    _commit(db, device_id, received, result)
    highest = db.highest_seq(device_id)
    if highest:
        try:
            await transport.delete_through(highest)
            result.acked_through = highest
        except DeviceRefused as error:
            if error.code != protocol.RSP_INVALID_OPERAND:
                raise
            result.warnings.append(
                "the device holds fewer records than this database has for it (was it"
                " erased?): nothing acknowledged"
            )
    db.mark_synced(device_id)
    return result


def _commit(db, device_id, received, result):
    if not received:
        return
    new, duplicates, undecodable = db.ingest(device_id, received)
    result.received += len(received)
    result.new += new
    result.duplicates += duplicates
    result.undecodable += undecodable
    received.clear()
