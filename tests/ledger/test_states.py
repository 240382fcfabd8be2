"""The ledger's words: one State enum, and SQL built from it."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator import ledger
from orchestrator.ledger import FINAL_STATES, Outcome, State
from orchestrator.ledger.states import sql_list


def test_an_sql_list_quotes_states_in_their_enum_order() -> None:
    assert sql_list(FINAL_STATES) == "('success', 'failed', 'cancelled', 'skipped')"
    assert sql_list([State.SUBMITTED, State.PENDING]) == "('pending', 'submitted')"


def test_an_attempts_log_outcome_is_a_state_or_a_move_back_out_of_one() -> None:
    moves = {outcome.value for outcome in Outcome} - {state.value for state in State}
    assert moves == {"adopted", "released"}


def test_no_module_of_the_ledger_spells_a_state_word_but_states_and_shipped_migrations() -> None:
    words = "|".join(state.value for state in State)
    spelled = re.compile(rf"""['"]({words})['"]""")
    folder = Path(ledger.__file__).parent
    offenders = [
        f"{source.name}: {match.group(0)}"
        for source in sorted(folder.glob("*.py"))
        if source.name not in {"states.py", "schema.py"}
        for match in spelled.finditer(source.read_text())
    ]
    assert offenders == []
