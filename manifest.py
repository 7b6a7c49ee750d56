# Freezes the AlgoDose firmware into a MicroPython build for the ESP32-S3 (docs/hardware.md,
# "A firmware with AlgoDose frozen in"): from the port's directory,
#   make BOARD=ESP32_GENERIC_S3 FROZEN_MANIFEST=/path/to/algodose/manifest.py
# main.py stays a file on the board's filesystem (boot runs the file), and so does the QST
# reference table (data/qst_reference.json: frozen modules cannot hold data files).
# include, require, module and package are the build's manifest functions, not Python's:
# ruff: noqa: F821
include("$(PORT_DIR)/boards/manifest.py")
require("ssd1306")
module("app.py", base_path="firmware")
module("board.py", base_path="firmware")
package("core", base_path="firmware")
package("drivers", base_path="firmware")
