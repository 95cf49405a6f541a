"""docs/launchdarkly-contract.md lists every LaunchDarkly behaviour the sandbox models;
the tests that check one name its row ("Contract EXP-3"). This keeps the two honest:
no test cites a row that is not written down, and no row goes unchecked."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "docs" / "launchdarkly-contract.md"
ROW = re.compile(r"^\| ([A-Z]+(?:-[A-Z0-9]+)*-\d+) \|", re.MULTILINE)
ROW_ID = re.compile(r"\b[A-Z]+(?:-[A-Z0-9]+)*-\d+\b")
# Rows that describe what the sandbox deliberately does not model, so no test can
# check them: they are in the file so the gap is written down.
NOT_MODELLED = {"MET-UNITS-2"}


def contract_rows() -> set[str]:
    return set(ROW.findall(CONTRACT.read_text(encoding="utf-8")))


def cited_rows() -> dict[str, set[str]]:
    """Row id -> the test files that cite it (on a line that says "Contract")."""
    cited: dict[str, set[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        if path.name == Path(__file__).name:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if "Contract" in line:
                for row in ROW_ID.findall(line.split("Contract", 1)[1]):
                    cited.setdefault(row, set()).add(str(path.relative_to(ROOT)))
    return cited


def test_contract__every_cited_row_is_written_down():
    rows = contract_rows()
    unknown = {row: files for row, files in cited_rows().items() if row not in rows}
    assert not unknown, f"tests cite rows the contract does not have: {unknown}"


def test_contract__every_modelled_row_is_checked_by_a_test():
    unchecked = contract_rows() - set(cited_rows()) - NOT_MODELLED
    assert not unchecked, f"contract rows no test cites: {sorted(unchecked)}"
