"""Code a config names: ``target = "module:Name"`` or ``"path/file.py:Name"``, the
``register_model`` / ``register_dataset`` registries and the ``trainlab.models`` /
``trainlab.datasets`` entry-point groups.

A target is found in two steps, and the first imports nothing:

1. :func:`locate` finds the source file: ``"file.py:Name"`` relative to the config's folder
   (``config_dir``), ``"pkg.mod:Name"`` in the config's folder first, then on ``sys.path``.
   The file's SHA-256 (:func:`file_sha256`) goes into the run's config (``sources``), so the
   config hash changes when the code does and ``compare`` never pools runs of an edited model.
2. :func:`load` imports the module and returns the named object.

A config read back from a store (``--resume``, a comparison resuming a run, a study's
workers) may have been written by someone else; :func:`check_stored` lets such a config
import a target only when it resolves to the same file with the same hash as recorded when
the run was made, from an allowed place: the config's folder, the module of an installed
``trainlab.*`` entry point, or a module the user allowed with ``--allow-target MODULE`` /
``$TRAINLAB_ALLOW_TARGETS`` — never the standard library. Anything else is one
:class:`~trainlab.errors.ConfigError` naming the target and how to allow it, raised before
anything is imported.

Example::

    @trainlab.register_model("tiny")
    def tiny(num_classes: int, width: int = 16):
        return nn.Sequential(nn.LazyLinear(width), nn.ReLU(), nn.Linear(width, num_classes))

    # [model] name = "tiny"  args = { width = 32 }
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import sysconfig
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError, did_you_mean

ALLOW_ENV = "TRAINLAB_ALLOW_TARGETS"  # comma-separated module names the user allows
GROUPS = {"model": "trainlab.models", "data": "trainlab.datasets"}  # entry-point groups

_REGISTRY: dict[str, dict[str, Callable[..., Any]]] = {"model": {}, "data": {}}


# ----------------------------------------------------------------------------------------
# registries


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make ``model.name = name`` build ``fn(**model.args)`` (a class or function
    returning an ``nn.Module``; it also gets ``input_shape`` / ``num_classes`` if it takes them)."""
    return _register("model", name)


