"""In-silico START-01: virtual patients through the real protocol engine, outcome models,
one trial's analysis dataset and the operating characteristics of many replicate trials.

Modules: `parameters` (every distribution with its source, files/default_parameters.toml),
`population` (virtual candidates), `engine` (the protocol engine's decisions for many
patients: `EngineDecisions` calls it per patient), `tabulated` (`TabulatedDecisions`
remembers its answers per distinct case), `tables` (memoised calls, step tables), `cohort`
(screening, randomization, arm assignment), `course` (the cycles), `outcomes` (PFS, response,
kidney and blood toxicity models), `endpoints` (endpoints and per-trial statistics), `trial`
(`simulate_trial`), `trial_dataset` (the analysis dataset), `replicates` (`run_replicates`,
`operating_characteristics`), `distributed` (`run_distributed` on Dask), `streams` (seeds).
"""
