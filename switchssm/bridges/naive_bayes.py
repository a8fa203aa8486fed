"""Log-linear classifiers and naive-Bayes generative classifiers, both directions.

A generative classifier ``P(c) P(x | c)`` has posterior logits (docs/theory.md section 1)

.. math::

    \\log P(c \\mid x) = \\log P(x \\mid c) + \\log P(c) + \\mathrm{const}(x).

When ``log P(x | c)`` is linear in features of ``x`` up to a class-independent term, the
posterior is a softmax regression on those features:

- one-hot ``x`` over ``V`` symbols with ``P(x = v | c) = B[c, v]``:
  ``logits = W onehot(x) + b`` with ``W = log B``, ``b = log P(c)``;
- Gaussian ``x`` with class means ``mu_c`` and one shared covariance ``S``:
  ``logits_c = mu_c' S^-1 x - mu_c' S^-1 mu_c / 2 + log P(c)``; with two classes this is
  logistic regression;
- Gaussian ``x`` with unequal covariances ``S_c``: the posterior is *quadratic* in ``x``,
  ``logits_c = x' Q_c x + w_c' x + b_c``; :func:`gaussian_nb_unequal_to_quadratic` returns
  that map explicitly and the shared-covariance functions refuse a stack of covariances.

The inverse direction is not unique: a softmax regression is the posterior of a whole
family of generative models. :func:`softmax_to_gaussian_nb` and
:func:`softmax_to_categorical_nb` return a canonical member, fixed by the parts of the
generative model that the posterior does not determine (the covariance ``S``; the
marginal distribution of the symbols).

Every map here is exact: the returned ``.posterior(x)`` equals the Bayes posterior of the
generative model to rounding. All functions are pure ``jax.numpy``; inputs are validated
before any tracing and validation is skipped for tracers, so the maps can be jitted or
differentiated.
"""

# jaxtyping shape strings ("C D") are not Python expressions; F722 misreads them.
# ruff: noqa: F722

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import jax.scipy.stats as jstats
import numpy as np
from jax.scipy.special import logsumexp

from switchssm import _validation as V
from switchssm.types import Array
from switchssm.types import ArrayLike
from switchssm.types import Float
from switchssm.types import Int

__all__ = [
    "CategoricalNaiveBayes",
    "GaussianNaiveBayes",
    "LogisticRegression",
    "QuadraticLogits",
    "SoftmaxRegression",
    "categorical_nb_to_softmax",
    "fit_gaussian_nb",
    "gaussian_nb_to_logistic",
    "gaussian_nb_to_softmax",
    "gaussian_nb_unequal_to_quadratic",
    "softmax_to_categorical_nb",
    "softmax_to_gaussian_nb",
]


# ---------------------------------------------------------------------------------------
# Jitted kernels (one compilation per input shape; the public functions validate first)
# ---------------------------------------------------------------------------------------


@jax.jit
def _affine_logits(weights, bias, x):
    return jnp.asarray(x) @ jnp.asarray(weights).T + bias


@jax.jit
def _affine_posterior(weights, bias, x):
    return jax.nn.softmax(_affine_logits(weights, bias, x), axis=-1)


@jax.jit
def _symbol_logits(weights, bias, symbols):
    return jnp.asarray(weights).T[jnp.asarray(symbols)] + bias


@jax.jit
def _logistic_logits(weight, bias, x):
    a = jnp.asarray(x) @ weight + bias
    return jnp.stack([jnp.zeros_like(a), a], axis=-1)


@jax.jit
def _logistic_posterior(weight, bias, x):
    return jax.nn.softmax(_logistic_logits(weight, bias, x), axis=-1)


@jax.jit
def _logistic_to_softmax(weight, bias):
    weight, bias = jnp.asarray(weight), jnp.asarray(bias)
    return (
        jnp.stack([jnp.zeros_like(weight), weight]),
        jnp.stack([jnp.zeros_like(bias), bias]),
    )


@jax.jit
def _quadratic_logits(quad, linear, bias, x):
    x = jnp.asarray(x)
    return jnp.einsum("...i,cij,...j->...c", x, quad, x) + x @ jnp.asarray(linear).T + bias


