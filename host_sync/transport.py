"""What a pull needs from a link to a device, whatever carries it (BLE today, USB serial in a
later issue), and the errors a user can cause, each one line with its exit code."""

EXIT_OK = 0
EXIT_INCOMPLETE = 1  # the link dropped or the device refused: what arrived is kept
EXIT_USAGE = 2  # bad arguments or a refused input file
EXIT_NO_ADAPTER = 3
EXIT_NO_DEVICE = 4
EXIT_NOT_PAIRED = 5  # pairing refused, wrong passkey, or this laptop is not paired
EXIT_DATABASE = 6


class SyncError(Exception):
    """A problem a user can cause or fix: `str()` is one line that says what to do."""

    exit_code = EXIT_INCOMPLETE


class LinkLost(SyncError):
    pass


class DeviceRefused(SyncError):
    """The device answered a request with an error code."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


class NoAdapter(SyncError):
    exit_code = EXIT_NO_ADAPTER


class NoDevice(SyncError):
    exit_code = EXIT_NO_DEVICE


class NotPaired(SyncError):
    exit_code = EXIT_NOT_PAIRED


class Transport:
    """A link to one device that can count, report from a seq and acknowledge.

    device_info() -> dict: device_id (the key of its records), manufacturer, model,
        firmware, ruleset.
    count(from_seq) -> number of stored records with seq >= from_seq.
    report(from_seq, on_records) -> RACP response code: streams the stored records with
        seq >= from_seq; on_records(list of raw records) is called as whole, CRC-checked
        records arrive, in seq order. Raises LinkLost (what was passed on is still good).
    report_all(on_records): the same from the device's oldest record.
    delete_through(seq): the host has durably stored every record <= seq ("delete <= N").
    close().
    """

    address = None

    async def device_info(self):
        raise NotImplementedError

    async def count(self, from_seq):
        raise NotImplementedError

    async def report(self, from_seq, on_records):
        raise NotImplementedError

    async def report_all(self, on_records):
        raise NotImplementedError

    async def delete_through(self, seq):
        raise NotImplementedError

    async def close(self):
        pass
