"""LLM generation of synthetic behavior: prompts, constrained output, validation, outlier filter, resumable runs.

Usage (the CLI's `behaviorlab generate` does the same)::

    from behaviorlab.datasets import load
    from behaviorlab.generate.config import GenerateConfig
    from behaviorlab.generate.run import run_generation
    from behaviorlab.llm import LLMConfig, create_backend

    real = load("../shared/datasets/smartthings-fr")          # then keep only its training split
    config = GenerateConfig(n_users=200, scenario=["night"], llm=LLMConfig(model="qwen2.5-coder-1.5b"))
    backend = create_backend(config.llm)
    result = run_generation(real, "/work/runs/night", config, backend)   # re-run to resume
    result.synthetic       # EventLog with the real log's schema; also run dir/synthetic.parquet
    result.manifest        # a RunManifest: validity before/after repair, tokens (compressed vs plain JSON), privacy, exemplars

Stages: `profiles` samples a population and grounds each profile on its nearest real users;
`grounding` picks SPPC exemplars, habits, a legend and a time skeleton (the weekday and hour bin of
every event, sampled from real counts); `prompts` renders the template files; `output` builds the JSON
schema (action codes only) and checks/repairs completions; `rules` holds domain rules;
`outliers` filters with a Markov model; `store` and `run` make the run resumable and deterministic;
`manifest` is the run's typed record and `run_files` reads a run directory back (evaluation, report).
"""