@jax.jit
def _quadratic_posterior(quad, linear, bias, x):
    return jax.nn.softmax(_quadratic_logits(quad, linear, bias, x), axis=-1)


@jax.jit
def _gaussian_log_joint(class_probs, means, cov, x):
    log_lik = jax.vmap(
        lambda m: jstats.multivariate_normal.logpdf(jnp.asarray(x), m, cov), out_axes=-1
    )(means)
    return jnp.log(class_probs) + log_lik


@jax.jit
def _gaussian_posterior(class_probs, means, cov, x):
    return jax.nn.softmax(_gaussian_log_joint(class_probs, means, cov, x), axis=-1)


@jax.jit
def _categorical_posterior(class_probs, emission_probs, symbols):
    joint = class_probs * jnp.asarray(emission_probs).T[jnp.asarray(symbols)]
    return joint / jnp.sum(joint, axis=-1, keepdims=True)


_log = jax.jit(lambda arrays: jax.tree_util.tree_map(jnp.log, arrays))


# ---------------------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------------------


class SoftmaxRegression(NamedTuple):
    """Softmax regression ``P(c | x) = softmax(W x + b)_c``.

    For categorical inputs the features are one-hot: pass ``jax.nn.one_hot(v, V)``, or use
    :meth:`symbol_logits` with integer symbols.

    Attributes:
        weights: ``(C, F)`` weight matrix ``W``, one row per class.
        bias: ``(C,)`` bias ``b``.
    """

    weights: Float[Array, "C F"]
    bias: Float[Array, " C"]

    def logits(self, x: Float[ArrayLike, "... F"]) -> Float[Array, "... C"]:
        """Class logits ``W x + b`` for features ``x`` of shape ``(..., F)``."""
        return _affine_logits(self.weights, self.bias, x)

    def symbol_logits(self, symbols: Int[ArrayLike, "*batch"]) -> Float[Array, "... C"]:
        """Class logits ``W[:, v] + b`` for integer symbols ``v`` (one-hot features)."""
        return _symbol_logits(self.weights, self.bias, symbols)

    def posterior(self, x: Float[ArrayLike, "... F"]) -> Float[Array, "... C"]:
        """Class probabilities ``softmax(W x + b)``, shape ``(..., C)``."""
        return _affine_posterior(self.weights, self.bias, x)


class LogisticRegression(NamedTuple):
    """Two-class logistic regression ``P(c = 1 | x) = sigmoid(w' x + b)``.

    Attributes:
        weight: ``(D,)`` weight vector ``w``.
        bias: scalar bias ``b``.
    """

    weight: Float[Array, " D"]
    bias: Float[Array, ""]

    def log_odds(self, x: Float[ArrayLike, "... D"]) -> Float[Array, "*batch"]:
        """``log P(c=1 | x) / P(c=0 | x) = w' x + b``, shape ``(...)``."""
        return _logistic_logits(self.weight, self.bias, x)[..., 1]

    def logits(self, x: Float[ArrayLike, "... D"]) -> Float[Array, "... 2"]:
        """Class logits ``(0, w' x + b)``, shape ``(..., 2)``, as for a softmax regression."""
        return _logistic_logits(self.weight, self.bias, x)

    def posterior(self, x: Float[ArrayLike, "... D"]) -> Float[Array, "... 2"]:
        """Class probabilities ``(1 - sigmoid(a), sigmoid(a))``, shape ``(..., 2)``."""
        return _logistic_posterior(self.weight, self.bias, x)

    def to_softmax(self) -> SoftmaxRegression:
        """The same classifier as a softmax regression with class 0 as reference.

        ``W = [0; w']``, ``b = (0, b)``.
        """
        return SoftmaxRegression(*_logistic_to_softmax(self.weight, self.bias))


