# Reference board: ESP32-S3 (DESIGN 1). The only module that imports machine: it holds the
# pin map and builds drivers with real pins; everything else gets them passed in.
# Wiring and the Pico W variant: docs/hardware.md.
import time

import machine
from micropython import const

from drivers.hx711 import HX711

HX711_DOUT = const(4)  # HX711 DOUT (data-ready / data), input with pull-up
HX711_PD_SCK = const(5)  # HX711 PD_SCK (clock / power down), output
STOP_BUTTON = const(6)  # patient's hand-held stop button to GND, input with pull-up
BUTTON_UP = const(15)
BUTTON_DOWN = const(16)
BUTTON_SELECT = const(17)
I2C_SDA = const(8)  # SSD1306 128x64 OLED
I2C_SCL = const(9)
BUZZER = const(10)

QST_REFERENCE = "data/qst_reference.json"  # relative to the firmware root on the board


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


def stop_button():
    return machine.Pin(STOP_BUTTON, machine.Pin.IN, machine.Pin.PULL_UP)
