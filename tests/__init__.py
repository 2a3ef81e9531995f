"""The test suite. Its shared helpers (tests/helpers.py) check with plain asserts, rewritten by
pytest as a test module's are, so that a failed check shows its values."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("tests.helpers")