class QuadraticLogits(NamedTuple):
    """Quadratic class logits ``logits_c = x' Q_c x + w_c' x + b_c``.

    The posterior of a Gaussian classifier with unequal covariances: not log-linear in
    ``x``, but log-linear in the features ``(x x', x, 1)``.

    Attributes:
        quad: ``(C, D, D)`` symmetric matrices ``Q_c``.
        linear: ``(C, D)`` linear weights ``w_c``.
        bias: ``(C,)`` biases ``b_c``.
    """

    quad: Float[Array, "C D D"]
    linear: Float[Array, "C D"]
    bias: Float[Array, " C"]

    def logits(self, x: Float[ArrayLike, "... D"]) -> Float[Array, "... C"]:
        """Class logits ``x' Q_c x + w_c' x + b_c``, shape ``(..., C)``."""
        return _quadratic_logits(self.quad, self.linear, self.bias, x)

    def posterior(self, x: Float[ArrayLike, "... D"]) -> Float[Array, "... C"]:
        """Class probabilities ``softmax(logits(x))``, shape ``(..., C)``."""
        return _quadratic_posterior(self.quad, self.linear, self.bias, x)


class GaussianNaiveBayes(NamedTuple):
    """Gaussian classifier ``c ~ P(c)``, ``x | c ~ N(mu_c, S)`` with one shared covariance.

    (With a full ``S`` this is linear discriminant analysis; "naive Bayes" in the strict
    sense is the diagonal-``S`` special case. The posterior algebra is the same.)

    Attributes:
        class_probs: ``(C,)`` prior ``P(c)``.
        means: ``(C, D)`` class means ``mu_c``.
        cov: ``(D, D)`` shared covariance ``S``.
    """

    class_probs: Float[Array, " C"]
    means: Float[Array, "C D"]
    cov: Float[Array, "D D"]

    def log_joint(self, x: Float[ArrayLike, "... D"]) -> Float[Array, "... C"]:
        """``log P(c) + log N(x | mu_c, S)`` for every class, shape ``(..., C)``."""
        return _gaussian_log_joint(self.class_probs, self.means, self.cov, x)

    def posterior(self, x: Float[ArrayLike, "... D"]) -> Float[Array, "... C"]:
        """Bayes posterior ``P(c | x)``, shape ``(..., C)``."""
        return _gaussian_posterior(self.class_probs, self.means, self.cov, x)


class CategoricalNaiveBayes(NamedTuple):
    """Categorical classifier ``c ~ P(c)``, ``P(x = v | c) = B[c, v]``.

    Attributes:
        class_probs: ``(C,)`` prior ``P(c)``.
        emission_probs: ``(C, V)`` row-stochastic matrix ``B``.
    """

    class_probs: Float[Array, " C"]
    emission_probs: Float[Array, "C V"]

    def posterior(self, symbols: Int[ArrayLike, "*batch"]) -> Float[Array, "... C"]:
        """Bayes posterior ``P(c | x = v)`` for integer symbols, shape ``(..., C)``."""
        return _categorical_posterior(self.class_probs, self.emission_probs, symbols)

    @property
    def symbol_probs(self) -> Float[Array, " V"]:
        """Marginal ``P(x = v) = sum_c P(c) B[c, v]``."""
        return jnp.asarray(self.class_probs) @ jnp.asarray(self.emission_probs)


# ---------------------------------------------------------------------------------------
# Validation (concrete inputs only; runs before any jit)
# ---------------------------------------------------------------------------------------


def _as_float(x, name: str = "x") -> Array:
    return jnp.asarray(V.as_float(x, name, promote=False))


def _check_class_probs(class_probs, num_classes: int | None = None) -> int:
    V.check_ndim(class_probs, "class_probs", 1, "(C,) class prior")
    C = int(np.shape(class_probs)[0])
    if num_classes is not None and C != num_classes:
        raise ValueError(f"`class_probs` must have shape ({num_classes},), got ({C},)")
    V.check_probability_vector(class_probs, "class_probs")
    if V.is_concrete(class_probs) and np.any(np.asarray(class_probs) <= 0):
        raise ValueError(
            "`class_probs` must be strictly positive: a class of prior 0 has bias log 0 = -inf "
            "and no finite log-linear model; drop that class"
        )
    return C


