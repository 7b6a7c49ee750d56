# Runs one both-runtime test case and prints what it returned as canonical JSON, on CPython
# (in process: the both_runtimes fixture in tests/conftest.py calls output()) and on
# micropython (as mpy-cross bytecode: micropython -m runcase MODULE CASE [ARG...]).
# A case is a plain function in a module here that builds its scenario, runs the firmware and
# returns plain data (dicts, lists, ints, str, None, bools); string arguments only.
import sys

from core import canonjson


def output(module_name, case_name, args=()):
    case = getattr(__import__(module_name), case_name)
    return canonjson.dumps(case(*args))


if __name__ == "__main__":
    print(output(sys.argv[1], sys.argv[2], sys.argv[3:]))
