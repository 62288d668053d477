# SPDX-License-Identifier: GPL-3.0-or-later
"""Loads the shared fixtures (vstor_fixtures.py) for every integration test."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
pytest_plugins = ["vstor_fixtures"]