def _check_means(means, C: int) -> int:
    V.check_ndim(means, "means", 2, "(C classes, D dims)")
    if np.shape(means)[0] != C:
        raise ValueError(
            f"`means` must have one row per class: shape ({C}, D), got {tuple(np.shape(means))}"
        )
    V.check_finite(means, "means")
    return int(np.shape(means)[1])


def _check_shared_cov(cov, D: int, name: str = "cov") -> None:
    if np.ndim(cov) == 3:
        raise ValueError(
            f"`{name}` has shape {tuple(np.shape(cov))}, a stack of per-class covariances; "
            "this map needs one shared (D, D) covariance. With unequal covariances the "
            "posterior log-odds are quadratic in x, not linear, so no softmax/logistic "
            "regression represents it: use gaussian_nb_unequal_to_quadratic(class_probs, "
            "means, covs) for the exact quadratic map (or pass one (D, D) matrix if the "
            "covariances are all equal)"
        )
    V.check_covariance(cov, name, dim=D)


def _check_weights_bias(weights, bias) -> tuple[int, int]:
    V.check_ndim(weights, "weights", 2, "(C classes, F features)")
    C, F = (int(n) for n in np.shape(weights))
    V.check_finite(weights, "weights")
    V.check_shape(bias, "bias", (C,), "(one bias per row of `weights`)")
    V.check_finite(bias, "bias")
    return C, F


# ---------------------------------------------------------------------------------------
# Naive Bayes -> log-linear
# ---------------------------------------------------------------------------------------


def categorical_nb_to_softmax(
    class_probs: Float[ArrayLike, " C"], emission_probs: Float[ArrayLike, "C V"]
) -> SoftmaxRegression:
    """Softmax regression on one-hot symbols equal to a categorical naive-Bayes posterior.

    With ``P(x = v | c) = B[c, v]``,
    ``log P(c | x) = log B[c, x] + log P(c) + const(x) = (W onehot(x) + b)_c + const(x)``, so

    .. math:: W = \\log B, \\qquad b = \\log P(c).

    Args:
        class_probs: ``(C,)`` strictly positive prior ``P(c)`` summing to 1.
        emission_probs: ``(C, V)`` strictly positive row-stochastic matrix ``B``. (A zero
            entry would give a weight of ``-inf``, which no finite log-linear model has.)

    Returns:
        :class:`SoftmaxRegression` with ``weights (C, V)`` and ``bias (C,)``.

    Example:
        >>> import numpy as np
        >>> m = categorical_nb_to_softmax(np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.2, 0.8]]))
        >>> np.asarray(m.posterior(np.eye(2))[0], float).round(4).tolist()  # P(c | x = 0)
        [0.8182, 0.1818]
    """
    C = _check_class_probs(class_probs)
    V.check_ndim(emission_probs, "emission_probs", 2, "(C classes, V symbols)")
    if np.shape(emission_probs)[0] != C:
        raise ValueError(
            f"`emission_probs` must have one row per class: shape ({C}, V), "
            f"got {tuple(np.shape(emission_probs))}"
        )
    V.check_probability_vector(emission_probs, "emission_probs", axis=-1)
    V.check_positive(emission_probs, "emission_probs")
    return SoftmaxRegression(
        *_log((_as_float(emission_probs, "emission_probs"), _as_float(class_probs, "class_probs")))
    )


@jax.jit
def _gaussian_linear(class_probs, means, cov) -> tuple[Array, Array]:
    """``(W, b)`` with ``W_c = S^-1 mu_c`` and ``b_c = log P(c) - mu_c' S^-1 mu_c / 2``."""
    chol = jsl.cho_factor(cov, lower=True)
    weights = jsl.cho_solve(chol, means.T).T  # (C, D): row c is S^-1 mu_c
    bias = jnp.log(class_probs) - 0.5 * jnp.sum(means * weights, axis=-1)
    return weights, bias


