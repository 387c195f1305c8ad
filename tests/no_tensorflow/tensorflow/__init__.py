# Put on PYTHONPATH by tests/tbserver.py to run TensorBoard as if TensorFlow were not installed.
raise ImportError("TensorFlow is hidden for this test (tests/no_tensorflow)")
