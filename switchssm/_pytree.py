"""The one base of every parameter class: a frozen dataclass registered as a JAX pytree.

Models (:mod:`switchssm.models`) and cells (:mod:`switchssm.rnn`) declare their
parameters as plain annotated classes and decorate them with :func:`params_pytree`:

- fields named in the class attribute ``_static`` (e.g. ``gated``) are auxiliary data:
  hashable, part of the tree structure, so a different value compiles a different
  program;
- fields named in ``_children`` hold other parameter classes (the emission inside a
  model) or ``None``: kept as given, their type checked by ``_validate``;
- every other field is an array leaf, converted on construction by
  :func:`switchssm._validation.as_float` (real numbers only, named in the error as
  ``<_prefix><field>``);
- when every leaf is concrete, the class's ``_validate()`` hook runs and raises
  ``ValueError`` naming the field.

Unflattening (inside ``jit``, ``grad``, ``vmap``, ``tree_map``, optimizer updates)
bypasses conversion and validation, so leaves may be tracers or any placeholder JAX
puts there. Validation is therefore skipped under tracing: validate concrete
parameters once, at the boundary.
"""

from __future__ import annotations

import dataclasses

import jax

from switchssm import _validation as V

__all__ = ["is_params", "params_pytree", "registered", "shape_dim"]

_MARK = "__switchssm_params__"
_REGISTRY: dict[str, type] = {}


class shape_dim:  # noqa: N801 (used like ``property``)
    """A read-only property: the size of array field ``field`` (a dotted path) along ``axis``.

    ``num_states = shape_dim("initial_probs", 0)`` in a parameter class reads
    ``self.initial_probs.shape[0]``.
    """

    def __init__(self, field: str, axis: int, doc: str | None = None):
        self.path = field.split(".")
        self.axis = axis
        self.__doc__ = doc or f"``{field}.shape[{axis}]``."

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None) -> int:
        if obj is None:
            return self
        x = obj
        for part in self.path:
            x = getattr(x, part)
        return x.shape[self.axis]


def registered() -> dict[str, type]:
    """Every parameter class defined so far, by name (the classes a saved file may name)."""
    return dict(_REGISTRY)


def is_params(x) -> bool:
    """True for an instance of a class decorated with :func:`params_pytree`."""
    return getattr(type(x), _MARK, False)


def params_pytree(cls=None, *, promote: bool = True):
    """Make ``cls`` a frozen, validated dataclass registered as a pytree (module docstring).

    Args:
        cls: the class (annotated fields, optional ``_static``, ``_children``, ``_prefix``
            and ``_validate``).
        promote: how leaves are converted (:func:`~switchssm._validation.as_float`):
            ``True`` (models) gives JAX arrays of the default float dtype; ``False``
            (cells) keeps float32/float64 as given.
    """
    if cls is None:
        return lambda c: params_pytree(c, promote=promote)
    static = tuple(getattr(cls, "_static", ()))
    children = tuple(getattr(cls, "_children", ()))

    def __post_init__(self):
        d = self.__dict__
        prefix = type(self)._prefix
        for n in arrays:
            d[n] = V.as_float(d[n], prefix + n, promote=promote)
        if V.all_concrete(*(d[n] for n in leaves)):
            self._validate()

    cls.__post_init__ = __post_init__
    if "_prefix" not in cls.__dict__:
        cls._prefix = ""
    if not hasattr(cls, "_validate"):
        cls._validate = lambda self: None
    if not hasattr(cls, "replace"):

        def replace(self, **changes):
            """A copy with some fields replaced (converted and validated again)."""
            return dataclasses.replace(self, **changes)

        cls.replace = replace
    setattr(cls, _MARK, True)
    cls = dataclasses.dataclass(frozen=True, eq=False)(cls)
    names = tuple(f.name for f in dataclasses.fields(cls))
    unknown = (set(static) | set(children)) - set(names)
    if unknown:
        raise TypeError(f"{cls.__name__}: _static/_children name unknown fields {sorted(unknown)}")
    leaves = tuple(n for n in names if n not in static)
    arrays = tuple(n for n in leaves if n not in children)
    keys = tuple(jax.tree_util.GetAttrKey(n) for n in leaves)

    # Flattening runs on every jitted call: read and write the instance dict directly (a
    # frozen dataclass only guards __setattr__).
    def flatten(obj):
        d = obj.__dict__
        return [d[n] for n in leaves], tuple([d[n] for n in static])

    def flatten_with_keys(obj):
        d = obj.__dict__
        return [(k, d[n]) for k, n in zip(keys, leaves, strict=True)], tuple([d[n] for n in static])

    def unflatten(aux, children):
        obj = object.__new__(cls)
        d = obj.__dict__
        d.update(zip(leaves, children, strict=True))
        d.update(zip(static, aux, strict=True))
        return obj

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
    old = _REGISTRY.get(cls.__name__)
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(f"two parameter classes are named {cls.__name__}")
    _REGISTRY[cls.__name__] = cls  # (a module reloaded replaces its own classes)
    return cls