def gaussian_nb_to_softmax(
    class_probs: Float[ArrayLike, " C"],
    means: Float[ArrayLike, "C D"],
    cov: Float[ArrayLike, "D D"],
) -> SoftmaxRegression:
    """Softmax regression equal to the posterior of a shared-covariance Gaussian classifier.

    With ``x | c ~ N(mu_c, S)`` the term ``-x' S^-1 x / 2`` and the normalizer are common to
    all classes and cancel in the softmax:

    .. math::

        \\mathrm{logits}_c = \\mu_c^\\top S^{-1} x - \\tfrac12 \\mu_c^\\top S^{-1} \\mu_c
        + \\log P(c), \\qquad W_c = S^{-1} \\mu_c .

    Only one shared covariance is accepted: with per-class covariances the posterior is
    quadratic (see :func:`gaussian_nb_unequal_to_quadratic`), and a stack of covariances
    raises ``ValueError`` rather than returning a wrong linear map.

    Args:
        class_probs: ``(C,)`` strictly positive prior ``P(c)``.
        means: ``(C, D)`` class means.
        cov: ``(D, D)`` shared covariance, symmetric positive definite.

    Returns:
        :class:`SoftmaxRegression` with ``weights (C, D)`` and ``bias (C,)``.

    Example:
        >>> import numpy as np
        >>> m = gaussian_nb_to_softmax(np.array([0.5, 0.5]), np.array([[0.0], [2.0]]), np.eye(1))
        >>> np.asarray(m.weights).ravel().tolist(), np.asarray(m.bias, float).round(4).tolist()
        ([0.0, 2.0], [-0.6931, -2.6931])
    """
    C = _check_class_probs(class_probs)
    D = _check_means(means, C)
    _check_shared_cov(cov, D)
    return SoftmaxRegression(
        *_gaussian_linear(
            _as_float(class_probs, "class_probs"), _as_float(means, "means"), _as_float(cov, "cov")
        )
    )


def gaussian_nb_to_logistic(
    class_probs: Float[ArrayLike, " 2"],
    means: Float[ArrayLike, "2 D"],
    cov: Float[ArrayLike, "D D"],
) -> LogisticRegression:
    """Logistic regression equal to the posterior of a two-class shared-covariance Gaussian.

    The difference of the two softmax logits of :func:`gaussian_nb_to_softmax`:

    .. math::

        w = S^{-1} (\\mu_1 - \\mu_0), \\qquad
        b = \\log \\frac{P_1}{P_0} - \\tfrac12 (\\mu_1^\\top S^{-1} \\mu_1
        - \\mu_0^\\top S^{-1} \\mu_0),

    so that ``P(c = 1 | x) = sigmoid(w' x + b)``. Note: seed 000 writes the scalar case with
    the opposite sign convention (the log-odds of class 0 against class 1, i.e. ``-w``,
    ``-b``); here the positive direction always favours class 1.

    Args:
        class_probs: ``(2,)`` strictly positive prior ``(P_0, P_1)``.
        means: ``(2, D)`` class means ``(mu_0, mu_1)``.
        cov: ``(D, D)`` shared covariance ``S`` (a ``(1, 1)`` matrix in the scalar case).

    Returns:
        :class:`LogisticRegression` with ``weight (D,)`` and scalar ``bias``.

    Example:
        >>> import numpy as np
        >>> m = gaussian_nb_to_logistic(np.array([0.5, 0.5]), np.array([[-1.0], [1.0]]), np.eye(1))
        >>> np.asarray(m.weight).tolist(), float(m.bias)
        ([2.0], 0.0)
    """
    _check_class_probs(class_probs, num_classes=2)
    D = _check_means(means, 2)
    _check_shared_cov(cov, D)
    return _gaussian_logistic(
        _as_float(class_probs, "class_probs"), _as_float(means, "means"), _as_float(cov, "cov")
    )


@jax.jit
def _gaussian_logistic(class_probs, means, cov):
    weights, bias = _gaussian_linear(class_probs, means, cov)
    return LogisticRegression(weights[1] - weights[0], bias[1] - bias[0])


