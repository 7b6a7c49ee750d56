# Reference board: ESP32-S3 (DESIGN 1). The only module that builds hardware objects: the pin
# map, the drivers with real pins, the display, the flash partition of the record store,
# the watchdog and the radio. app.App takes this module as its board; the simulator has a
# board of its own with the same names (simulator/fakes/unit.py). Wiring, partitions and
# the Pico W variant: docs/hardware.md.
import asyncio
import time

import machine
from micropython import const

from core import qst
from drivers.buttons import Buttons, StopButton
from drivers.buzzer import Buzzer
from drivers.hx711 import HX711

HX711_DOUT = const(4)  # HX711 DOUT (data-ready / data), input with pull-up
HX711_PD_SCK = const(5)  # HX711 PD_SCK (clock / power down), output
STOP_BUTTON = const(6)  # patient's hand-held stop button to GND, input with pull-up
BUTTON_UP = const(15)
BUTTON_DOWN = const(16)
BUTTON_SELECT = const(17)  # held at power-up: safe boot (main.py)
I2C_SDA = const(8)  # SSD1306 128x64 OLED
I2C_SCL = const(9)
BUZZER = const(10)
_POLL_MS = const(2)  # the sampling task polls the HX711 this often (a conversion: 12.5 ms)
_WATCHDOG_MS = const(8000)
_STORE_PARTITION = "store"  # a LittleFS data partition of its own (docs/hardware.md)
STORE_ROOT = "/store"

clock = time  # ticks_ms, ticks_diff: the app's time
_fence = None


try:
    QST_REFERENCE = qst.find_reference()
except OSError:
    QST_REFERENCE = "data/qst_reference.json"  # missing: the app's start says so


# asyncio.sleep_ms is MicroPython's (the stubs follow CPython's asyncio): it reuses one sleep
# object, so a wait allocates nothing, where sleep(seconds) would box a float.
def sleep_ms(ms):
    return asyncio.sleep_ms(ms)  # pyright: ignore[reportAttributeAccessIssue]


def sample_wait():
    return asyncio.sleep_ms(_POLL_MS)  # pyright: ignore[reportAttributeAccessIssue]


def mount_storage():
    """Mounts the store's filesystem at STORE_ROOT, or mounts it again after a storage
    error (drivers.flashfs: a fresh VfsLfs2 behind the fence). Never formats; raises
    OSError when there is no such partition or it does not mount."""
    global _fence
    import esp32

    from drivers import flashfs

    if _fence is None:
        found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=_STORE_PARTITION)
        if not found:
            raise OSError(19)  # ENODEV: the partition table has no store partition
        _fence = flashfs.Fence(found[0])
    flashfs.mount(_fence, STORE_ROOT)


def hx711():
    # The pull-up makes an unplugged chip read "not ready" (a timeout fault), never data.
    dout = machine.Pin(HX711_DOUT, machine.Pin.IN, machine.Pin.PULL_UP)
    pd_sck = machine.Pin(HX711_PD_SCK, machine.Pin.OUT, value=0)
    return HX711(
        dout,
        pd_sck,
        time,
        disable_irq=machine.disable_irq,
        enable_irq=machine.enable_irq,
    )


def _input(number):
    return machine.Pin(number, machine.Pin.IN, machine.Pin.PULL_UP)


def stop_button():
    stop = StopButton(time)
    _input(STOP_BUTTON).irq(handler=stop.irq, trigger=machine.Pin.IRQ_FALLING)
    return stop


def buttons():
    pins = [_input(n) for n in (BUTTON_UP, BUTTON_DOWN, BUTTON_SELECT)]
    found = Buttons(pins, time)
    both = machine.Pin.IRQ_FALLING | machine.Pin.IRQ_RISING
    for i in range(len(pins)):
        pins[i].irq(handler=found.handlers[i], trigger=both)
    return found


def display():
    # micropython-lib's driver, installed with mip (package.json)
    from ssd1306 import SSD1306_I2C  # pyright: ignore[reportMissingImports]

    i2c = machine.I2C(0, sda=machine.Pin(I2C_SDA), scl=machine.Pin(I2C_SCL), freq=400000)
    return SSD1306_I2C(128, 64, i2c)


def buzzer():
    return Buzzer(machine.PWM(machine.Pin(BUZZER), freq=2000, duty_u16=0))


def watchdog():
    return machine.WDT(timeout=_WATCHDOG_MS)


def ble():
    import bluetooth

    return bluetooth.BLE()


def ble_uuid():
    """bluetooth.UUID, for the GATT server (only this module imports bluetooth)."""
    import bluetooth

    return bluetooth.UUID


def device_id():
    """The serial the laptop keys this unit's records on: the chip's unique id, in hex."""
    import binascii

    return binascii.hexlify(machine.unique_id()).decode().upper()


def reset_cause():
    return machine.reset_cause()  # PWRON_RESET 1, HARD_RESET 2, WDT_RESET 3, SOFT_RESET 5


# main.py's count of crashes in a row, in the RTC memory: a soft reset keeps it, a power
# cycle clears it. Marked and checked, so whatever else is there reads as no crash.
_CRASH_MARK = b"AD"


def crash_count():
    kept = machine.RTC().memory()
    if len(kept) == 4 and kept[:2] == _CRASH_MARK and kept[2] ^ kept[3] == 0xFF:
        return kept[2]
    return 0


def set_crash_count(count):
    count = min(count, 0xFF)
    machine.RTC().memory(_CRASH_MARK + bytes((count, count ^ 0xFF)))


def restart():
    machine.soft_reset()  # main.py runs again; the flash keeps everything stored


def safe_boot():
    return _input(BUTTON_SELECT).value() == 0
