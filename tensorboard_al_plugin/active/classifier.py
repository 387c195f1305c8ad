"""The paper's small classifier: D -> dropout 25% -> ReLU dense D/4 -> dropout 25% -> softmax.

Luus et al. (arXiv:1901.00675, section 4) judge every labeling strategy by the
validation accuracy of this network, retrained *from its current state* for 50
epochs whenever new labels arrive (warm start, so the weights carry over from
round to round).

Two interchangeable backends:

- ``"numpy"`` (default): a plain numpy implementation (Glorot-uniform weights,
  zero biases, Adam with Keras' defaults, minibatch 32, inverted dropout). Fast
  on a laptop CPU, no TensorFlow import; the benchmark uses it unless told
  otherwise.
- ``"keras"``: the same network built with ``tf.keras`` (TensorFlow must be
  installed). Same architecture, initialisers, optimiser and batch size, so its
  accuracies agree with the numpy backend within seed noise.
- ``"auto"``: ``"keras"`` when TensorFlow is installed, else ``"numpy"``. Both
  the tab's background trainer (``--al_classifier``) and ``tensorboard-al
  benchmark`` default to ``"numpy"``, the fastest.

Shapes: features ``(n, D)`` float, class indices ``(n,)`` int in ``[0, n_classes)``.
"""
from __future__ import annotations

import copy

import numpy as np

__all__ = ["MLPClassifier", "make_classifier", "resolve_backend", "BACKENDS"]

BACKENDS = ("numpy", "keras")


_AUTO = []


def resolve_backend(backend):
    """"auto" -> "keras" when TensorFlow imports, else "numpy"; others unchanged."""
    if backend != "auto":
        return backend
    if not _AUTO:
        try:
            import tensorflow  # noqa: F401  (seconds, once; the TensorBoard process has usually done it)

            _AUTO.append("keras")
        except Exception:  # not installed, or broken: the numpy network is the same model
            _AUTO.append("numpy")
    return _AUTO[0]