def gaussian_nb_unequal_to_quadratic(
    class_probs: Float[ArrayLike, " C"],
    means: Float[ArrayLike, "C D"],
    covs: Float[ArrayLike, "C D D"],
) -> QuadraticLogits:
    """Quadratic logits equal to the posterior of a Gaussian classifier with unequal covariances.

    With ``x | c ~ N(mu_c, S_c)`` and ``P_c = S_c^-1``, dropping the common ``-D log(2 pi)/2``:

    .. math::

        \\mathrm{logits}_c = x^\\top Q_c x + w_c^\\top x + b_c, \\quad
        Q_c = -\\tfrac12 P_c, \\quad w_c = P_c \\mu_c, \\quad
        b_c = \\log P(c) - \\tfrac12 \\mu_c^\\top P_c \\mu_c - \\tfrac12 \\log\\det S_c .

    The posterior is log-linear in ``x`` only when all ``Q_c`` are equal (then ``x' Q x`` and
    ``log det S`` cancel and this reduces to :func:`gaussian_nb_to_softmax`).

    Args:
        class_probs: ``(C,)`` strictly positive prior ``P(c)``.
        means: ``(C, D)`` class means.
        covs: ``(C, D, D)`` per-class covariances, each symmetric positive definite.

    Returns:
        :class:`QuadraticLogits` with ``quad (C, D, D)``, ``linear (C, D)``, ``bias (C,)``.

    Example:
        >>> import numpy as np
        >>> covs = np.stack([np.eye(1), 4 * np.eye(1)])
        >>> q = gaussian_nb_unequal_to_quadratic(np.array([0.5, 0.5]), np.zeros((2, 1)), covs)
        >>> np.asarray(q.quad).ravel().tolist()
        [-0.5, -0.125]
    """
    C = _check_class_probs(class_probs)
    D = _check_means(means, C)
    if np.ndim(covs) == 2:
        raise ValueError(
            f"`covs` must be a (C, D, D) stack of per-class covariances, got shape "
            f"{tuple(np.shape(covs))}; for one shared covariance use gaussian_nb_to_softmax "
            "(the posterior is then linear)"
        )
    V.check_shape(covs, "covs", (C, D, D), "(one covariance per class)")
    if V.is_concrete(covs):
        for c in range(C):
            V.check_covariance(np.asarray(covs)[c], f"covs[{c}]", dim=D)
    return _quadratic_from_gaussians(
        _as_float(class_probs, "class_probs"), _as_float(means, "means"), _as_float(covs, "covs")
    )


@jax.jit
def _quadratic_from_gaussians(class_probs, means, covs):
    D = covs.shape[-1]
    chol = jnp.linalg.cholesky(covs)  # (C, D, D)
    eye = jnp.broadcast_to(jnp.eye(D, dtype=covs.dtype), covs.shape)
    chol_inv = jax.vmap(lambda L, I: jsl.solve_triangular(L, I, lower=True))(chol, eye)
    precs = jnp.einsum("cki,ckj->cij", chol_inv, chol_inv)  # L^-T L^-1 = S^-1
    linear = jnp.einsum("cij,cj->ci", precs, means)
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    bias = jnp.log(class_probs) - 0.5 * jnp.sum(means * linear, axis=-1) - 0.5 * logdet
    return QuadraticLogits(-0.5 * precs, linear, bias)


# ---------------------------------------------------------------------------------------
# Log-linear -> naive Bayes (canonical inverses)
# ---------------------------------------------------------------------------------------


