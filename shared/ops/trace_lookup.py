"""`turnforge trace TRAJECTORY_ID`: the trajectory's trace id and where to open it in Jaeger.

Every trajectory state carries the id of its own trace (set when the task generator starts the trajectory). The id
is looked up where a user has the trajectory: the run's output files (dataset.jsonl, rejected.jsonl), else the
terminal topics on Kafka (accepted, rejected, dead letters), which is where a cluster's results are.
"""
from __future__ import annotations

import contextlib
import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from shared.runtime.bus import read_to_end
from shared.runtime.config import Settings
from shared.contracts import DeadLetter, Topics, TrajectoryState, Verdict


@dataclass
class TraceRef:
    trajectory_id: str
    trace_id: str
    source: str  # where the id was found

    def jaeger_url(self, ui_url: str) -> str:
        return f"{ui_url.rstrip('/')}/trace/{self.trace_id}"


def search_url(ui_url: str, trajectory_id: str) -> str:
    """Jaeger's search for the trajectory's spans by attribute, for when its trace id is not known here."""
    tags = urllib.parse.quote(json.dumps({"turnforge.trajectory_id": trajectory_id}, separators=(",", ":")))
    return f"{ui_url.rstrip('/')}/search?service=turnforge-task-generator&tags={tags}"


def find_in_files(trajectory_id: str, folders: Iterable[Path]) -> TraceRef | None:
    """Accepted records keep the trace id in metadata.trace_id; rejected records in trace_id."""
    for folder in folders:
        for name in ("dataset.jsonl", "rejected.jsonl"):
            path = Path(folder) / name
            if not path.is_file():
                continue
            with open(path) as f:
                for line in f:
                    if trajectory_id not in line:  # cheap filter before parsing whole conversations
                        continue
                    record = json.loads(line)
                    if trajectory_id in (record.get("id"), record.get("trajectory_id")):
                        trace_id = record.get("trace_id") or record.get("metadata", {}).get("trace_id")
                        if trace_id:
                            return TraceRef(trajectory_id, trace_id, str(path))
    return None


def trace_id_of_record(topic: str, value: bytes, prefix: str) -> tuple[str, str] | None:
    """(trajectory id, trace id) of one record on a terminal topic, or None."""
    if topic in (prefix + Topics.ACCEPTED, prefix + Topics.REJECTED):
        state = Verdict.FromString(value).trajectory
    elif topic == prefix + Topics.DEAD_LETTER:
        letter = DeadLetter.FromString(value)
        state = TrajectoryState()
        try:  # a dead-lettered trajectory message carries its state as the payload
            state.ParseFromString(letter.payload)
        except Exception:  # noqa: BLE001 - other payloads (seeds, toolsets) are not trajectory states
            return None
        if not state.trajectory_id:
            state.trajectory_id = letter.trajectory_id
    else:
        return None
    return (state.trajectory_id, state.trace_id) if state.trace_id else None


def find_on_kafka(settings: Settings, trajectory_id: str, timeout_s: float = 30.0) -> TraceRef | None:
    """Read the terminal topics from the beginning up to their current end, looking for the trajectory."""
    records = read_to_end(settings, (Topics.REJECTED, Topics.ACCEPTED, Topics.DEAD_LETTER),
                          client_id="turnforge-trace", timeout_s=timeout_s)
    try:
        with contextlib.closing(records):  # found early: stop reading and close the consumer
            for _, record in records:
                if record.key and record.key.decode(errors="replace") != trajectory_id:
                    continue  # trajectory messages are keyed by trajectory id
                found = trace_id_of_record(record.topic, record.value, settings.kafka.topic_prefix)
                if found and found[0] == trajectory_id:
                    return TraceRef(trajectory_id, found[1], f"topic {record.topic}")
    except TimeoutError:  # not read to the end in time: not found
        pass
    return None
