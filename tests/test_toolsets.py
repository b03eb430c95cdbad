"""States on the conversation's topics carry their toolset by digest; the consuming side gets it back whole."""
from __future__ import annotations

import psycopg
import pytest

from shared.contracts import ChatMessage, Topics, TrajectoryState
from shared.contracts.flow import FLOW, TOOLSET_BY_REFERENCE
from shared.runtime.errors import PermanentError
from shared.runtime.toolsets import ToolsetStore, digest_of
from tests.factories import toolset

pytestmark = pytest.mark.integration


def planned_state() -> TrajectoryState:
    state = TrajectoryState(trajectory_id="s-t0000", seed_id="s", step=3)
    state.toolset.CopyFrom(toolset())
    state.messages.append(ChatMessage(role="user", content="Suspend line 555-0101, please."))
    return state


def test_a_state_travels_without_its_toolset_and_comes_back_whole(postgres_dsn):
    sender, receiver = ToolsetStore(postgres_dsn), ToolsetStore(postgres_dsn)  # two processes' stores
    state = planned_state()
    whole = state.SerializeToString()
    sent = sender.encode(state)
    assert state.toolset_digest == digest_of(state.toolset)  # set on the state: later hops do not hash again
    on_the_wire = TrajectoryState.FromString(sent)
    assert not on_the_wire.HasField("toolset") and on_the_wire.toolset_digest == state.toolset_digest
    assert len(sent) < len(whole) - len(state.toolset.SerializeToString()) + 100

    receiver.restore(on_the_wire)
    assert on_the_wire == state
    # The next hop of the same trajectory: the digest is carried, nothing is stored again.
    on_the_wire.step += 1
    again = TrajectoryState.FromString(sender.encode(on_the_wire))
    receiver.restore(again)
    assert again.toolset == state.toolset and again.step == 4
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM tf_toolsets").fetchone()[0] == 1


def test_a_state_without_a_toolset_or_carrying_it_whole_is_left_as_it_is(postgres_dsn):
    store = ToolsetStore(postgres_dsn)
    bare = TrajectoryState(trajectory_id="bare", step=1)
    assert store.encode(bare) == bare.SerializeToString()
    whole = planned_state()
    whole.toolset_digest = digest_of(whole.toolset)
    copy = TrajectoryState()
    copy.CopyFrom(whole)
    store.restore(copy)
    assert copy == whole


def test_an_unknown_digest_is_a_permanent_error_that_names_it(postgres_dsn):
    lost = TrajectoryState(trajectory_id="t", toolset_digest="ab" * 32)
    with pytest.raises(PermanentError, match="toolset abababababab is not stored"):
        ToolsetStore(postgres_dsn).restore(lost)


def test_without_the_database_the_state_goes_whole():
    store = ToolsetStore("postgresql://nobody@127.0.0.1:1/none")
    state = planned_state()
    assert TrajectoryState.FromString(store.encode(state)) == state


def test_toolsets_nobody_stored_lately_are_forgotten(postgres_dsn):
    store = ToolsetStore(postgres_dsn)
    store.encode(planned_state())
    assert store.forget(older_than_s=3600) == 0
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("UPDATE tf_toolsets SET stored_at = now() - interval '2 hours'")
    assert store.forget(older_than_s=3600) == 1


def test_only_the_conversation_topics_carry_a_reference():
    assert TOOLSET_BY_REFERENCE == {Topics.TURNS_USER, Topics.TURNS_AGENT, Topics.TOOL_CALLS,
                                    Topics.TRAJECTORIES_COMPLETE}
    # Whatever leaves the pipeline (verdicts, dead letters) or plans it carries no reference.
    assert all(t.message is TrajectoryState for t in FLOW if t.toolset_by_reference)