def softmax_to_gaussian_nb(
    weights: Float[ArrayLike, "C D"],
    bias: Float[ArrayLike, " C"],
    cov: Float[ArrayLike, "D D"] | None = None,
) -> GaussianNaiveBayes:
    """A shared-covariance Gaussian classifier whose posterior is a given softmax regression.

    Canonical inverse of :func:`gaussian_nb_to_softmax`. The posterior does not identify the
    generative model: ``S`` is free (any SPD matrix works), and adding one vector ``a`` to
    every row of ``W`` (or a constant to every ``b_c``) leaves the softmax unchanged.
    Fixing ``S`` (identity when ``None``) and solving ``W_c = S^-1 mu_c`` gives

    .. math::

        \\mu_c = S W_c, \\qquad
        P(c) \\propto \\exp\\big(b_c + \\tfrac12 \\mu_c^\\top S^{-1} \\mu_c\\big)
        = \\exp\\big(b_c + \\tfrac12 W_c^\\top S W_c\\big),

    and then ``gaussian_nb_to_softmax`` of the result returns ``(W, b - const)``: the same
    logits up to one constant, so the same posterior exactly.

    Args:
        weights: ``(C, D)`` softmax weights.
        bias: ``(C,)`` softmax bias.
        cov: optional ``(D, D)`` covariance ``S`` to fix; identity if ``None``.

    Returns:
        :class:`GaussianNaiveBayes` ``(class_probs, means, cov)``.

    Example:
        >>> import numpy as np
        >>> nb = softmax_to_gaussian_nb(np.array([[0.0], [2.0]]), np.array([0.0, -2.0]))
        >>> np.asarray(nb.means).ravel().tolist(), np.asarray(nb.class_probs).tolist()
        ([0.0, 2.0], [0.5, 0.5])
    """
    _, D = _check_weights_bias(weights, bias)
    weights, bias = _as_float(weights, "weights"), _as_float(bias, "bias")
    if cov is None:
        cov = np.eye(D, dtype=weights.dtype)
    else:
        _check_shared_cov(cov, D)
        cov = _as_float(cov, "cov")
    return _gaussian_from_softmax(weights, bias, cov)


@jax.jit
def _gaussian_from_softmax(weights, bias, cov):
    means = weights @ cov  # row c is (S W_c)' since S is symmetric
    log_prior = bias + 0.5 * jnp.sum(means * weights, axis=-1)
    return GaussianNaiveBayes(jax.nn.softmax(log_prior), means, cov)


def softmax_to_categorical_nb(
    weights: Float[ArrayLike, "C V"],
    bias: Float[ArrayLike, " C"],
    symbol_probs: Float[ArrayLike, " V"] | None = None,
) -> CategoricalNaiveBayes:
    """A categorical naive-Bayes model whose posterior is a given softmax on one-hot symbols.

    Canonical inverse of :func:`categorical_nb_to_softmax`. For a symbol ``v`` the posterior
    is ``softmax_c(W[c, v] + b_c)``, unchanged by a per-column shift ``W[:, v] + k_v``. So
    every naive-Bayes model with this posterior satisfies
    ``log P(c) + log B[c, v] = W[c, v] + b_c + k_v`` for some ``k`` in ``R^V``, and row
    normalization of ``B`` then forces

    .. math::

        B[c, v] = \\frac{e^{W[c, v] + k_v}}{\\sum_{v'} e^{W[c, v'] + k_{v'}}}, \\qquad
        \\log P(c) = b_c + \\log \\sum_{v} e^{W[c, v] + k_v} + \\mathrm{const}.

    This is a valid model for *every* ``k`` (positive entries, normalized rows), so the
    inverse always exists and is never unique. The free parameter ``k`` is exactly the
    marginal of the symbols: ``P(x = v) = e^{k_v} \\sum_c e^{W[c, v] + b_c} / Z``. The
    canonical choice ``k = 0`` is used unless ``symbol_probs`` is given, in which case ``k``
    is chosen so that ``P(x = v) = symbol_probs[v]`` (and then the model is unique: a
    categorical naive-Bayes model is identified by its posterior plus its symbol marginal).

    Args:
        weights: ``(C, V)`` softmax weights over one-hot symbols.
        bias: ``(C,)`` softmax bias.
        symbol_probs: optional ``(V,)`` strictly positive marginal ``P(x = v)`` to match.

    Returns:
        :class:`CategoricalNaiveBayes` ``(class_probs, emission_probs)``.

    Example:
        >>> import numpy as np
        >>> nb = softmax_to_categorical_nb(np.log(np.array([[0.9, 0.1], [0.2, 0.8]])), np.zeros(2))
        >>> np.asarray(nb.emission_probs, float).round(2).tolist()
        [[0.9, 0.1], [0.2, 0.8]]
    """
    C, Vs = _check_weights_bias(weights, bias)
    weights, bias = _as_float(weights, "weights"), _as_float(bias, "bias")
    if symbol_probs is not None:
        V.check_shape(symbol_probs, "symbol_probs", (Vs,), "(one probability per symbol)")
        V.check_probability_vector(symbol_probs, "symbol_probs")
        V.check_positive(symbol_probs, "symbol_probs")
        symbol_probs = _as_float(symbol_probs, "symbol_probs")
    return _categorical_from_softmax(weights, bias, symbol_probs)