def register_dataset(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make ``data.name = name`` call ``fn(**data.args)``, which returns
    ``(train, val, test)`` or ``{"train": ..., "val": ..., "test": ...}`` in any form
    :func:`trainlab.fit` takes."""
    return _register("data", name)


def _register(kind: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    if not isinstance(name, str) or not name.strip() or ":" in name:
        raise ConfigError(
            f"register_{'model' if kind == 'model' else 'dataset'}: name must be a non-empty string without ':', got {name!r}"
        )

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(fn):
            raise ConfigError(f"register_{kind}({name!r}) decorates {type(fn).__name__}, which is not callable")
        _REGISTRY[kind][name] = fn
        return fn

    return decorator


def registered(kind: str) -> dict[str, Callable[..., Any]]:
    """Names registered in this process with the decorators."""
    return dict(_REGISTRY[kind])


def entry_points(kind: str) -> dict[str, str]:
    """``{name: "module:attr"}`` of installed packages' entry points (nothing is imported)."""
    from importlib.metadata import entry_points as eps

    try:
        return {ep.name: ep.value for ep in eps(group=GROUPS[kind])}
    except Exception:  # a broken installed distribution must not break trainlab
        return {}


def names(kind: str) -> list[str]:
    """Registered and entry-point names (besides trainlab's built-in ones)."""
    return sorted({*_REGISTRY[kind], *entry_points(kind)})


def lookup(kind: str, name: str) -> str | Callable[..., Any] | None:
    """A registered callable, an entry point's ``"module:attr"``, or None."""
    if name in _REGISTRY[kind]:
        return _REGISTRY[kind][name]
    return entry_points(kind).get(name)


# ----------------------------------------------------------------------------------------
# locating a target without importing it


@dataclass(frozen=True)
class Located:
    """Where a target's code is: its module name (or None for a file path), attribute and file."""

    target: str
    module: str | None
    attr: str
    file: Path | None  # None: a built-in module (no source file)
    in_config_dir: bool


def split(target: str, key: str = "model.target") -> tuple[str, str]:
    """``"module:Name"`` -> ``("module", "Name")``; a malformed target is a ConfigError."""
    if not isinstance(target, str) or target.count(":") < 1:
        raise ConfigError(f'{key} = {target!r}: write it as "module:Name" or "path/file.py:Name"')
    where, _, attr = target.rpartition(":")
    if not where.strip() or not attr.strip() or not all(part.isidentifier() for part in attr.split(".")):
        raise ConfigError(f'{key} = {target!r}: write it as "module:Name" or "path/file.py:Name"')
    return where.strip(), attr.strip()


def _is_path(where: str) -> bool:
    return where.endswith(".py") or "/" in where or os.sep in where


def locate(target: str, config_dir: str | Path | None = None, key: str = "model.target") -> Located:
    """Find the source file of ``target`` without importing anything: a ``.py`` path relative
    to ``config_dir`` (else the current folder), or a module in ``config_dir``, then on ``sys.path``."""
    where, attr = split(target, key)
    base = Path(config_dir) if config_dir else Path.cwd()
    if _is_path(where):
        path = (base / Path(where).expanduser()).resolve()
        if not path.is_file():
            raise ConfigError(f"{key} = '{target}': file not found: {path}")
        return Located(target, None, attr, path, config_dir is not None and _under(path, base))
    parts = where.split(".")
    if not all(p.isidentifier() for p in parts):
        raise ConfigError(f"{key} = '{target}': '{where}' is not a module name or a .py path")
    if parts[0] in sys.builtin_module_names:
        return Located(target, where, attr, None, False)
    search = ([str(base.resolve())] if config_dir else []) + [p or os.getcwd() for p in sys.path]
    for folder in search:
        file = _module_file(Path(folder), parts)
        if file is not None:
            in_dir = config_dir is not None and folder == search[0] and _under(file, base.resolve())
            return Located(target, where, attr, file.resolve(), in_dir)
    if where in sys.modules:  # imported already (an import hook, a package's __path__ trick)
        file_name = getattr(sys.modules[where], "__file__", None)
        return Located(target, where, attr, Path(file_name).resolve() if file_name else None, False)
    if len(parts) == 1:
        spec = importlib.util.find_spec(where)  # a top-level name: finds it, imports nothing
        if spec is not None:
            origin = spec.origin if spec.has_location and spec.origin else None
            return Located(target, where, attr, Path(origin).resolve() if origin else None, False)
    looked = f"{base.resolve()} and sys.path" if config_dir else "sys.path (and the current folder)"
    raise ConfigError(
        f"{key} = '{target}': cannot import module '{where}': no {where.replace('.', '/')}.py in {looked}"
    )


def _module_file(folder: Path, parts: list[str]) -> Path | None:
    if not folder.is_dir():
        return None
    *packages, last = parts
    here = folder.joinpath(*packages)
    if packages and not here.is_dir():
        return None
    for candidate in (here / f"{last}.py", here / last / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def source_record(target: str, config_dir: str | Path | None, key: str) -> dict[str, Any]:
    """What a run records about a target's code: the target, its file and the file's SHA-256."""
    loc = locate(target, config_dir, key)
    record: dict[str, Any] = {"target": target, "file": str(loc.file) if loc.file else None}
    record["sha256"] = file_sha256(loc.file) if loc.file else None
    return record


def object_record(obj: Any) -> dict[str, Any]:
    """The same record for a Python object (``trainlab.fit``'s model class, a registered
    callable): ``module:qualname``, its source file and hash where it has one."""
    target = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"
    try:
        file = inspect.getsourcefile(obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj))
    except (TypeError, OSError):
        file = None
    return {"target": target, "file": file, "sha256": file_sha256(file) if file and os.path.isfile(file) else None}


# ----------------------------------------------------------------------------------------
# importing


@contextmanager
def _path_first(folder: Path | None) -> Iterator[None]:
    if folder is None:
        yield
        return
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with suppress(ValueError):
            sys.path.remove(str(folder))


def load(target: str, config_dir: str | Path | None = None, key: str = "model.target") -> Any:
    """Import ``target`` and return the named object (a class or function, checked callable)."""
    loc = locate(target, config_dir, key)
    try:
        if loc.module is None:
            assert loc.file is not None  # a path target is located as a file
            module = _load_file(loc.file)
        else:
            folder = Path(config_dir).resolve() if config_dir and loc.in_config_dir else None
            with _path_first(folder):
                module = importlib.import_module(loc.module)
                if loc.file is not None and module.__file__ is not None and Path(module.__file__).resolve() != loc.file:
                    # a module of the same name was imported from elsewhere: load the one the config means
                    module = _load_file(loc.file, loc.module)
    except ConfigError:
        raise
    except BaseException as err:  # the user's module failed as it ran: one line, traceback under --debug
        if isinstance(err, KeyboardInterrupt):
            raise
        raise ConfigError(
            f"{key} = '{target}': importing {loc.module or loc.file} raised {type(err).__name__}: {err}"
        ) from err
    obj: Any = module
    for part in loc.attr.split("."):
        if not hasattr(obj, part):
            public = [n for n in dir(module) if not n.startswith("_")]
            raise ConfigError(
                f"{key} = '{target}': {loc.module or getattr(loc.file, 'name', target)} has no '{loc.attr}'{did_you_mean(loc.attr, public)}"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"{key} = '{target}' is {type(obj).__name__} {obj!r:.40}, not a class or function")
    return obj


def _load_file(file: Path, name: str | None = None) -> Any:
    name = name or file.stem
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {file} as a Python module")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        with _path_first(file.parent):
            spec.loader.exec_module(module)
    except BaseException:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
        raise
    return module


def call(fn: Callable[..., Any], args: Mapping[str, Any], extra: Mapping[str, Any], *, key: str, target: str) -> Any:
    """``fn(**args)``, plus each of ``extra`` (``input_shape``, ``num_classes``) that ``fn``
    takes by name and ``args`` does not give. An exception is one line naming the target."""
    kwargs = dict(args)
    params: Mapping[str, Any]
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    for name, value in extra.items():
        if name in params and name not in kwargs:
            kwargs[name] = value
    try:
        return fn(**kwargs)
    except ConfigError:
        raise
    except Exception as err:
        shown = f" with args {dict(args)}" if args else ""
        raise ConfigError(
            f"{key} = '{target}'{shown} raised {type(err).__name__}: {err} (trainlab --debug shows the traceback)"
        ) from err


# ----------------------------------------------------------------------------------------
# trust: configs read back from a store


TARGET_KEYS = ("model", "data", "loss")  # sections that may name a target


def config_targets(config: Mapping[str, Any]) -> dict[str, str]:
    """``{section: target}`` of the targets a config dict names."""
    out = {}
    for section in TARGET_KEYS:
        table = config.get(section)
        if isinstance(table, Mapping) and table.get("target"):
            out[section] = table["target"]
    return out


def allowed_modules(extra: Sequence[str] = ()) -> set[str]:
    """Modules a stored config may import from anywhere: installed ``trainlab.*`` entry points'
    modules, ``$TRAINLAB_ALLOW_TARGETS`` (comma-separated) and ``extra``."""
    allowed = {m.strip() for m in os.environ.get(ALLOW_ENV, "").split(",") if m.strip()}
    allowed.update(m.strip() for m in extra if m.strip())
    for kind in GROUPS:
        for value in entry_points(kind).values():
            allowed.add(value.partition(":")[0].strip())
    return allowed


def trusted_code(config: Mapping[str, Any]) -> list[str]:
    """The modules and files the targets of a config the user gave (a file, not a store) name:
    passed as ``allow`` when that user's comparison or study reads its runs back."""
    out = []
    sources = config.get("sources")
    sources = sources if isinstance(sources, Mapping) else {}
    for section, target in config_targets(config).items():
        where, _ = split(target, f"{section}.target")
        out.append(where if not _is_path(where) else str((sources.get(section) or {}).get("file") or where))
    return out


def _system_folders() -> list[Path]:
    """The standard library and every site-packages folder."""
    paths = sysconfig.get_paths()
    folders = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    import site

    folders.update(getattr(site, "getsitepackages", list)())
    folders.add(getattr(site, "getusersitepackages", lambda: None)())
    return [Path(f).resolve() for f in folders if f]


def _stdlib_folders() -> list[Path]:
    paths = sysconfig.get_paths()
    return [Path(paths[k]).resolve() for k in ("stdlib", "platstdlib") if paths.get(k)]


def _covered(module: str | None, allowed: set[str]) -> bool:
    return module is not None and any(module == a or module.startswith(a + ".") for a in allowed)


def check_stored(config: Mapping[str, Any], *, what: str, allow: Sequence[str] = ()) -> None:
    """Refuse (ConfigError, nothing imported) a stored config's target unless it resolves to
    the file and hash recorded at creation, from an allowed place (see the module docstring).
    ``what`` names the config's origin in the message (``"run 3f2a…"``)."""
    targets = config_targets(config)
    if not targets:
        return
    sources = config.get("sources") if isinstance(config.get("sources"), Mapping) else {}
    config_dir = config.get("config_dir")
    allowed = allowed_modules(allow)
    for section, target in targets.items():
        key = f"{section}.target"
        how = f"if you trust it, allow it with --allow-target MODULE or {ALLOW_ENV}=MODULE"
        head = f"{key} = '{target}' in the stored config of {what} is not trusted"
        recorded = sources.get(section) if isinstance(sources, Mapping) else None
        try:
            loc = locate(target, config_dir, key)
        except ConfigError as err:
            raise ConfigError(f"{head}: {err}") from None
        if (
            loc.file is None
            or any(_under(loc.file, f) for f in _stdlib_folders())
            or (loc.module or "").split(".")[0] in sys.stdlib_module_names
        ):
            raise ConfigError(
                f"{head}: it names the Python standard library or a built-in module, which a stored config may never run"
            )
        if not isinstance(recorded, Mapping) or recorded.get("target") != target or not recorded.get("sha256"):
            raise ConfigError(
                f"{head}: the config records no source hash for it (a config written outside trainlab?); rerun it from its config file, or {how}"
            )
        if str(loc.file) != str(recorded.get("file")):
            raise ConfigError(
                f"{head}: it resolves to {loc.file}, not to {recorded.get('file')} recorded when the run was made"
            )
        if file_sha256(loc.file) != recorded["sha256"]:
            raise ConfigError(
                f"{head}: {loc.file} changed since the run was made (its SHA-256 differs); rerun from the config file to start a new run"
            )
        in_system = any(_under(loc.file, f) for f in _system_folders())
        if _covered(loc.module, allowed) or str(loc.file) in allowed:
            continue
        if loc.in_config_dir and not in_system:
            continue
        raise ConfigError(f"{head}: {loc.file} is not in the config's folder; {how}")
