"""tensorboard-al: an active-labeling TensorBoard plugin.

`pip install -e .` registers the plugin with TensorBoard (entry point group
``tensorboard_plugins``) and installs the ``tensorboard-al`` command.  The
frontend bundle in ``tensorboard_al_plugin/static/`` is built by
``scripts/install.sh`` (esbuild) before the package is installed.
"""
import setuptools

setuptools.setup(
    name="tensorboard-al",
    version="0.1.0",
    description="Label a dataset by looking at it: a semi-supervised t-SNE labeling tab for TensorBoard",
    packages=setuptools.find_packages(include=["tensorboard_al_plugin", "tensorboard_al_plugin.*"]),
    package_data={"tensorboard_al_plugin": ["static/*"]},
    python_requires=">=3.10",
    install_requires=[
        # 2.16.0 and 2.16.1 require tf-keras(-nightly), that is TensorFlow.
        # Before 2.21 TensorBoard imports pkg_resources, which setuptools 82
        # removed: an older TensorBoard needs setuptools < 82 beside it.
        "tensorboard>=2.16.2",
        "numpy>=1.23",
        "scipy>=1.9",
        "scikit-learn>=1.2",
        "pillow>=9",
        "tqdm>=4.60",
        "matplotlib>=3.6",
        "numba>=0.58",
        # the approximate neighbour search above 40,000 rows (tsne/nearest_neighbors.py):
        # 1.8.0 is the oldest with wheels for Python 3.10-3.12 that takes numpy 1.23;
        # pip picks >= 1.10 on Python 3.13
        "faiss-cpu>=1.8.0",
    ],
    extras_require={
        "tensorflow": ["tensorflow-cpu>=2.16"],
        "test": ["pytest>=7", "fsspec>=2023.1", "playwright>=1.40", "scikit-image>=0.21",
                 "boto3>=1.28", "moto[server]>=5.0"],  # a real S3 API on 127.0.0.1 for tests/test_s3.py
        "bench": ["openTSNE==1.0.4"],
        # the UMAP layout (tensorboard_al_plugin/tsne/umap_layout.py); without it the tab's
        # UMAP start says to install it. Optional like TensorFlow: umap-learn needs
        # scikit-learn >= 1.6, above this package's floor.
        "umap": ["umap-learn>=0.5.7"],
    },
    entry_points={
        "tensorboard_plugins": [
            "active_labeling = tensorboard_al_plugin.plugin:ActiveLabelingLoader",
        ],
        "console_scripts": [
            "tensorboard-al = tensorboard_al_plugin.cli:main",
        ],
    },
)
