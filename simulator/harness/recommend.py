# One case (JSON) in, one recommendation (canonical JSON) out. The same file runs on
# CPython (imported by `python -m simulator recommend`) and as a script on `micropython`,
# so the two runtimes share every line from reading the bytes to printing.
# Any input gives exit 0 and the JSON, or exit 2 and one line saying what is wrong: the
# bytes are capped, checked as UTF-8 and as strict JSON before json.loads sees them
# (MicroPython's json is lenient; see strictjson), then checked as a case (core.case).
# --batch: one case per input line, one "<exit code> <line>" per output line.
import json
import sys

from core import canonjson, case, dosage

try:
    import strictjson  # micropython: the harness directory is on the module path
except ImportError:
    from simulator.harness import strictjson

MAX_BYTES = 4096  # a full case is under 1 KB; more is not a case
_OUT_OF_MEMORY = "error: out of memory reading the case; give a smaller case"


def evaluate(data, config=None):
    """(0, the recommendation) or (2, one error line) for the bytes of one case."""
    try:
        if len(data) > MAX_BYTES:
            return 2, "error: input is over %d bytes; give one case as a JSON object" % MAX_BYTES
        strictjson.check(data)  # then both runtimes' json read the bytes alike
        return 0, dosage.recommend(case.parse_case(json.loads(data)), config)
    except case.CaseError as err:
        return 2, "error: " + str(err)
    except strictjson.JsonTextError as err:
        return 2, "error: input " + str(err)
    except MemoryError:
        return 2, _OUT_OF_MEMORY


def recommend_text(text, config=None):
    """(exit code, line): 0 and the canonical JSON, or 2 and one error line."""
    code, out = evaluate(text.encode(), config)
    return code, canonjson.dumps(out) if code == 0 else out


def read_capped(stream, limit):
    """At most limit + 1 bytes of a binary or text stream: enough to tell "too long"."""
    chunks = []
    total = 0
    while total <= limit:
        chunk = stream.read(limit + 1 - total)
        if not chunk:
            break
        if type(chunk) is str:
            chunk = chunk.encode()
        chunks.append(chunk)
        total += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def main(argv, stdin, stdout, stderr):
    # The JSON is streamed out piece by piece: the whole text at once would need more heap
    # than the recommendation itself (micropython, 64 KB heap).
    if "--batch" in argv:
        for line in stdin:
            if line.strip():
                code, out = evaluate(line.encode())
                stdout.write("%d " % code)
                _emit(code, out, stdout)
        return 0
    try:
        code, out = evaluate(read_capped(getattr(stdin, "buffer", stdin), MAX_BYTES))
    except MemoryError:
        code, out = 2, _OUT_OF_MEMORY
    _emit(code, out, stdout if code == 0 else stderr)
    return code


def _emit(code, out, stream):
    if code == 0:
        canonjson.dump(out, stream.write)
    else:
        stream.write(out)
    stream.write("\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], sys.stdin, sys.stdout, sys.stderr))