def _glorot(rng, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class MLPClassifier:
    """The paper's D -> D/4 network with a warm-started ``update``.

    Parameters
    ----------
    n_features : int
        Input dimension D.
    n_classes : int
        Number of output classes (fixed up front so that new classes appearing
        during labeling do not change the network's shape).
    epochs : int, default 50
        Epochs run by each call to :meth:`update`.
    dropout : float, default 0.25
    learning_rate : float, default 1e-3 (Adam)
    batch_size : int, default 32
    backend : {"numpy", "keras", "auto"}, default "numpy"
    random_state : int or None
    """

    def __init__(self, n_features, n_classes, *, epochs=50, dropout=0.25, learning_rate=1e-3,
                 batch_size=32, backend="numpy", random_state=None):
        backend = resolve_backend(backend)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}.")
        self.n_features = int(n_features)
        self.n_classes = int(n_classes)
        self.hidden = max(1, self.n_features // 4)
        self.epochs = int(epochs)
        self.dropout = float(dropout)
        self.learning_rate = float(learning_rate)
        self.batch_size = int(batch_size)
        self.backend = backend
        self.random_state = random_state
        self._rng = np.random.default_rng(random_state)
        self.n_updates_ = 0
        if backend == "numpy":
            self._init_numpy()
        else:
            self._init_keras()

    # ------------------------------------------------------------------ numpy
    def _init_numpy(self):
        D, H, C = self.n_features, self.hidden, self.n_classes
        self.W1_ = _glorot(self._rng, D, H)
        self.b1_ = np.zeros(H, np.float32)
        self.W2_ = _glorot(self._rng, H, C)
        self.b2_ = np.zeros(C, np.float32)
        self._adam_m = [np.zeros_like(p) for p in self._params()]
        self._adam_v = [np.zeros_like(p) for p in self._params()]
        self._adam_t = 0

    def _params(self):
        return [self.W1_, self.b1_, self.W2_, self.b2_]

    def _numpy_epochs(self, X, y):
        n = len(X)
        keep = 1.0 - self.dropout
        beta1, beta2, eps = 0.9, 0.999, 1e-7
        onehot = np.eye(self.n_classes, dtype=np.float32)[y]
        for _ in range(self.epochs):
            order = self._rng.permutation(n)
            for start in range(0, n, self.batch_size):
                idx = order[start:start + self.batch_size]
                xb, tb = X[idx], onehot[idx]
                m0 = (self._rng.random(xb.shape) < keep).astype(np.float32) / keep
                x0 = xb * m0
                h = x0 @ self.W1_ + self.b1_
                a = np.maximum(h, 0.0)
                m1 = (self._rng.random(a.shape) < keep).astype(np.float32) / keep
                a1 = a * m1
                p = _softmax(a1 @ self.W2_ + self.b2_)
                g = (p - tb) / len(idx)
                gW2 = a1.T @ g
                gb2 = g.sum(0)
                ga = (g @ self.W2_.T) * m1 * (h > 0)
                gW1 = x0.T @ ga
                gb1 = ga.sum(0)
                self._adam_t += 1
                t = self._adam_t
                lr = self.learning_rate * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
                for p_, g_, m_, v_ in zip(self._params(), (gW1, gb1, gW2, gb2), self._adam_m, self._adam_v):
                    m_ *= beta1
                    m_ += (1 - beta1) * g_
                    v_ *= beta2
                    v_ += (1 - beta2) * g_ * g_
                    p_ -= (lr * m_ / (np.sqrt(v_) + eps)).astype(np.float32)

    # ------------------------------------------------------------------ keras
    def _init_keras(self):
        try:
            import tensorflow as tf
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("backend='keras' needs TensorFlow; install tensorflow or use backend='numpy'.") from exc
        seed = None if self.random_state is None else int(self.random_state)
        init = tf.keras.initializers.GlorotUniform(seed=seed)
        self._model = tf.keras.Sequential([
            tf.keras.Input(shape=(self.n_features,)),
            tf.keras.layers.Dropout(self.dropout, seed=seed),
            tf.keras.layers.Dense(self.hidden, activation="relu", kernel_initializer=init),
            tf.keras.layers.Dropout(self.dropout, seed=seed),
            tf.keras.layers.Dense(self.n_classes, activation="softmax",
                                  kernel_initializer=tf.keras.initializers.GlorotUniform(
                                      seed=None if seed is None else seed + 1)),
        ])
        self._model.compile(optimizer=tf.keras.optimizers.Adam(self.learning_rate),
                            loss="sparse_categorical_crossentropy")

    # ------------------------------------------------------------------ API
    def update(self, X, y):
        """Train for ``epochs`` more epochs on the labeled rows ``X`` (n, D), ``y`` (n,) class indices."""
        X = np.asarray(X, np.float32)
        y = np.asarray(y, np.int64)
        if len(X) == 0:
            return self
        if self.backend == "numpy":
            self._numpy_epochs(X, y)
        else:
            self._model.fit(X, y, epochs=self.epochs, batch_size=self.batch_size, verbose=0, shuffle=True)
        self.n_updates_ += 1
        return self

    def predict_proba(self, X):
        """Class probabilities, shape (n, n_classes), dropout off."""
        X = np.asarray(X, np.float32)
        if self.backend == "numpy":
            return _softmax(np.maximum(X @ self.W1_ + self.b1_, 0.0) @ self.W2_ + self.b2_)
        return np.asarray(self._model.predict(X, verbose=0, batch_size=1024))

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)

    def score(self, X, y):
        """Accuracy on (X, y)."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def copy(self):
        """An independent copy: same weights, its own random stream; training one leaves the other.

        The numpy backend copies the optimiser state too; a Keras copy starts a
        fresh Adam (Keras cannot copy a compiled optimiser's slots).
        """
        if self.backend == "numpy":
            return copy.deepcopy(self)
        import tensorflow as tf
        twin = copy.copy(self)
        twin._rng = copy.deepcopy(self._rng)
        twin._model = tf.keras.models.clone_model(self._model)
        twin._model.set_weights(self._model.get_weights())
        twin._model.compile(optimizer=tf.keras.optimizers.Adam(self.learning_rate),
                            loss="sparse_categorical_crossentropy")
        return twin

    def logit_parts(self):
        """(W1, b1, W2, b2) as numpy arrays, for gradient-based strategies (adversarial)."""
        if self.backend == "numpy":
            return self.W1_, self.b1_, self.W2_, self.b2_
        dense = [layer for layer in self._model.layers if layer.get_weights()]
        (W1, b1), (W2, b2) = (d.get_weights() for d in dense)
        return W1, b1, W2, b2


def make_classifier(n_features, n_classes, *, backend="numpy", random_state=None, **kwargs):
    """Build the paper's classifier with the chosen backend ("numpy" or "keras")."""
    return MLPClassifier(n_features, n_classes, backend=backend, random_state=random_state, **kwargs)