@jax.jit
def _categorical_from_softmax(weights, bias, symbol_probs):
    if symbol_probs is not None:
        # P(x=v) ∝ e^{k_v} sum_c e^{W[c,v] + b_c}: solve for k up to a constant.
        weights = weights + jnp.log(symbol_probs) - logsumexp(weights + bias[:, None], axis=0)
    row_norm = logsumexp(weights, axis=-1)  # (C,)
    emission_probs = jnp.exp(weights - row_norm[:, None])
    return CategoricalNaiveBayes(jax.nn.softmax(bias + row_norm), emission_probs)


# ---------------------------------------------------------------------------------------
# Fitting
# ---------------------------------------------------------------------------------------


def fit_gaussian_nb(
    x: Float[ArrayLike, "N D"], labels: Int[ArrayLike, " N"], num_classes: int
) -> GaussianNaiveBayes:
    """Maximum-likelihood shared-covariance Gaussian classifier from labelled data.

    .. math::

        P(c) = \\frac{N_c}{N}, \\qquad \\mu_c = \\frac{1}{N_c} \\sum_{n: y_n = c} x_n, \\qquad
        S = \\frac{1}{N} \\sum_n (x_n - \\mu_{y_n})(x_n - \\mu_{y_n})^\\top

    (the pooled within-class covariance with the MLE divisor ``N``, not ``N - C``).

    Args:
        x: ``(N, D)`` real features.
        labels: ``(N,)`` integer classes in ``[0, num_classes)``; every class must occur.
        num_classes: number of classes ``C``.

    Returns:
        :class:`GaussianNaiveBayes` ``(class_probs, means, cov)``; map it with
        ``gaussian_nb_to_softmax(*nb)`` or ``gaussian_nb_to_logistic(*nb)``.

    Example:
        >>> import numpy as np
        >>> nb = fit_gaussian_nb(np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([0, 0, 1, 1]), 2)
        >>> np.asarray(nb.means).ravel().tolist(), np.asarray(nb.cov).tolist()
        ([1.0, 5.0], [[1.0]])
    """
    if not isinstance(num_classes, int | np.integer) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive integer, got {num_classes!r}")
    V.check_ndim(x, "x", 2, "(N samples, D features)")
    N, D = (int(n) for n in np.shape(x))
    V.check_length(N, "x")
    V.check_finite(x, "x")
    V.check_shape(labels, "labels", (N,), "(one label per row of `x`)")
    V.check_int_range(labels, "labels", 0, int(num_classes))
    if V.is_concrete(labels):
        counts = np.bincount(np.asarray(labels).astype(np.int64), minlength=num_classes)
        if np.any(counts == 0):
            raise ValueError(
                f"`labels` has no sample of class(es) {np.flatnonzero(counts == 0).tolist()}: "
                "their mean is undefined"
            )
    nb = _fit_gaussian_nb(
        _as_float(x, "x"), jnp.asarray(labels).astype(jnp.int32), int(num_classes)
    )
    if V.is_concrete(nb.cov):
        V.check_covariance(np.asarray(nb.cov), "pooled covariance of `x`", dim=D)
    return nb


@functools.partial(jax.jit, static_argnums=2)
def _fit_gaussian_nb(x, labels, num_classes):
    onehot = jax.nn.one_hot(labels, num_classes, dtype=x.dtype)
    counts = onehot.sum(axis=0)
    means = (onehot.T @ x) / counts[:, None]
    resid = x - onehot @ means
    return GaussianNaiveBayes(counts / x.shape[0], means, resid.T @ resid / x.shape[0])
