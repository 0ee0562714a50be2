"""The test harness itself (tests/conftest.py): a missing corpus is one summary line outside CI;
under CI any skip, and an xfailed or xpassed integration test, fails the run."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
CORPUS_TESTS = """
def test_one(corpus): pass
def test_two(corpus): pass
def test_three(corpus): pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    """A copy of the project's tests/conftest.py over a tiny suite, with no corpus and not under CI."""
    monkeypatch.setenv("BUS_CORPUS_DIR", str(tmp_path / "no-corpus"))
    monkeypatch.delenv("CI", raising=False)
    pytester.mkpydir("tests")
    (pytester.path / "tests" / "conftest.py").write_text(CONFTEST.read_text())
    (pytester.path / "tests" / "integration").mkdir()
    return pytester


def test_a_missing_corpus_is_one_summary_line_and_a_green_run(suite: pytest.Pytester, tmp_path: Path) -> None:
    (suite.path / "tests" / "test_corpus.py").write_text(CORPUS_TESTS)
    result = suite.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(skipped=3)
    lines = [line for line in result.outlines if "official corpus not found" in line]
    assert lines == [f"3 tests skipped: official corpus not found at {tmp_path / 'no-corpus'}; "
                     "set BUS_CORPUS_DIR or place it at ../shared/corpus"]


def test_under_ci_a_missing_corpus_fails(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    (suite.path / "tests" / "test_corpus.py").write_text(CORPUS_TESTS)
    (suite.path / "tests" / "integration" / "test_it.py").write_text("def test_ok(): pass\n")
    assert suite.runpytest_subprocess("-q", "-p", "no:cacheprovider").ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("body", [
    "import pytest\n@pytest.mark.xfail(reason='known')\ndef test_x(): assert False\n",
    "import pytest\n@pytest.mark.xfail(strict=False, reason='stale')\ndef test_x(): pass\n",
    "import pytest\ndef test_x(): pytest.skip('later')\n",
], ids=["xfailed", "xpassed", "skipped"])
def test_under_ci_an_unsettled_integration_test_fails_the_run(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                              body: str) -> None:
    (suite.path / "tests" / "integration" / "test_it.py").write_text(body + "def test_ok(): pass\n")
    assert suite.runpytest_subprocess("-q", "-p", "no:cacheprovider").ret == pytest.ExitCode.OK  # not under CI
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ERROR: tests not plainly passed*", "*tests/integration/test_it.py::test_x*"])


def test_under_ci_any_skip_fails_the_run(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    (suite.path / "tests" / "test_unit.py").write_text("import pytest\n@pytest.mark.skipif(True, reason='no')\n"
                                                       "def test_x(): pass\n")
    (suite.path / "tests" / "integration" / "test_it.py").write_text("def test_ok(): pass\n")
    result = suite.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ERROR: tests not plainly passed (1 skipped)*"])
