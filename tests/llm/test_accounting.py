from behaviorlab.llm.accounting import RunAccounting
from behaviorlab.llm.base import ChatMessage, ChatRequest, ChatResult, Completion, Failure

REQUEST = ChatRequest((ChatMessage("user", "hi"),))


def test_totals_failures_cache_and_cost():
    accounting = RunAccounting(price_per_prompt_token=0.001, price_per_completion_token=0.002)
    accounting.record([
        ChatResult(REQUEST, completion=Completion("a", 10, 5, 0.1)),
        ChatResult(REQUEST, completion=Completion("b", 20, 5, 0.1, cached=True)),
        ChatResult(REQUEST, failure=Failure("timeout", "slow", attempts=3)),
        ChatResult(REQUEST, failure=Failure("invalid_output", "bad", output="{", prompt_tokens=8, completion_tokens=1)),
    ], wall_s=2.0)
    accounting.record([ChatResult(REQUEST, failure=Failure("timeout", "slow"))], wall_s=0.5)
    figures = accounting.to_dict()
    assert figures["requests"] == 5 and figures["completed"] == 2 and figures["cached"] == 1
    assert figures["failures_by_kind"] == {"invalid_output": 1, "timeout": 2} and figures["failed"] == 3
    assert (figures["prompt_tokens"], figures["completion_tokens"]) == (18, 6)  # failed answers cost tokens too
    assert (figures["cached_prompt_tokens"], figures["cached_completion_tokens"]) == (20, 5)
    assert figures["completion_tokens_per_s"] == 6 / 2.5
    assert abs(figures["estimated_cost"] - (18 * 0.001 + 6 * 0.002)) < 1e-12


def test_no_price_means_no_cost_estimate():
    accounting = RunAccounting()
    accounting.record([ChatResult(REQUEST, completion=Completion("a", 10, 5, 0.1))], wall_s=1.0)
    assert accounting.estimated_cost is None and accounting.to_dict()["estimated_cost"] is None
