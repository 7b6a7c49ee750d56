"""The firmware's install lists stay whole: package.json (mip, files) and manifest.py
(freezing) name every firmware file, and micropython-lib's ssd1306 driver."""

import json

from simulator import FIRMWARE_DIR, REPO_DIR

FILES = sorted(
    str(p.relative_to(FIRMWARE_DIR))
    for p in (*FIRMWARE_DIR.rglob("*.py"), *FIRMWARE_DIR.rglob("*.json"))
    if "__pycache__" not in p.parts
)


def test_package_json_installs_every_firmware_file_and_the_display_driver():
    package = json.loads((REPO_DIR / "package.json").read_text())
    assert sorted(dest for dest, _url in package["urls"]) == FILES
    assert all(url == "firmware/" + dest for dest, url in package["urls"])  # relative: forks work
    assert package["deps"] == [["ssd1306", "latest"]]


def test_manifest_freezes_every_module_but_main_and_requires_ssd1306():
    frozen = []
    required = []

    def module(name, base_path="."):
        frozen.append(name)

    def package(name, base_path="."):
        base = REPO_DIR / base_path
        frozen.extend(str(p.relative_to(base)) for p in (base / name).rglob("*.py"))

    def require(name):
        required.append(name)

    def include(_path):
        pass

    code = (REPO_DIR / "manifest.py").read_text()
    exec(code, {"module": module, "package": package, "require": require, "include": include})
    modules = [f for f in FILES if f.endswith(".py")]
    assert sorted(frozen) == sorted(set(modules) - {"main.py"})
    assert required == ["ssd1306"]
