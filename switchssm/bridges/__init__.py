"""Maps between generative models and the classifiers or cells that compute their posteriors."""

from switchssm.bridges.naive_bayes import (
    CategoricalNaiveBayes,
    GaussianNaiveBayes,
    LogisticRegression,
    QuadraticLogits,
    SoftmaxRegression,
    categorical_nb_to_softmax,
    fit_gaussian_nb,
    gaussian_nb_to_logistic,
    gaussian_nb_to_softmax,
    gaussian_nb_unequal_to_quadratic,
    softmax_to_categorical_nb,
    softmax_to_gaussian_nb,
)

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
