"""What a python has: its version, machine, numpy, CPU features and which runtime modules it can find.

Standard library only, Python 3.8+: `targets/plan.py` sends this file's text (with a call of `probe` for
every registered runtime appended, see `runtimes.probe_script`) to a device as `python -c`; the runner calls
`probe` on its own python. Runtimes are found, not imported: importing onnxruntime under emulation takes seconds.
"""
import importlib.util
import platform


def _dist_version(name):
    try:
        from importlib.metadata import version
    except ImportError:  # Python 3.7
        return "unknown"
    try:
        return version(name)
    except Exception:
        return "unknown"


def _cpu_features():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":")[0].strip() == "Features":
                    return line.split(":", 1)[1].split()
    except OSError:
        pass
    return None


def probe(modules):
    """{"python", "machine", "numpy", "numpy_error", "cpu_features", "modules": {module: version or None}}.

    `modules`: (import name, pip distribution) pairs; a module found without its distribution's metadata
    reports "unknown".
    """
    out = {"python": platform.python_version(), "machine": platform.machine(), "numpy": None, "numpy_error": None}
    try:
        import numpy
        out["numpy"] = numpy.__version__
    except Exception as exc:
        out["numpy_error"] = "%s: %s" % (type(exc).__name__, exc)
    out["cpu_features"] = _cpu_features()
    out["modules"] = {m: (_dist_version(d) if importlib.util.find_spec(m) else None) for m, d in modules}
    return out
