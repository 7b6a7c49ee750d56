# The firmware's version: what the unit reports (the Device Information service's firmware
# revision) and what `python -m host_sync deploy` reads back from a unit after a copy. Raise
# it with every release that goes to a clinic. The dosage rules have their own version,
# core.dosage.RULESET, stored with every recommendation.
FIRMWARE_VERSION = "0.1.0"
# What the unit says it is, over Bluetooth (Device Information) and over USB (firmware/usb.py).
MANUFACTURER = "AlgoDose project"
MODEL = "AlgoDose AD-1"
