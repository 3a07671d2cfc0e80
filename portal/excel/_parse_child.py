"""Parse the first sheet of the workbook on stdin; runs as its own process.

Started by portal.excel.safe_read with ``python -I this_file <memory bytes> <seconds>``.
It caps its own address space and CPU time before it touches the file, so a workbook
that makes the Rust parser allocate without bound (python-calamine aborts the process on
a failed allocation; no try/except can catch that) ends this process, not the caller.
Imports nothing from the portal: it starts fast and small.
"""
import io
import pickle
import resource
import sys


def _cap(limit, value):
    soft, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(limit, (value, hard))


def main() -> int:
    memory, seconds = int(sys.argv[1]), int(sys.argv[2])
    _cap(resource.RLIMIT_AS, memory)
    _cap(resource.RLIMIT_CPU, seconds)
    data = sys.stdin.buffer.read()
    from python_calamine import CalamineWorkbook
    try:
        rows = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0).to_python()
        result = ("ok", rows)
    except MemoryError:
        return 3
    except Exception as exc:  # calamine raises several types for broken input
        result = ("error", f"{type(exc).__name__}: {exc}"[:500])
    pickle.dump(result, sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
