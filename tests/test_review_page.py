"""The review page (`turnforge view`): what it is built from, and the page itself in a real headless Chromium.

The run folder is written by the runner's own output code from verdicts whose checks the validator ran; the
browser is Debian's chromium (`make install` installs it), driven by Playwright without any browser of its own.
Screenshots and the 10,000-trajectory timings stay in each test's output folder (pytest's tmp_path).
"""
from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from shared.cli.main import main as turnforge
from shared.contracts import DeadLetter, Verdict
from shared.run import evaluation, review, stats
from shared.run.review import page as review_page
from shared.run.runner import RunConfig, RunTracker, write_outputs
from shared.validation.checks import deterministic_checks
from tests.factories import add_call, state, task

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
MARKUP = "<script>document.title = 'injected'</script></script><b>bold?</b>"


def suspend_customer(trajectory_id: str, wrong_write: bool = False) -> Verdict:
    """The user asks who customer 1 is, then to suspend them. With `wrong_write` the agent also suspends customer 2,
    whom nobody named, and makes up a number: the validator's own checks reject it."""
    s = state([task([("get_customer", {"customer_id": 1}),
                     ("update_customer_status", {"customer_id": 1, "status": "suspended"})])])
    s.trajectory_id, s.seed_id, s.golden_state_hash, s.trace_id = trajectory_id, "run-telecom", "h0", "ab" * 16
    s.tasks[0].golden_actions[0].result_json = json.dumps({"customer_id": 1, "name": "Ana"})
    s.messages.add(role="user", content="Who is customer 1? " + MARKUP)
    add_call(s, "get_customer", {"customer_id": 1}, content={"customer_id": 1, "name": "Ana", "notes": "n" * 900})
    s.messages.add(role="assistant", content="Customer 1 is Ana." + (" She has 42 open invoices." if wrong_write else ""))
    s.messages.add(role="user", content="Please suspend her account.")
    add_call(s, "update_customer_status", {"customer_id": 1, "status": "suspended"},
             content={"customer_id": 1, "status": "suspended"})
    if wrong_write:
        add_call(s, "update_customer_status", {"customer_id": 2, "status": "suspended"},
                 content={"customer_id": 2, "status": "suspended"})
    s.messages.add(role="assistant", content="Done: customer 1 is suspended.")
    s.messages.add(role="user", content="Thanks, that's all.")
    s.is_task_complete = True
    checks = deterministic_checks(s, "h1" if wrong_write else "h0")
    return Verdict(trajectory_id=trajectory_id, trajectory=s, checks=checks, accepted=all(c.passed for c in checks),
                   reasons=[f"{c.name}: {c.detail}" for c in checks if not c.passed])


def run_folder(out: Path) -> Path:
    """A run's output folder as the runner writes it: two accepted, one rejected, one dead-lettered."""
    tracker = RunTracker({"run-telecom": 3, "run-retail": 1})
    for verdict in (suspend_customer("run-telecom-0"), suspend_customer("run-telecom-1"),
                    suspend_customer("run-telecom-2", wrong_write=True)):
        tracker.on_verdict(verdict)
    tracker.on_dead_letter(DeadLetter(service="task-generator", seed_id="run-retail", trajectory_id="run-retail-0",
                                      reason="no task could be planned", error_type="PermanentError", attempts=1))
    write_outputs(tracker, RunConfig(domains=["telecom", "retail"]), "run", 3.0, out)
    return out


# -- what the page is built from ----------------------------------------------------------------------------------

def test_a_run_folder_gives_every_trajectory_with_its_checks_and_failing_messages(tmp_path):
    summaries, details, figures = review_page.page_data(review.read_inputs(run_folder(tmp_path)))
    assert [(s["id"], s["outcome"]) for s in summaries] == [
        ("run-telecom-0", "accepted"), ("run-telecom-1", "accepted"), ("run-telecom-2", "rejected"),
        ("run-retail-0", "dead-lettered")]
    assert figures["counts"] == {"accepted": 2, "rejected": 1, "dead-lettered": 1}
    assert figures["dataset"]["by_mode"]["user_oriented"]["samples"] == 2  # Table 1 is the accepted set's
    rejected, detail = summaries[2], details[2]
    assert rejected["reasons"] == ["call_arguments_grounded", "claims_grounded_in_tool_results", "golden_state",
                                   "writes_requested"]
    failed = {c["name"]: c["messages"] for c in detail["checks"] if not c["passed"]}
    messages = detail["messages"]
    # Which message failed which check: the reply with the made-up number, the unrequested call and its result.
    assert "42" in messages[failed["claims_grounded_in_tool_results"][0]]["content"]
    [call] = failed["call_arguments_grounded"]
    assert json.loads(messages[call]["tool_calls"][0]["function"]["arguments"])["customer_id"] == 2
    [result] = failed["writes_requested"]
    assert messages[result]["tool_call_id"] == messages[call]["tool_calls"][0]["id"]
    assert failed["golden_state"] == []  # the end state belongs to the dialogue as a whole
    # A rejection shows its tasks and tools as a dataset record does.
    assert detail["tasks"][0]["golden_actions"][1]["tool"] == "update_customer_status"
    assert {t["function"]["name"] for t in detail["tools"]} == {"get_customer", "update_customer_status"}
    assert ["trace id", "ab" * 16] in detail["facts"]
    assert details[3]["reasons"] == ["no task could be planned"]
    assert ("dead letter: task-generator", 1) in figures["reasons"]


