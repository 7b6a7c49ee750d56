# One case (JSON) in, one recommendation (canonical JSON) out. The same file runs on
# CPython (imported by `python -m simulator recommend`) and as a script on `micropython`,
# so the two runtimes share every line from parsing to printing.
# --batch: one case per input line, one "<exit code> <line>" per output line.
import json
import sys

from core import canonjson, case, dosage

_BAD_JSON = "error: input is not valid JSON; give one case as a JSON object"


def recommend_text(text):
    """Returns (exit code, line): 0 and the JSON, or 2 and one error line."""
    try:
        return 0, canonjson.dumps(dosage.recommend(case.parse_case(json.loads(text))))
    except case.CaseError as err:
        return 2, "error: " + str(err)
    except ValueError:
        return 2, _BAD_JSON
    except RuntimeError:  # CPython's RecursionError; MicroPython's recursion limit
        return 2, "error: input is nested too deeply; give one flat case object"


def main(argv, stdin, stdout, stderr):
    if "--batch" in argv:
        for line in stdin:
            if line.strip():
                code, out = recommend_text(line)
                stdout.write("%d %s\n" % (code, out))
        return 0
    code, out = recommend_text(stdin.read())
    (stdout if code == 0 else stderr).write(out + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], sys.stdin, sys.stdout, sys.stderr))
