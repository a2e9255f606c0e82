"""Seconds per test file and per notebook from a pytest JUnit XML report, slowest first.

    make test PYTEST_ARGS=--junitxml=out/tests.xml && python bench/test_times.py out/tests.xml

nbval reports each notebook cell as a test case; this adds them up per notebook.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter


def seconds_per_file(report: str) -> Counter[str]:
    """Total seconds of the test cases of each module or notebook (pytest's `classname`)."""
    totals: Counter[str] = Counter()
    for case in ET.parse(report).getroot().iter("testcase"):
        totals[case.get("classname", "?")] += float(case.get("time", 0.0))
    return totals


def main() -> None:
    for name, seconds in seconds_per_file(sys.argv[1]).most_common():
        print(f"{seconds:8.1f} s  {name}")


if __name__ == "__main__":
    main()