def test_a_record_written_before_checks_named_their_messages_points_at_the_calls_its_detail_names():
    messages = [{"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "assistant", "tool_calls": [{"id": "call_10", "function": {"name": "f", "arguments": "{}"}}]}]
    assert review_page.failed_messages({"name": "outputs_match_schema", "detail": "call_10 f: bad"}, messages) == [2]
    assert review_page.failed_messages({"name": "x", "detail": "", "messages": [0]}, messages) == [0]


def test_a_single_file_and_an_evaluation_folder(tmp_path):
    run = run_folder(tmp_path / "run")
    inputs = review.read_inputs(run / "rejected.jsonl")
    assert (len(inputs.accepted), len(inputs.rejected), len(inputs.dead_letters)) == (0, 1, 0)
    assert review.write_page(run / "rejected.jsonl") == run / "rejected.review.html"

    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "figures.json").write_text(json.dumps({"agent": "oracle", "pass_hat_k": {"1": 1.0}}))
    (folder / "pass_hat_k.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # a plot the evaluation wrote
    trials = [suspend_customer("eval-model-k0-0"), suspend_customer("eval-model-k0-1", wrong_write=True)]
    for trial in trials:
        trial.trajectory.settings.evaluation.agent_name = "model"
    evaluation.write_trials(trials, folder)
    summaries, _, figures = review_page.page_data(review.read_inputs(folder))
    assert [(s["outcome"], s["mode"]) for s in summaries] == [("passed", "model"), ("failed", "model")]
    assert "writes_requested" in summaries[1]["reasons"] and figures["counts"] == {"passed": 1, "failed": 1}
    assert figures["evaluation"]["pass_hat_k"] == {"1": 1.0}
    assert figures["plots"][0]["name"] == "pass hat k" and figures["plots"][0]["src"].startswith("data:image/png")
    with pytest.raises(FileNotFoundError):
        review.read_inputs(tmp_path / "nothing-here")


def test_record_text_cannot_close_the_data_blocks(tmp_path):
    html = review.build_page(review.read_inputs(run_folder(tmp_path)))
    assert "</script><b>" not in html and MARKUP not in html
    assert html.count("<script") == html.count("</script>")


def test_turnforge_view_writes_the_page_and_says_where(tmp_path, capsys):
    run_folder(tmp_path)
    (tmp_path / "review.html").unlink()
    with pytest.raises(SystemExit) as done:
        turnforge(["view", str(tmp_path), "--out", str(tmp_path / "page.html")])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"review page: {tmp_path / 'page.html'}"
    assert (tmp_path / "page.html").stat().st_size > 50_000  # the page carries its script and library


def test_serve_serves_the_page_on_localhost_only(tmp_path):
    run_folder(tmp_path)
    server = subprocess.Popen([sys.executable, "-m", "shared.cli", "view", str(tmp_path), "--serve"],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    try:
        assert server.stdout.readline().startswith("review page: ")
        url = re.search(r"http://127\.0\.0\.1:\d+/", server.stdout.readline()).group(0)
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and b'"run-telecom-2"' in response.read()
        with pytest.raises(urllib.error.HTTPError):  # the page only, not the folder beside it
            urllib.request.urlopen(url + "dataset.jsonl", timeout=10)
    finally:
        server.terminate()
        server.wait(timeout=10)


# -- the page in a real browser -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(("file:", "data:"))
               else route.continue_())  # nothing but the file itself: no network
    page.goto(path.as_uri())
    page.wait_for_function("window.turnforgeReview && window.turnforgeReview.ready")
    return page, errors


def test_the_page_filters_by_reason_and_shows_which_message_failed_which_check(browser, tmp_path, monkeypatch):
    # A stats section the page has never heard of shows as it comes (how the diversity figures will appear).
    dataset_figures = stats.dataset_figures
    monkeypatch.setattr(stats, "dataset_figures",
                        lambda records: {**dataset_figures(records), "diversity": {"distinct_action_shapes": 7}})
    page, errors = open_page(browser, run_folder(tmp_path / "run") / "review.html")
    assert page.text_content("#f-count") == "4 trajectories"
    assert "distinct action shapes" in page.text_content("#figures")
    assert "Table 1" in page.text_content("#figures")

    page.select_option("#f-reason", "writes_requested")
    page.wait_for_function("document.getElementById('f-count').textContent.startsWith('1 of 4')")
    page.click("td.gridjs-td >> text=run-telecom-2")
    detail = page.locator("#detail")
    detail.locator(".check-name", has_text="writes_requested").wait_for()
    assert "4 of 14 checks failed" in detail.text_content()
    # The failing messages carry the check's name; the link goes to the message.
    assert page.locator(".msg.failed", has_text="fails writes_requested").count() == 1
    assert "42 open invoices" in page.locator(".msg.failed", has_text="fails claims_grounded").text_content()
    # Text from the record is text: the markup in the user's message is shown, not run.
    assert MARKUP in page.locator("#m1").text_content() and page.title().startswith("TurnForge review")
    page.screenshot(path=str(tmp_path / "review-rejected.png"), full_page=True)
    page.click("text=message 9")
    page.wait_for_function("(() => { const r = document.getElementById('m9').getBoundingClientRect(); "
                           "return r.top >= 0 && r.bottom <= window.innerHeight; })()")

    page.select_option("#f-reason", "")
    page.select_option("#f-outcome", "dead-lettered")
    page.wait_for_function("document.getElementById('f-count').textContent.startsWith('1 of 4')")
    page.click("td.gridjs-td >> text=run-retail-0")
    assert "no task could be planned" in page.text_content("#detail")
    assert errors == []
    print(f"screenshot: {tmp_path / 'review-rejected.png'}")


def test_ten_thousand_trajectories_open_and_filter(browser, tmp_path):
    """Timings go to timings.json in the test's folder: figures, not pass marks (the machine may be busy)."""
    run = run_folder(tmp_path / "run")
    accepted = json.loads((run / "dataset.jsonl").read_text().splitlines()[0])
    rejected = json.loads((run / "rejected.jsonl").read_text())
    big = tmp_path / "big"
    big.mkdir()
    with open(big / "dataset.jsonl", "w") as dataset, open(big / "rejected.jsonl", "w") as rejections:
        for i in range(10_000):
            record = copy.deepcopy(rejected if i % 4 == 0 else accepted)
            record["trajectory_id" if i % 4 == 0 else "id"] = f"big-{i}"
            record["messages"][1]["content"] += f" (ticket T{i})"
            (rejections if i % 4 == 0 else dataset).write(json.dumps(record) + "\n")
    started = time.perf_counter()
    path = review.write_page(big)
    timings = {"build_s": round(time.perf_counter() - started, 2), "page_mb": round(path.stat().st_size / 1e6, 1)}

    started = time.perf_counter()
    page, errors = open_page(browser, path)
    timings["open_s"] = round(time.perf_counter() - started, 2)
    assert page.text_content("#f-count") == "10000 trajectories"
    page.locator("tbody tr.gridjs-tr").nth(19).wait_for()
    assert page.locator("tbody tr.gridjs-tr").count() == 20  # the list draws one page, not 10,000 rows

    def timed(action: str, drawn: str) -> float:
        """Milliseconds from the change until the list's footer says `drawn` (Grid.js draws asynchronously)."""
        return round(page.evaluate("""async ([action, drawn]) => {
            const t0 = performance.now(); (new Function(action))();
            const footer = () => (document.querySelector('.gridjs-summary') || {}).textContent || '';
            while (!footer().includes(drawn)) await new Promise(done => requestAnimationFrame(done));
            return performance.now() - t0; }""", [action, drawn]), 1)

    timings["filter_by_reason_ms"] = timed(
        "const f = document.getElementById('f-reason'); f.value = 'writes_requested'; f.dispatchEvent(new Event('change'))",
        "of 2500 results")
    assert page.text_content("#f-count") == "2500 of 10000 trajectories"
    timings["search_dialogues_ms"] = timed(
        "document.getElementById('f-search').value = 'ticket T9996)'; "
        "document.getElementById('f-outcome').dispatchEvent(new Event('change'))", "of 1 results")
    assert page.text_content("#f-count") == "1 of 10000 trajectories"
    timings["open_one_ms"] = round(page.evaluate("""() => {
        const t0 = performance.now(); document.querySelector('td.gridjs-td').click();
        return performance.now() - t0; }"""), 1)
    assert "big-9996" in page.text_content("#detail h2")
    assert errors == []
    (tmp_path / "timings.json").write_text(json.dumps(timings, indent=2))
    print("10,000 trajectories:", json.dumps(timings))
