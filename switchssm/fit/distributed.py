r"""Sharding batches of sequences across devices with :mod:`jax.sharding`.

A batch of :math:`N` padded sequences (:class:`~switchssm.sequences.Sequences`) is split
along :math:`N` over a one-axis device mesh (axis ``"sequences"``); parameters are replicated.
The log-likelihood and the EM statistics are sums over sequences,

.. math::

    \log P(x \mid \theta) = \sum_{d} \sum_{n \in \text{shard}(d)} \log P(x^{(n)} \mid \theta),

so each device runs the (vmapped) forward or forward-backward pass on its own sequences and
XLA inserts the cross-device reduction (an all-reduce) for the outer sum. The same code runs
on one CPU, on several GPUs of one host, or on several hosts: after
:func:`jax.distributed.initialize`, :func:`jax.devices` is the *global* device list, every
process calls the same functions with the same (full) batch, and each process places only
the shards of its own devices.

Filler sequences. :math:`N` is padded up to a multiple of the number of devices with empty
rows: length 0, all-``False`` mask, zeros for ``y`` and ``u``. An empty row contributes exactly
0: every step is padded, so its per-step log normalizers are masked to 0, and every E-step
weight (:math:`\xi_t`, :math:`P(s_0 \mid x)`, the gated background weights) is multiplied by
the mask. Sharded :class:`~switchssm.sequences.Sequences` are therefore for computation only
(:func:`~switchssm.sequences.as_sequences` rejects length 0); their ``num_sequences`` counts
the fillers.

The results equal the unsharded ones up to the order of floating-point sums (relative
differences of order :math:`10^{-16}` per reduction).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec

from switchssm.inference.batch import check_data
from switchssm.inference.batch import log_likelihoods
from switchssm.models.params import SwitchingParams
from switchssm.sequences import Sequences
from switchssm.types import Array
from switchssm.types import Float

__all__ = [
    "SEQUENCE_AXIS",
    "replicate",
    "sequence_mesh",
    "shard_sequences",
    "sharded_log_likelihood",
]

SEQUENCE_AXIS = "sequences"


def sequence_mesh(devices=None) -> Mesh:
    """A one-axis device mesh, axis ``"sequences"``, to shard batches of sequences over.

    Args:
        devices: a sequence of :class:`jax.Device`, or ``None`` for :func:`jax.devices` (all
            devices of the default backend; on several hosts, after
            :func:`jax.distributed.initialize`, the global list over all processes).

    Returns:
        :class:`jax.sharding.Mesh` of shape ``{"sequences": len(devices)}``.

    Example:
        >>> mesh = sequence_mesh()
        >>> mesh.axis_names, mesh.size == len(jax.devices())
        (('sequences',), True)
    """
    devs = jax.devices() if devices is None else list(devices)
    if len(devs) == 0:
        raise ValueError("`devices` is empty: give at least one jax.Device (or None for all)")
    for i, d in enumerate(devs):
        if not isinstance(d, jax.Device):
            raise ValueError(f"`devices[{i}]` must be a jax.Device, got {type(d).__name__}")
    if len(set(devs)) != len(devs):
        raise ValueError("`devices` lists a device more than once")
    return Mesh(np.array(devs, dtype=object), (SEQUENCE_AXIS,))


def _check_mesh(mesh) -> Mesh:
    if mesh is None:
        return sequence_mesh()
    if not isinstance(mesh, Mesh):
        raise ValueError(f"`mesh` must be a jax.sharding.Mesh or None, got {type(mesh).__name__}")
    if SEQUENCE_AXIS not in mesh.axis_names:
        raise ValueError(
            f"`mesh` must have an axis named {SEQUENCE_AXIS!r} (see sequence_mesh), "
            f"got axes {mesh.axis_names}"
        )
    return mesh


def _put(x, sharding: NamedSharding):
    """Place a host array with ``sharding`` (each process fills its own devices' shards)."""
    x = np.asarray(x)
    x = x.astype(jax.dtypes.canonicalize_dtype(x.dtype), copy=False)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def replicate(tree, mesh=None):
    """Copy every array of a pytree (e.g. parameters) to all devices of ``mesh``.

    Args:
        tree: a pytree of arrays (the same values in every process).
        mesh: a mesh from :func:`sequence_mesh` (``None``: all devices).

    Returns:
        The pytree with leaves of sharding ``NamedSharding(mesh, PartitionSpec())``.

    Example:
        >>> replicate({"a": np.ones(2)})["a"].sharding.is_fully_replicated
        True
    """
    sharding = NamedSharding(_check_mesh(mesh), PartitionSpec())
    return jax.tree_util.tree_map(lambda x: _put(x, sharding), tree)


def shard_sequences(seqs: Sequences, mesh=None) -> Sequences:
    r"""Split a padded batch of sequences along :math:`N` over the devices of ``mesh``.

    :math:`N` is padded up to :math:`\lceil N / D \rceil D` (:math:`D` devices on the
    ``"sequences"`` axis) with empty rows (length 0, mask ``False``) that contribute exactly 0
    to the log-likelihood and to the EM statistics (module docstring); then every array is
    placed with ``NamedSharding(mesh, PartitionSpec("sequences"))``, device :math:`d` holding
    rows :math:`[dN/D, (d+1)N/D)`.

    Args:
        seqs: :class:`~switchssm.sequences.Sequences` from
            :func:`~switchssm.sequences.as_sequences` (the full batch, identical in every
            process).
        mesh: a mesh with a ``"sequences"`` axis (``None``: :func:`sequence_mesh` over all
            devices).

    Returns:
        :class:`~switchssm.sequences.Sequences` of ``ceil(N / D) * D`` rows, sharded.

    Example:
        >>> from switchssm.sequences import as_sequences
        >>> seqs = as_sequences([np.array([0, 1, 1]), np.array([1])], kind="integer")
        >>> data = shard_sequences(seqs)
        >>> data.values.sharding.spec == PartitionSpec("sequences")
        True
    """
    if not isinstance(seqs, Sequences):
        raise ValueError(
            f"`seqs` must be a Sequences (see as_sequences), got {type(seqs).__name__}"
        )
    mesh = _check_mesh(mesh)
    sharding = NamedSharding(mesh, PartitionSpec(SEQUENCE_AXIS))
    leaves = [x for x in seqs if x is not None]
    if all(isinstance(x, jax.Array) and x.sharding == sharding for x in leaves):
        return seqs  # already placed (possibly over several hosts): nothing to gather
    num_shards = mesh.shape[SEQUENCE_AXIS]
    N = seqs.mask.shape[0]
    extra = -N % num_shards

    def pad(x):
        x = np.asarray(x)
        if extra:
            x = np.concatenate([x, np.zeros((extra, *x.shape[1:]), x.dtype)])
        return _put(x, sharding)

    return Sequences(*(None if x is None else pad(x) for x in seqs))


@jax.jit
def _total_log_likelihood(params, data):
    return jnp.sum(log_likelihoods(params, data))


def sharded_log_likelihood(
    params: SwitchingParams, seqs: Sequences, *, mesh=None
) -> Float[Array, ""]:
    r"""Exact log-likelihood of a (sharded) batch, :math:`\sum_n \log P(y^{(n)}, u^{(n)})`.

    One jitted program: each device runs the masked forward pass of
    :func:`~switchssm.inference.batch_log_likelihood` on its rows, and XLA reduces the
    per-device sums across devices. Filler rows contribute exactly 0.

    Args:
        params: :class:`~switchssm.models.SwitchingParams` (replicated on every device).
        seqs: :class:`~switchssm.sequences.Sequences`, sharded by
            :func:`shard_sequences` (or not: then it runs where the arrays are).
        mesh: if given, ``seqs`` is first sharded over it with :func:`shard_sequences`.

    Returns:
        The total log-likelihood, a scalar replicated on the devices of the mesh.

    Example:
        >>> from switchssm.models import SwitchingParams, CategoricalEmission
        >>> from switchssm.sequences import as_sequences
        >>> p = SwitchingParams(np.array([.5, .5]), .1, CategoricalEmission(np.eye(2) * .6 + .2))
        >>> seqs = as_sequences([np.array([0, 1, 1]), np.array([1])], kind="integer")
        >>> data = shard_sequences(seqs)
        >>> sharded_log_likelihood(p, data).shape
        ()
    """
    if not isinstance(params, SwitchingParams):
        raise ValueError(f"`params` must be a SwitchingParams, got {type(params).__name__}")
    if not isinstance(seqs, Sequences):
        raise ValueError(
            f"`seqs` must be a Sequences (see as_sequences), got {type(seqs).__name__}"
        )
    check_data(seqs, params)
    if mesh is not None:
        seqs = shard_sequences(seqs, mesh)
        params = replicate(params, mesh)
    elif isinstance(seqs.mask, jax.Array) and isinstance(seqs.mask.sharding, NamedSharding):
        params = replicate(params, seqs.mask.sharding.mesh)
    return _total_log_likelihood(params, seqs)
